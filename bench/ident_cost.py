#!/usr/bin/env python3
"""What finding a service's lines whose unit journald lost costs a history read (issue 13's history figures).

A service's log also matches its stdout lines by SyslogIdentifier and _UID (journal.query.add_unit_matches,
``ident``), so that a crash's last lines stay in its log when journald reads them late. This reads the
newest 1,000 entries of a 3,000-line transient unit with both caches off (a cold read, the worst case),
with and without that match, interleaved in one run, and prints the medians and their ratio as JSON.

Run as the user whose manager and journal it uses, e.g. as root:
  scripts/systemd-stack run USER -- /var/tmp/USER/venv/bin/python bench/ident_cost.py
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import time

from jupyter_condasvc import journal as J  # noqa: N812
from jupyter_condasvc.journal.history import ENTRY_CACHE, PAGE_CACHE

REPS = 40


def main() -> None:
    tag = f"identcost{os.getpid()}"
    script = "import time\nfor i in range(3000): print('line', i, flush=True)\ntime.sleep(3)"
    argv = ["systemd-run", "--user", "-q", f"--unit={tag}", "-p", f"SyslogIdentifier={tag}", "/usr/bin/python3"]
    subprocess.run([*argv, "-c", script], check=True)
    time.sleep(6)  # the lines are in, the unit is gone
    unit = f"{tag}.service"
    PAGE_CACHE.max_entries = ENTRY_CACHE.max_entries = 0
    q = J.LogQuery.parse({"n": "1000"}.get, max_n=10000, default_n=100)
    runs: dict = {"without ident": [], "with ident": []}
    for _ in range(REPS):
        for label, kw in (("without ident", {}), ("with ident", {"ident": tag})):
            t = time.perf_counter()
            page = J.read_page(unit, os.getuid(), q, **kw)
            runs[label].append((time.perf_counter() - t) * 1000)
            assert len(page.entries) == 1000, len(page.entries)
    out: dict = {k: {"p50_ms": round(statistics.median(v), 2), "min_ms": round(min(v), 2)} for k, v in runs.items()}
    out["ratio_p50"] = round(out["with ident"]["p50_ms"] / out["without ident"]["p50_ms"], 3)
    out["load_average"] = os.getloadavg()[0]
    print(json.dumps(out))


if __name__ == "__main__":
    main()
