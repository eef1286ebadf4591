"""The executed copy of a notebook run, the way papermill writes it: parameters injected after the cell tagged
``parameters``, papermill's run and cell metadata, the error markers around a failing cell, one copy per run
(named by systemd's invocation ID) and its atomic write.  Pure functions on nbformat nodes; the runner
(:mod:`.runner`) calls them while it executes the notebook.
"""

from __future__ import annotations

import copy
import keyword
import math
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, List, Optional

import nbformat
from nbformat import NotebookNode

from .atomicfile import atomic_write
from .errors import InvalidSpec

PARAMETERS_TAG = "parameters"
INJECTED_TAG = "injected-parameters"


# --------------------------------------------------------------------------
# Parameters (papermill convention)


def _check_json_value(value: Any, where: str) -> None:
    if value is None or isinstance(value, (bool, int, str)):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidSpec(f"Parameter {where} must be a finite number, not {value!r}.", field=f"parameters.{where}")
        return
    if isinstance(value, list):
        for i, item in enumerate(value):
            _check_json_value(item, f"{where}[{i}]")
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise InvalidSpec(f"Parameter {where} has a non-string key {key!r}.", field=f"parameters.{where}")
            _check_json_value(item, f"{where}[{key!r}]")
        return
    raise InvalidSpec(
        f"Parameter {where} must be a JSON value (null, boolean, number, string, list or object), "
        f"not {type(value).__name__}.",
        field=f"parameters.{where}",
    )


def parameters_source(params: Mapping[str, Any]) -> str:
    """The source of the injected cell: ``name = <repr(value)>`` per parameter.

    Raises :class:`InvalidSpec` for a name that is not a Python identifier or
    is a keyword, or a value that is not JSON data.
    """
    if not isinstance(params, Mapping):
        raise InvalidSpec("Parameters must be a JSON object mapping names to values.", field="parameters")
    lines = ["# Parameters"]
    for name, value in params.items():
        if not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name):
            raise InvalidSpec(
                f"Parameter name {name!r} is not a valid Python variable name "
                "(letters, digits and underscores, not starting with a digit, not a keyword).",
                field="parameters",
            )
        _check_json_value(value, name)
        lines.append(f"{name} = {value!r}")
    return "\n".join(lines) + "\n"


def cell_tags(cell: Mapping[str, Any]) -> List[str]:
    tags = cell.get("metadata", {}).get("tags", [])
    return list(tags) if isinstance(tags, (list, tuple)) else []


def inject_parameters(nb: NotebookNode, params: Mapping[str, Any]) -> NotebookNode:
    """Return a copy of ``nb`` with ``params`` injected, papermill style.

    A code cell tagged ``injected-parameters`` holding ``name = <literal>``
    lines replaces the first cell already tagged ``injected-parameters``
    (an executed copy run again), else goes right after the first cell
    tagged ``parameters``, else at the top.  With no parameters, no cell is
    added and an earlier injected cell is dropped (papermill would keep it
    and run it: we never run values nobody passed this time).  ``nb`` itself
    is not modified.
    """
    source = parameters_source(params)
    out = copy.deepcopy(nb)
    injected = next((i for i, c in enumerate(out.cells) if INJECTED_TAG in cell_tags(c)), -1)
    if not params:
        if injected >= 0:
            del out.cells[injected]
        return out
    cell = nbformat.v4.new_code_cell(source=source, metadata={"tags": [INJECTED_TAG]})
    if not _has_cell_ids(out):
        cell.pop("id", None)  # cell ids are only valid from nbformat 4.5 on
    if injected >= 0:
        out.cells[injected] = cell
    else:
        position = next((i + 1 for i, c in enumerate(out.cells) if PARAMETERS_TAG in cell_tags(c)), 0)
        out.cells.insert(position, cell)
    return out


def _has_cell_ids(nb: NotebookNode) -> bool:
    return (nb.get("nbformat", 4), nb.get("nbformat_minor", 0)) >= (4, 5)


# --------------------------------------------------------------------------
# papermill's run metadata and error markers

#: Tag of the two markdown cells that point at the failing cell (papermill's tag, so tools that know it find them).
ERROR_MARKER_TAG = "papermill-error-cell-tag"
ERROR_ANCHOR_ID = "papermill-error-cell"
PENDING, RUNNING, COMPLETED, FAILED = "pending", "running", "completed", "failed"


def now_iso() -> str:
    from datetime import datetime, timezone

    return datetime.now(timezone.utc).isoformat()


