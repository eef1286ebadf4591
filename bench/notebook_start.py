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
import os
import queue
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
    return values[min(len(values) - 1, round(q * (len(values) - 1)))]


def runner_wrapper(tmp: Path, name: str, source: Path) -> str:
    """An executable that runs this interpreter with ``source`` first on the path (the unit's runner python)."""
    path = tmp / f"runner-{name}"
    path.write_text(f'#!/bin/sh\nPYTHONPATH={source}${{PYTHONPATH:+:$PYTHONPATH}} exec {sys.executable} "$@"\n')
    path.chmod(0o755)
    return str(path)


async def main(reps: int, rev: str | None = None) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="nbstart-"))
    os.chmod(tmp, 0o755)
    root = make_conda_root(tmp / "conda", [])
    make_conda_env(root / "envs" / "nb", ipykernel=True)
    work = tmp / "work"
    work.mkdir()
    # the first cell says when it ran; the notebook then sleeps like the script
    nb = new_notebook(
        cells=[
            new_code_cell("import time\nprint('FIRST-CELL', time.time_ns(), flush=True)"),
            new_code_cell("time.sleep(3600)"),
        ]
    )
    nbformat.write(nb, str(work / "small.ipynb"))
    nbformat.write(nb, str(work / "base.ipynb"))  # --rev's service: its own notebook and executed copy
    (work / "plain.py").write_text("import time\ntime.sleep(3600)\n")
    prefix = f"nbb{uuid.uuid4().hex[:6]}-"
    systemd = SystemdManager()
    finder = EnvironmentFinder(conda_roots=[str(root)], use_conda_executable=False)
    store = ServiceStore(Path.home() / ".config/systemd/user", tmp / "state", prefix)
    managers = {}
    if rev is None:
        manager = ServiceManager(
            systemd, finder, store, Defaults(root_dir=str(work), restart="no"), logging.getLogger("bench")
        )
    else:
        # before/after in one run: the runner of this tree and of REV (git archive), each through a PYTHONPATH wrapper
        import subprocess

        base = tmp / "base"
        base.mkdir()
        subprocess.run(
            f"git -c safe.directory='*' -C {HERE.parent} archive {rev} jupyter_condasvc | tar -x -C {base}",
            shell=True,
            check=True,
        )
        manager = ServiceManager(
            systemd,
            finder,
            store,
            Defaults(root_dir=str(work), restart="no", runner_python=runner_wrapper(tmp, "tree", HERE.parent)),
            logging.getLogger("bench"),
        )
        managers["notebook-base"] = ServiceManager(
            systemd,
            finder,
            store,
            Defaults(root_dir=str(work), restart="no", runner_python=runner_wrapper(tmp, "base", base)),
            logging.getLogger("bench"),
        )
    results = {"notebook": [], "script": [], **{k: [] for k in managers}}
    parts = {
        "to_exec": [],
        "exec_to_ready": [],
        "ready_to_first_cell": [],
        "to_first_cell": [],
        "runner_imports": [],
        "python_startup": [],
        "plain_kernel": [],
    }
    env_python = str(root / "envs" / "nb" / "bin" / "python")
    try:
        await manager.create({"name": "notebook", "kind": "notebook", "env": "nb", "path": "small.ipynb"})
        await manager.create({"name": "script", "kind": "script", "env": "nb", "path": "plain.py"})
        for name, m in managers.items():
            await m.create({"name": name, "kind": "notebook", "env": "nb", "path": "base.ipynb"})
        for _ in range(reps):
            for name in ("notebook", "script", *managers):
                m = managers.get(name, manager)
                wall0 = time.time_ns() / 1e6
                t0 = time.perf_counter()
                svc = await m.act(name, "start")
                results[name].append((time.perf_counter() - t0) * 1000)
                assert svc["status"]["active_state"] == "active", svc["status"]
                if name == "notebook":
                    await notebook_parts(manager, store.unit_name(name), wall0, parts)
                elif name in managers:
                    base_parts = {
                        k: parts.setdefault(f"{k}_base", [])
                        for k in ("to_exec", "exec_to_ready", "ready_to_first_cell", "to_first_cell")
                    }
                    await notebook_parts(m, store.unit_name(name), wall0, base_parts)
                await m.act(name, "stop")
            # the parts measured outside the service, interleaved with it
            parts["python_startup"].append(timed([sys.executable, "-c", "pass"]))
            # as the service imports it: run as __main__ (which keeps jsonschema's format checkers out), no kernel
            parts["runner_imports"].append(timed([sys.executable, "-m", "jupyter_condasvc.runner", "--help"]))
            parts["plain_kernel"].append(await asyncio.to_thread(plain_kernel_start, env_python, tmp))
    finally:
        for name in ("notebook", "script", *managers):
            try:
                await managers.get(name, manager).delete(name)
            except Exception as exc:  # noqa: BLE001 - report, keep cleaning
                print(f"clean-up of {name}: {exc}", file=sys.stderr)
        await systemd.close()
    out = {}
    for name, ms in results.items():
        out[name] = {"p50": statistics.median(ms), "p95": pct(ms, 0.95), "mean": statistics.fmean(ms), "n": len(ms)}
    out["ratio_p50"] = out["notebook"]["p50"] / out["script"]["p50"]
    out["parts_p50"] = {k: statistics.median(v) for k, v in parts.items() if v}
    if parts["plain_kernel"]:
        out["overhead_over_plain_kernel_p50"] = out["notebook"]["p50"] - out["parts_p50"]["plain_kernel"]
        if "notebook-base" in out:
            out["base_overhead_over_plain_kernel_p50"] = out["notebook-base"]["p50"] - out["parts_p50"]["plain_kernel"]
            out["rev"] = rev
    if "notebook-base" in out:
        out["tree_over_base_p50"] = out["notebook"]["p50"] / out["notebook-base"]["p50"]
    out["loadavg"] = os.getloadavg()
    return out


