"""Services belong to systemd, not to Jupyter: they outlive a killed server.

A real ``jupyter server`` process with the extension creates and starts a
service; the server is killed with SIGKILL; the service keeps running; a new
server shows it running with the same PID, and deletes it cleanly.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

from helpers import UNIT_DIR, free_port, systemctl

pytestmark = pytest.mark.systemd


class Server:
    def __init__(self, root: Path, conda_root: Path, state: Path, prefix: str):
        self.port = free_port()
        self.token = uuid.uuid4().hex
        self.url = f"http://127.0.0.1:{self.port}/"
        argv = [
            sys.executable,
            "-m",
            "jupyter_server",
            f"--port={self.port}",
            "--ip=127.0.0.1",
            "--ServerApp.open_browser=False",
            f"--IdentityProvider.token={self.token}",
            f"--ServerApp.root_dir={root}",
            "--ServerApp.jpserver_extensions={'jupyter_condasvc': True}",
            f"--CondaSvcApp.unit_dir={UNIT_DIR}",
            f"--CondaSvcApp.unit_prefix={prefix}",
            f"--CondaSvcApp.state_dir={state}",
            f"--EnvironmentFinder.conda_roots={conda_root}",
        ]
        env = dict(
            os.environ, JUPYTER_CONFIG_DIR=str(state.parent / "jcfg"), JUPYTER_RUNTIME_DIR=str(state.parent / "jrt")
        )
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                self.call("GET", "api/status")
                return
            except OSError as exc:
                if self.proc.poll() is not None:
                    raise RuntimeError(self.proc.stderr.read().decode()) from exc
                time.sleep(0.2)
        raise RuntimeError("jupyter server did not come up")

    def call(self, method: str, path: str, body=None):
        req = urllib.request.Request(
            self.url + path,
            method=method,
            data=json.dumps(body).encode() if body is not None else (b"" if method == "POST" else None),
            headers={"Authorization": f"token {self.token}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                text = resp.read().decode()
                return resp.status, (json.loads(text) if text else None)
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read().decode() or "null")

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()


def test_service_survives_a_killed_server(tmp_path, conda_root):
    root = tmp_path / "root"
    root.mkdir()
    (root / "serve.py").write_text("import time\nprint('serving', flush=True)\nwhile True:\n    time.sleep(1)\n")
    state = tmp_path / "state"
    prefix = f"rs{uuid.uuid4().hex[:6]}-"
    unit = f"{prefix}api.service"
    first = Server(root, conda_root, state, prefix)
    try:
        code, svc = first.call(
            "POST", "condasvc/api/services", {"name": "api", "kind": "script", "env": "ml", "path": "serve.py"}
        )
        assert code == 201, svc
        code, svc = first.call("POST", "condasvc/api/services/api/start")
        pid = svc["status"]["main_pid"]
        assert svc["status"]["active_state"] == "active" and pid
        first.kill()
        assert systemctl("is-active", unit).stdout.strip() == "active"
        assert Path(f"/proc/{pid}").exists()
        second = Server(root, conda_root, state, prefix)
        try:
            code, listing = second.call("GET", "condasvc/api/services")
            assert [(s["name"], s["status"]["active_state"], s["status"]["main_pid"]) for s in listing["services"]] == [
                ("api", "active", pid)
            ]
            code, _ = second.call("DELETE", "condasvc/api/services/api")
            assert code == 204
            assert not (UNIT_DIR / unit).exists()
            assert not Path(f"/proc/{pid}").exists() or Path(f"/proc/{pid}/status").read_text().find("State:\tZ") >= 0
        finally:
            second.stop()
    finally:
        first.stop()
        systemctl("stop", unit)
        (UNIT_DIR / unit).unlink(missing_ok=True)
        systemctl("daemon-reload")
