"""Run notebooks, scripts and commands from conda environments as systemd user services."""

__version__ = "0.1.0"


def _jupyter_labextension_paths():
    """The prebuilt JupyterLab extension shipped in this package (built from labextension/)."""
    return [{"src": "labextension", "dest": "jupyter_condasvc"}]


def _jupyter_server_extension_points():
    from .app import CondaSvcApp

    return [{"module": "jupyter_condasvc", "app": CondaSvcApp}]