def timed(argv) -> float:
    import subprocess

    t = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
    return (time.perf_counter() - t) * 1000


async def notebook_parts(manager, unit: str, wall0: float, parts: dict) -> None:
    """start → the runner exec'd → READY=1 → the first cell printed, from systemd's timestamps and the journal."""
    from jupyter_condasvc.journal import LogQuery, read_page

    props = await manager.systemd.get_unit_properties(unit, fresh=True)
    exec_ms = props["ExecMainStartTimestamp"] / 1e3
    ready_ms = props["ActiveEnterTimestamp"] / 1e3
    first = None
    for _ in range(100):
        page = await asyncio.to_thread(read_page, unit, os.getuid(), LogQuery.parse(lambda k: {"n": "20"}.get(k)))
        hits = [
            int(e["message"].split()[1]) / 1e6
            for e in page.entries
            if e["message"].startswith("FIRST-CELL ") and int(e["message"].split()[1]) / 1e6 >= wall0
        ]
        if hits:
            first = hits[-1]
            break
        await asyncio.sleep(0.05)
    parts["to_exec"].append(exec_ms - wall0)
    parts["exec_to_ready"].append(ready_ms - exec_ms)
    if first is not None:
        parts["ready_to_first_cell"].append(first - ready_ms)
        parts["to_first_cell"].append(first - wall0)


def plain_kernel_start(python: str, tmp: Path) -> float:
    """``python -m ipykernel_launcher -f CONN`` until it answers kernel_info: the kernel's own start (ms)."""
    import subprocess

    from jupyter_client import BlockingKernelClient
    from jupyter_client.connect import write_connection_file

    conn, _ = write_connection_file(str(tmp / f"plain-{uuid.uuid4().hex[:6]}.json"))
    t = time.perf_counter()
    proc = subprocess.Popen(
        [python, "-m", "ipykernel_launcher", "-f", conn], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        client = BlockingKernelClient(connection_file=conn)
        client.load_connection_file()
        client.start_channels()
        # wait_for_ready needs a heartbeat from the start (it calls the kernel dead before); ask until it answers
        deadline = time.monotonic() + 120
        while True:
            client.kernel_info()
            try:
                client.get_shell_msg(timeout=0.5)
                break
            except queue.Empty:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("the plain kernel did not answer kernel_info") from None
        ms = (time.perf_counter() - t) * 1000
        client.stop_channels()
        return ms
    finally:
        proc.kill()
        proc.wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--rev",
        help="also time a notebook service whose runner is this git revision's, interleaved "
        "(both runners then start through a PYTHONPATH wrapper)",
    )
    args = parser.parse_args()
    res = asyncio.run(main(args.reps, args.rev))
    if args.json:
        print(json.dumps(res, indent=1))
    else:
        print(f"{'start → ready':<28}{'p50 ms':>10}{'p95 ms':>10}{'mean ms':>10}{'n':>4}")
        for name, label in (
            ("notebook", "notebook (READY=1)"),
            ("notebook-base", f"notebook at {args.rev} (READY=1)"),
            ("script", "script baseline (exec)"),
        ):
            if name not in res:
                continue
            r = res[name]
            print(f"{label:<28}{r['p50']:>10.0f}{r['p95']:>10.0f}{r['mean']:>10.0f}{r['n']:>4}")
        print(f"notebook / script (p50): {res['ratio_p50']:.1f}x")
        names = {
            "to_exec": "start → runner exec'd (systemd)",
            "exec_to_ready": "runner exec'd → READY=1 (imports + kernel start)",
            "ready_to_first_cell": "READY=1 → first cell printed",
            "to_first_cell": "start → first cell printed",
            "python_startup": "  python -c pass",
            "runner_imports": "  python -m jupyter_condasvc.runner --help (its imports)",
            "plain_kernel": "plain `python -m ipykernel_launcher` → kernel_info reply",
        }
        print("\nparts (p50 ms):")
        for k, label in names.items():
            if k in res["parts_p50"]:
                print(f"  {label:<58}{res['parts_p50'][k]:>8.0f}")
        for k in ("to_exec", "exec_to_ready", "ready_to_first_cell", "to_first_cell"):
            if f"{k}_base" in res["parts_p50"]:
                print(f"  {names[k] + f' at {args.rev}':<58}{res['parts_p50'][k + '_base']:>8.0f}")
        if "tree_over_base_p50" in res:
            print(f"notebook start → READY, this tree ÷ {args.rev} (p50): {res['tree_over_base_p50']:.2f}")
            print(
                f"{args.rev}'s start → READY minus the plain kernel's start (p50): "
                f"{res['base_overhead_over_plain_kernel_p50']:.0f} ms"
            )
        print("load average:", " ".join(f"{x:.1f}" for x in res["loadavg"]))
        if "overhead_over_plain_kernel_p50" in res:
            print(
                f"our start → READY minus the plain kernel's start (p50): {res['overhead_over_plain_kernel_p50']:.0f} ms "
                "(goal <= 300 ms)"
            )
