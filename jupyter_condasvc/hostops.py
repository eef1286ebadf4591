"""This host's answers to the reads that every host gives: the local counterpart of :class:`~.remote.RemoteHost`.

Run history, environments, a unit preview and a service's environment file, under RemoteHost's method names
and with the JSON of the local REST endpoints of the same meaning (``services/{name}/runs[/...]``,
``environments``, ``preview``, ``services/{name}/environment``). The bridge answers its operations of these
names with it, on the remote host, and the CLI's ``runs``, ``envs``, ``unit`` and ``export-env`` ask it or a
RemoteHost (``--host``) alike: one function per answer, whichever host computes it.
"""

from __future__ import annotations

from typing import Any, Dict


class LocalHost:
    """The reads of :class:`~.remote.RemoteHost`, answered by this host's service layer."""

    def __init__(self, services: Any) -> None:
        self.services = services

    async def runs(self, name: str, limit: int = 50) -> Dict[str, Any]:
        from .runs import list_runs

        return await list_runs(self.services, name, limit=limit)

    async def run(self, name: str, run_id: str) -> Dict[str, Any]:
        from .runs import get_run

        return await get_run(self.services, name, run_id)

    async def run_logs(self, name: str, run_id: str, n: int = 1000) -> Dict[str, Any]:
        from .runs import get_run_log

        return await get_run_log(self.services, name, run_id, n=n)

    async def run_notebook(self, name: str, run_id: str) -> Dict[str, Any]:
        from .runs import get_run_notebook

        return await get_run_notebook(self.services, name, run_id)

    async def environments(self, refresh: bool = False) -> Dict[str, Any]:
        envs = await self.services.finder.list_environments(refresh=refresh)
        return {"environments": [e.to_json() for e in envs]}

    async def preview(self, spec: Dict[str, Any]) -> Dict[str, Any]:
        return await self.services.preview(spec)

    async def service_environment(self, name: str) -> Dict[str, Any]:
        from .envexport import service_environment

        return await service_environment(self.services, name)