def prepare_run(nb: NotebookNode, params: Mapping[str, Any], *, input_path: str, output_path: str) -> NotebookNode:
    """The notebook as a run starts it, papermill's way (pure: ``nb`` is not modified).

    Error marker cells of an earlier run are removed, the parameters
    injected, every code cell's outputs and execution count cleared, and
    ``metadata.papermill`` (notebook and cells) written afresh: nothing of
    an earlier run, ours or papermill's, survives into this one.
    """
    out = inject_parameters(nb, params)
    out.cells = [c for c in out.cells if ERROR_MARKER_TAG not in cell_tags(c)]
    for cell in out.cells:
        if cell.get("cell_type") == "code":
            cell.outputs = []
            cell.execution_count = None
        cell.setdefault("metadata", nbformat.NotebookNode())
        cell.metadata["papermill"] = {
            "exception": None,
            "start_time": None,
            "end_time": None,
            "duration": None,
            "status": PENDING,
        }
    out.metadata["papermill"] = {
        "parameters": dict(params),
        "input_path": input_path,
        "output_path": output_path,
        "start_time": None,
        "end_time": None,
        "duration": None,
        "exception": None,
    }
    return out


def _seconds_between(start: Optional[str], end: str) -> Optional[float]:
    from datetime import datetime

    if not start:
        return None
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


def cell_started(cell: NotebookNode) -> None:
    meta = cell.metadata.setdefault("papermill", {})
    meta.update(start_time=now_iso(), status=RUNNING, exception=False)


def cell_finished(cell: NotebookNode, *, failed: bool = False) -> None:
    meta = cell.metadata.setdefault("papermill", {})
    end = now_iso()
    meta.update(end_time=end, duration=_seconds_between(meta.get("start_time"), end))
    meta["status"] = FAILED if failed else COMPLETED
    if failed:
        meta["exception"] = True


def notebook_finished(nb: NotebookNode, *, exception: bool, stop_at: Optional[int] = None) -> None:
    """End times; cells left pending before the first failed one (or ``stop_at``) count as completed, as in
    papermill.
    """
    meta = nb.metadata.setdefault("papermill", {})
    end = now_iso()
    meta.update(end_time=end, duration=_seconds_between(meta.get("start_time"), end))
    if exception:
        meta["exception"] = True
    for i, cell in enumerate(nb.cells):
        pm = cell.metadata.get("papermill") or {}
        if pm.get("status") == FAILED or (stop_at is not None and i > stop_at):
            break
        if pm.get("status") == PENDING:
            pm["status"] = COMPLETED


def insert_error_markers(nb: NotebookNode, cell_index: int, execution_count: Any) -> None:
    """Two markdown cells, tagged like papermill's: a banner at the top linking to an anchor just before the
    failing cell.
    """
    style = 'style="color:red; font-size:1.5em;"'
    anchor = nbformat.v4.new_markdown_cell(
        f'<span id="{ERROR_ANCHOR_ID}" {style}>The run stopped here: the next cell raised an exception.</span>',
        metadata={"tags": [ERROR_MARKER_TAG]},
    )
    banner = nbformat.v4.new_markdown_cell(
        f'<span {style}>This run failed at <a href="#{ERROR_ANCHOR_ID}">In [{execution_count}]</a>.</span>',
        metadata={"tags": [ERROR_MARKER_TAG]},
    )
    if not _has_cell_ids(nb):
        anchor.pop("id", None)
        banner.pop("id", None)
    nb.cells.insert(cell_index, anchor)
    nb.cells.insert(0, banner)


def is_clean_exit(ename: Optional[str], evalue: Any) -> bool:
    """``sys.exit()``, ``sys.exit(0)``, ``raise SystemExit``: the notebook ended itself successfully
    (papermill's rule).
    """
    return ename == "SystemExit" and str(evalue or "") in ("", "0")


# --------------------------------------------------------------------------
# One executed copy per run


def run_copy_path(runs_dir: Path, invocation_id: Optional[str] = None) -> Path:
    """``<runs_dir>/<invocation id>.ipynb``: this run's own executed copy (systemd's $INVOCATION_ID names the run)."""
    run_id = invocation_id or os.environ.get("INVOCATION_ID") or time.strftime("manual-%Y%m%dT%H%M%S")
    return runs_dir / f"{run_id}.ipynb"


def prune_runs(
    runs_dir: Path, keep: int, max_age_days: float, *, now: Optional[float] = None, reserve: int = 0
) -> List[Path]:
    """Remove executed copies beyond the newest ``keep`` (0: no limit) or older than ``max_age_days`` (0: no limit).

    ``reserve``: room for copies about to be written (the run starting now counts against ``keep``).
    """
    now = time.time() if now is None else now
    try:
        copies = sorted(runs_dir.glob("*.ipynb"), key=lambda p: p.stat().st_mtime, reverse=True)
    except OSError:
        return []
    removed = []
    for i, path in enumerate(copies):
        try:
            old = max_age_days > 0 and now - path.stat().st_mtime > max_age_days * 86400
        except OSError:
            continue
        if (keep > 0 and i >= keep - reserve) or old:
            try:
                path.unlink()
                removed.append(path)
            except OSError:
                pass
    return removed


# --------------------------------------------------------------------------
# The executed copy


def write_notebook_atomic(nb: NotebookNode, path: Path, mode: int = 0o644) -> None:
    """Write ``nb`` to ``path`` atomically (:func:`.atomicfile.atomic_write`), as ``nbformat.write`` would."""
    text = nbformat.writes(nb)
    atomic_write(path, text if text.endswith("\n") else text + "\n", mode)
