"""A real JupyterHub for the hub phase of the UI tests (scripts/test, CONDASVC_HUB=1).

The Hub runs as the test user and spawns that same user's single-user server
with the default LocalProcessSpawner: setuid to one's own uid needs no root,
so this is the whole production path (Hub, configurable-http-proxy, OAuth,
jupyterhub-singleuser as the real Unix user, talking to that user's systemd
user manager) without a root-owned Hub. A second hub user, ``hubother``, has
no Unix account and no server: it exists only to be refused (403).

Environment (set by playwright.hub.config.js): CONDASVC_HUB_PORT (the public
port), CONDASVC_HUB_TOKEN (the API token of the ``condasvc-tests`` service the
tests use to create users' tokens), CONDASVC_HUB_RUN (a fresh folder for the
Hub's database, cookie secret and logs), CONDASVC_HUB_PASSWORD, CONDASVC_CHP
(the configurable-http-proxy executable, installed from npm).
"""
import getpass
import os
import socket
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
run = Path(os.environ["CONDASVC_HUB_RUN"])
run.mkdir(parents=True, exist_ok=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


user = getpass.getuser()
c = get_config()  # noqa: F821 - a Jupyter config file

c.JupyterHub.bind_url = f"http://127.0.0.1:{os.environ['CONDASVC_HUB_PORT']}"
c.JupyterHub.hub_bind_url = f"http://127.0.0.1:{free_port()}"
c.JupyterHub.db_url = f"sqlite:///{run / 'jupyterhub.sqlite'}"
c.JupyterHub.cookie_secret_file = str(run / "jupyterhub_cookie_secret")
c.JupyterHub.cleanup_servers = True  # stopping the Hub stops the single-user server too
c.ConfigurableHTTPProxy.command = [os.environ.get("CONDASVC_CHP", "configurable-http-proxy")]
c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{free_port()}"
c.ConfigurableHTTPProxy.pid_file = str(run / "jupyterhub-proxy.pid")

c.JupyterHub.authenticator_class = "shared-password"
c.SharedPasswordAuthenticator.user_password = os.environ["CONDASVC_HUB_PASSWORD"]
c.Authenticator.allowed_users = {user, "hubother"}

c.JupyterHub.spawner_class = "localprocess"
c.Spawner.default_url = "/lab"
c.Spawner.start_timeout = 120
c.Spawner.http_timeout = 120
c.Spawner.args = [f"--config={HERE / 'singleuser_config.py'}"]

# --- the snippet of docs/jupyterhub.md, verbatim (tests/test_docs.py checks it) ---
import pwd


def _runtime_dir(spawner):
    return f"/run/user/{pwd.getpwnam(spawner.user.name).pw_uid}"


c.Spawner.environment = {
    "XDG_RUNTIME_DIR": _runtime_dir,
    "DBUS_SESSION_BUS_ADDRESS": lambda spawner: f"unix:path={_runtime_dir(spawner)}/bus",
}
# --- end of the snippet ---

c.Spawner.environment["CONDASVC_HUB_RUN"] = str(run)

# Two named servers show what the snippet replaces: "bare" gets neither variable
# (the extension falls back to /run/user/<uid>/bus and works), "templated" gets
# the old advice {"XDG_RUNTIME_DIR": "/run/user/{uid}"}, which JupyterHub passes
# verbatim (the 503 must say so). An empty value counts as unset.
c.JupyterHub.allow_named_servers = True
_snippet = dict(c.Spawner.environment)


def _variant(name, templated):
    def value(spawner):
        if spawner.name == "bare":
            return ""
        if spawner.name == "templated":
            return templated
        return _snippet[name](spawner)

    return value


c.Spawner.environment["XDG_RUNTIME_DIR"] = _variant("XDG_RUNTIME_DIR", "/run/user/{uid}")
c.Spawner.environment["DBUS_SESSION_BUS_ADDRESS"] = _variant("DBUS_SESSION_BUS_ADDRESS", "")

# A separate single-user environment, as on many hubs: the server is started by
# its absolute path, and its bin/ is not on the users' PATH (so not on a Lab
# terminal's either): hints must name `<its python> -m jupyter_condasvc`.
c.Spawner.cmd = [str(Path(sys.executable).parent / "jupyterhub-singleuser")]
c.Spawner.environment["PATH"] = "/usr/local/bin:/usr/bin:/bin"

c.JupyterHub.services = [{"name": "condasvc-tests", "api_token": os.environ["CONDASVC_HUB_TOKEN"]}]
c.JupyterHub.load_roles = [
    {"name": "condasvc-tests", "scopes": ["admin:users", "admin:servers", "tokens"], "services": ["condasvc-tests"]},
]
