"""Time from "start" to READY=1 for a small notebook service (issue 3).

A notebook service is ``Type=notify``: systemd's start job finishes when the
runner sends READY=1, i.e. once the kernel from the environment's own
interpreter is up.  So the duration of ``ServiceManager.act(name, "start")``
(the same call ``POST services/{name}/start`` awaits) is start → READY.

Baseline, measured in the same run and interleaved: a ``script`` service of
the same environment (``Type=exec``: the job finishes once the interpreter is
exec'd).  The ratio says what the kernel and the runner cost on top of
starting a plain Python.

Run as an unprivileged user with a working ``systemctl --user``; see
bench/README.md ("notebook start").
"""
from __future__ import annotations

import argparse
import asyncio
import json
import logging
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE.parent / "tests")]

import nbformat  # noqa: E402
from nbformat.v4 import new_code_cell, new_notebook  # noqa: E402

from condaenv import make_conda_env, make_conda_root  # noqa: E402
from jupyter_condasvc.conda import EnvironmentFinder  # noqa: E402
from jupyter_condasvc.services import Defaults, ServiceManager  # noqa: E402
from jupyter_condasvc.store import ServiceStore  # noqa: E402
from jupyter_condasvc.systemd import SystemdManager  # noqa: E402


def pct(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


async def main(reps: int) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="nbstart-"))
    root = make_conda_root(tmp / "conda", [])
    make_conda_env(root / "envs" / "nb", ipykernel=True)
    work = tmp / "work"
    work.mkdir()
    nb = new_notebook(cells=[new_code_cell("import time\ntime.sleep(3600)")])
    nbformat.write(nb, str(work / "small.ipynb"))
    (work / "plain.py").write_text("import time\ntime.sleep(3600)\n")
    prefix = f"nbb{uuid.uuid4().hex[:6]}-"
    systemd = SystemdManager()
    finder = EnvironmentFinder(conda_roots=[str(root)], use_conda_executable=False)
    store = ServiceStore(Path.home() / ".config/systemd/user", tmp / "state", prefix)
    manager = ServiceManager(systemd, finder, store, Defaults(root_dir=str(work), restart="no"), logging.getLogger("bench"))
    results = {"notebook": [], "script": []}
    try:
        await manager.create({"name": "notebook", "kind": "notebook", "env": "nb", "path": "small.ipynb"})
        await manager.create({"name": "script", "kind": "script", "env": "nb", "path": "plain.py"})
        for _ in range(reps):
            for name in ("notebook", "script"):
                t0 = time.perf_counter()
                svc = await manager.act(name, "start")
                results[name].append((time.perf_counter() - t0) * 1000)
                assert svc["status"]["active_state"] == "active", svc["status"]
                await manager.act(name, "stop")
    finally:
        for name in ("notebook", "script"):
            try:
                await manager.delete(name)
            except Exception as exc:  # noqa: BLE001 - report, keep cleaning
                print(f"clean-up of {name}: {exc}", file=sys.stderr)
        await systemd.close()
    out = {}
    for name, ms in results.items():
        out[name] = {"p50": statistics.median(ms), "p95": pct(ms, 0.95), "mean": statistics.fmean(ms), "n": len(ms)}
    out["ratio_p50"] = out["notebook"]["p50"] / out["script"]["p50"]
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    res = asyncio.run(main(args.reps))
    if args.json:
        print(json.dumps(res, indent=1))
    else:
        print(f"{'start → ready':<28}{'p50 ms':>10}{'p95 ms':>10}{'mean ms':>10}{'n':>4}")
        for name, label in (("notebook", "notebook (READY=1)"), ("script", "script baseline (exec)")):
            r = res[name]
            print(f"{label:<28}{r['p50']:>10.0f}{r['p95']:>10.0f}{r['mean']:>10.0f}{r['n']:>4}")
        print(f"notebook / script (p50): {res['ratio_p50']:.1f}x")
