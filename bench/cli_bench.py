#!/usr/bin/env python3
"""CLI start-up: ``jupyter condasvc list/show/start/logs -n`` against ``systemctl --user list-units``.

Issue 13's goal 5: each of those commands in at most 150 ms. Every command is
a fresh process, as a user or a script runs it; they are run interleaved, one
of each per repetition, so every command sees the same machine load:

* ``systemctl --user list-units`` (the anchor: a C program asking the same manager);
* ``jupyter-condasvc list | show NAME | start NAME | logs NAME -n 50`` of the
  working tree's package (a snapshot, as the other benches take), and with
  ``--rev REV`` the same commands of that revision (e.g. the branch base);
* ``jupyter condasvc list`` through jupyter_core's launcher (which finds and
  execs ``jupyter-condasvc``: one more Python start-up), from the venv's
  installed package;
* ``python -c pass`` and ``python -X importtime`` of the ``list`` command
  (the biggest imports, where the time goes).

It creates one ``command`` service (``sleep``) under its own unit prefix and
state directory (``--CondaSvcApp.*`` overrides: nothing of the user's is
read or touched), starts it, runs the repetitions, deletes it. See
bench/README.md ("CLI").
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
import _common  # noqa: E402  (snapshot: the package)
import status_bench as sb  # noqa: E402


def timed(argv: List[str], env: Dict[str, str], cwd: Path) -> float:
    # cwd: `python -c` puts the working directory first on sys.path; in the checkout that would import
    # the checkout's package instead of the snapshot under test
    t = time.perf_counter()
    r = subprocess.run(
        argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, cwd=cwd
    )
    ms = (time.perf_counter() - t) * 1000
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {r.returncode}: {r.stderr.decode(errors='replace')[-500:]}")
    return ms


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--reps", type=int, default=15)
    p.add_argument("--rev", help="also time this git revision's CLI (e.g. the branch base)")
    args = p.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="condasvc-cli-"))
    py = sys.executable
    prefix = f"cli{secrets.token_hex(3)}-"
    conda_root = None
    try:
        codes = {"ours": _common.snapshot(tmp / "ours", None)}
        if args.rev:
            codes[args.rev[:10]] = _common.snapshot(tmp / "rev", args.rev)
        sys.path.insert(0, str(sb.REPO / "tests"))
        from condaenv import make_conda_root

        conda_root = make_conda_root(tmp / "conda" / "miniforge3", ["cli"])
        overrides = [
            f"--CondaSvcApp.unit_prefix={prefix}",
            f"--CondaSvcApp.state_dir={tmp / 'state'}",
            f"--EnvironmentFinder.conda_roots=['{conda_root}']",
            "--EnvironmentFinder.use_conda_executable=False",
        ]
        base_env = {
            k: v
            for k, v in os.environ.items()
            if k in ("PATH", "HOME", "USER", "LANG", "XDG_RUNTIME_DIR", "DBUS_SESSION_BUS_ADDRESS")
        }
        base_env["JUPYTER_CONFIG_DIR"] = str(tmp / "jupyter-config")  # no user configuration leaks in
        cli = [py, "-c", "import sys; from jupyter_condasvc.cli import main; sys.exit(main())"]

        def env_for(code: Path) -> Dict[str, str]:
            return {**base_env, "PYTHONPATH": str(code)}

        ours = env_for(codes["ours"])
        subprocess.run(
            [*cli, "create", "bench", "--env", "cli", "--quiet", *overrides, "--", "sleep", "3600"],
            check=True,
            env=ours,
            cwd=tmp,
            stdout=subprocess.DEVNULL,
        )
        subprocess.run(
            [*cli, "start", "bench", "--quiet", *overrides], check=True, env=ours, cwd=tmp, stdout=subprocess.DEVNULL
        )
        commands = {
            "list": ["list"],
            "show": ["show", "bench"],
            "start": ["start", "bench", "--quiet"],
            "logs -n": ["logs", "bench", "-n", "50"],
        }
        runs: Dict[str, List[float]] = {}
        venv_bin = Path(py).parent
        launcher = [str(venv_bin / "jupyter"), "condasvc", "list", *overrides]
        launcher_env = {**base_env, "PATH": f"{venv_bin}:{base_env.get('PATH', '')}", "PYTHONPATH": str(codes["ours"])}
        for _ in range(args.reps):
            runs.setdefault("systemctl --user list-units", []).append(
                timed(["systemctl", "--user", "list-units", "--no-pager"], base_env, tmp)
            )
            runs.setdefault("python -c pass", []).append(timed([py, "-c", "pass"], base_env, tmp))
            for label, code in codes.items():
                for cmd, extra in commands.items():
                    runs.setdefault(f"{label}: {cmd}", []).append(timed([*cli, *extra, *overrides], env_for(code), tmp))
            if (venv_bin / "jupyter").exists():
                runs.setdefault("ours: `jupyter condasvc list` (launcher)", []).append(
                    timed(launcher, launcher_env, tmp)
                )
        anchor = statistics.median(runs["systemctl --user list-units"])
        print(
            f"CLI start-up, {args.reps} interleaved runs each, fresh processes; load average "
            f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
        )
        print(f"{'command':<48}{'p50':>9}{'min':>9}{'max':>9}   ÷ systemctl p50")
        for label, xs in runs.items():
            med = statistics.median(xs)
            print(f"{label:<48}{med:>7.0f}ms{min(xs):>7.0f}ms{max(xs):>7.0f}ms   {med / anchor:>6.1f}x")
        # where the time of `list` goes: the biggest imports (cumulative), from one -X importtime run
        r = subprocess.run(
            [py, "-X", "importtime", *cli[1:], "list", *overrides], env=ours, capture_output=True, text=True, cwd=tmp
        )
        tops = []
        for line in r.stderr.splitlines():
            parts = line.split("|")
            if line.startswith("import time:") and len(parts) == 3 and parts[1].strip().isdigit():
                name = parts[2]
                if name[:1] == " " and name[1:2] != " ":  # imported by the command itself, not by another module
                    tops.append((int(parts[1]), name.strip()))
        tops = sorted(tops, reverse=True)[:8]
        print("\n`list` imports, top level, cumulative (one -X importtime run):")
        for us, name in tops:
            print(f"  {us / 1000:7.1f} ms  {name}")
        return 0
    finally:
        try:
            subprocess.run(
                [*cli, "delete", "bench", "--quiet", *overrides],
                env=env_for(codes["ours"]),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                cwd=tmp,
                timeout=60,
            )
        except Exception:  # noqa: BLE001 - the sweep below removes what is left
            pass
        unit_dir = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "systemd" / "user"
        sb.sweep_units(unit_dir, prefix)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
