"""Execute a notebook as a systemd service: ``python -m jupyter_condasvc.runner``.

This is the process a notebook service's unit starts::

    ExecStart=<server python> -m jupyter_condasvc.runner --python <env>/bin/python
              --notebook <path> [--output <path>] [--parameters-file <json>]
              [--kernel-timeout S] [--cell-timeout S]

It runs every code cell of the notebook with :class:`nbclient.NotebookClient`
on an IPython kernel started from ``--python`` (the conda environment decides
the interpreter; the notebook's kernelspec metadata is ignored), in the
process's working directory (the unit's ``WorkingDirectory=``).

What it reports, and where:

* **Journal** (stdout, one line at a time, flushed): every output line as it
  arrives, with a syslog level prefix that journald reads
  (``SyslogLevelPrefix=`` is on by default): stream ``stdout`` and
  ``text/plain`` results at ``<6>`` (info), stream ``stderr`` and tracebacks
  at ``<3>`` (err), the runner's milestones at ``<5>`` (notice) and per-cell
  progress at ``<6>``.  ANSI colour codes are stripped from what goes to the
  journal (the executed copy keeps them).  ``journalctl -p notice`` therefore
  shows just milestones and errors.
* **sd_notify** (``$NOTIFY_SOCKET``, for ``Type=notify``): ``READY=1`` once the
  kernel answers, ``STATUS=cell 3/12: <first line>`` before each cell,
  ``STATUS=finished: ...`` / ``STATUS=failed: ...`` at the end, ``STOPPING=1``
  when a stop is requested.
* **Executed copy**: ``--output``, default ``<notebook dir>/<stem>.out.ipynb``,
  replaced atomically after every cell, every few seconds while a cell keeps
  producing output, and at the end, so it can be opened while the service
  runs.  Stream output kept in the copy is capped per output (the journal
  has all of it), so a notebook that prints forever does not grow the runner
  without bound.

Cells are numbered like the execution counts in the executed copy: the
``N``-th code cell that runs is ``cell N`` and ``[N]``.

Exit status:

* ``0``: every cell ran, or a stop was requested (SIGTERM/SIGINT) and done.
* ``1``: a cell raised, timed out (``--cell-timeout``), or the kernel died.
* ``2``: bad invocation: arguments, an unreadable notebook, an invalid
  parameters file, an interpreter that does not exist.
* ``3``: the kernel could not be started from ``--python`` (is ``ipykernel``
  installed in the environment?).

On SIGTERM/SIGINT the runner interrupts the running cell, waits briefly for
it, shuts the kernel down (killing it if it does not go), writes the executed
copy and exits 0, all within a few seconds.  Unit settings this assumes:
``Type=notify``, ``NotifyAccess=main``, ``KillMode=mixed`` (SIGTERM to the
runner only, so it can stop the kernel in order; anything left in the cgroup
is SIGKILLed after the runner exits), ``TimeoutStopSec=`` of 10 s or more,
``TimeoutStartSec=`` above ``--kernel-timeout``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import re
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Dict, List, Optional, TextIO

if __name__ == "__main__":
    # Run as the service's main process (not imported by the server): skip
    # jsonschema's optional format checkers.  ``rfc3987_syntax`` builds an
    # Earley parser at import time, about 3 s of every service start;
    # isoduration (with arrow) and the others cost ~0.1 s more; nbformat
    # imports jsonschema but validates without a FormatChecker, so none of
    # them ever runs here.  jsonschema treats a blocked import like a missing
    # optional dependency.
    for _checker in (
        "rfc3987_syntax",
        "rfc3987",
        "rfc3986_validator",
        "rfc3339_validator",
        "isoduration",
        "webcolors",
        "uri_template",
        "fqdn",
        "jsonpointer",
    ):
        sys.modules.setdefault(_checker, None)  # type: ignore[arg-type]
    # Start the kernel now and import nbformat, jupyter_client and nbclient
    # (~0.2 s) while it boots: see prelaunch.py.  main() adopts or kills it.
    from jupyter_condasvc.prelaunch import prelaunch as _prelaunch

    _PRELAUNCHED = _prelaunch(sys.argv[1:])

import nbformat
from jupyter_client import AsyncKernelManager
from jupyter_client.kernelspec import KernelSpec, KernelSpecManager
from jupyter_client.provisioning import LocalProvisioner
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError
from nbformat import NotebookNode

from .errors import InvalidSpec
from .nbcopy import (
    INJECTED_TAG,
    PARAMETERS_TAG,
    cell_finished,
    cell_started,
    cell_tags,
    inject_parameters,
    insert_error_markers,
    is_clean_exit,
    notebook_finished,
    now_iso,
    prepare_run,
    prune_runs,
    run_copy_path,
    write_notebook_atomic,
)
from .prelaunch import (
    KERNEL_NAME,
    Prelaunched,
    default_output_path,
    kernel_argv,
    kernel_env,
)
from .prelaunch import (
    private_base as _private_base,
)
from .sdnotify import notify

__all__ = ["INJECTED_TAG", "PARAMETERS_TAG", "default_output_path", "inject_parameters", "main", "notify"]

# Syslog levels journald reads from a ``<N>`` line prefix.
ERR, WARNING, NOTICE, INFO = 3, 4, 5, 6


#: Exit statuses (see the module docstring).
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_KERNEL = 0, 1, 2, 3

#: After SIGTERM: how long an interrupted cell gets to finish before the
#: kernel is killed, and how long a graceful kernel shutdown may take.
STOP_INTERRUPT_GRACE = 1.5
STOP_SHUTDOWN_WAIT = 2.0
#: While a cell produces output, rewrite the executed copy at most this often.
SAVE_INTERVAL = 5.0
#: Lines of one stream output kept in the executed copy (oldest dropped).
MAX_STREAM_LINES = 2000
TRUNCATED_MARKER = "[... earlier output truncated, the journal has all of it ...]\n"

_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]")


class UsageError(Exception):
    """Bad invocation: exits 2 with the message."""


# --------------------------------------------------------------------------
# Journal lines


class JournalWriter:
    """Writes ``<level>line`` records to a stream (the journal), flushed per line.

    Stream text is split into lines as it arrives; a partial line waits for
    its newline (or the end of the cell, or another kind of output).  A
    ``\\r`` inside a line keeps what a terminal would show: the last segment.
    """

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self._partial: Dict[str, str] = {}

    def line(self, level: int, text: str) -> None:
        """Write one line at ``level``."""
        text = _ANSI.sub("", text)
        if "\r" in text:
            text = text.rstrip("\r").rsplit("\r", 1)[-1]
        try:
            self.stream.write(f"<{level}>{text}\n")
            self.stream.flush()
        except (OSError, ValueError):
            pass  # the journal went away; keep running

    def lines(self, level: int, text: str) -> None:
        """Write each line of ``text`` at ``level``."""
        for part in text.splitlines() or [""]:
            self.line(level, part)

    def stream_text(self, name: str, level: int, text: str) -> None:
        """Write the complete lines of a stream chunk, keep the rest for later."""
        buf = self._partial.pop(name, "") + text
        *complete, rest = buf.split("\n")
        for part in complete:
            self.line(level, part)
        if len(rest) > 8192:
            self.line(level, rest)
            rest = ""
        if rest:
            self._partial[name] = rest

    def flush_partial(self) -> None:
        """Write any unterminated stream lines."""
        for name, rest in list(self._partial.items()):
            self.line(ERR if name == "stderr" else INFO, rest)
        self._partial.clear()


# --------------------------------------------------------------------------
# The kernel and the client


class _EnvKernelSpecManager(KernelSpecManager):
    """A kernel spec manager that knows exactly one spec: the one it was given.

    jupyter_client 8 resolves a kernel's argv through
    ``KernelManager.kernel_spec``, i.e. ``kernel_spec_manager.get_kernel_spec
    (kernel_name)``.  Handing the manager this one-spec registry is the
    supported seam (``kernel_cmd`` is gone in 8.x): the kernel provisioner,
    ``format_kernel_cmd`` (``{connection_file}``), interrupts and restarts all
    work unchanged, and no kernelspec on disk, nor the notebook's
    ``metadata.kernelspec``, can pick another interpreter.
    """

    def __init__(self, spec: KernelSpec, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._spec = spec

    def find_kernel_specs(self) -> Dict[str, str]:
        return {self._spec.name: self._spec.resource_dir}

    def get_kernel_spec(self, kernel_name: str) -> KernelSpec:
        return self._spec


def env_kernel_spec(python: str) -> KernelSpec:
    """The spec of an IPython kernel run by ``python``.

    ``--HistoryManager.hist_file=:memory:`` keeps a service from writing (and
    locking) the user's IPython history database.
    """
    spec = KernelSpec(
        argv=kernel_argv(python),
        display_name=f"Python ({python})",
        language="python",
        interrupt_mode="signal",
        metadata={"debugger": False},
    )
    spec.name = KERNEL_NAME
    return spec


class _AdoptingKernelManager(AsyncKernelManager):
    """An AsyncKernelManager that takes over a kernel :mod:`.prelaunch` started, if it is the one it would start.

    Everything up to the launch is jupyter_client's own (provisioner, the
    command line, the environment); only the ``Popen`` is skipped when the
    early process has the same argv, environment and working directory.
    Otherwise the early kernel is killed and jupyter_client starts its own.
    """

    prelaunched: Optional[Prelaunched] = None

    async def _async_pre_start_kernel(self, **kw: Any) -> Any:
        if self.prelaunched is not None:
            # the kernel already read this file: keep its key and sockets
            self.load_connection_file(self.prelaunched.connection_file)
            self._connection_file_written = True
        return await super()._async_pre_start_kernel(**kw)

    async def _async_launch_kernel(self, kernel_cmd: List[str], **kw: Any) -> None:
        pre, self.prelaunched = self.prelaunched, None
        if pre is not None:
            provisioner = self.provisioner
            popen_kw = LocalProvisioner._scrub_kwargs(kw)
            env, cwd = popen_kw.pop("env", None), popen_kw.pop("cwd", None)
            if (
                type(provisioner) is LocalProvisioner
                and not popen_kw
                and env is not None
                and getattr(self, "curve_publickey", None) is None
                and pre.matches(kernel_cmd, env, cwd)
            ):
                pre.adopted = True
                provisioner.process = pre.process
                provisioner.pid = pre.process.pid
                try:
                    provisioner.pgid = os.getpgid(pre.process.pid)
                except OSError:
                    provisioner.pgid = None
                provisioner.cwd = cwd
                self._reconcile_connection_info(provisioner.connection_info)
                return
            pre.discard()
        await super()._async_launch_kernel(kernel_cmd, **kw)


class ServiceNotebookClient(NotebookClient):
    """A NotebookClient whose kernel comes from ``python`` and whose outputs go to the journal.

    nbclient calls :meth:`output` for every ``stream``, ``display_data``,
    ``execute_result`` and ``error`` message of the running cell as it comes
    off IOPub (``_async_poll_output_msg`` → ``process_message`` →
    ``output``), so overriding it streams output live, even from a cell that
    never ends.
    """

    #: nbclient declares the sync KernelManager; ours is always create_kernel_manager's AsyncKernelManager.
    km: Optional[AsyncKernelManager]

    def __init__(
        self,
        nb: NotebookNode,
        *,
        python: str,
        journal: JournalWriter,
        on_progress: Optional[Any] = None,
        private_dir: Optional[str] = None,
        prelaunched: Optional[Prelaunched] = None,
        **kw: Any,
    ) -> None:
        super().__init__(nb, **kw)
        self.python = python
        self.journal = journal
        self.on_progress = on_progress  # called (sync) after an output is recorded
        self.private_dir = private_dir  # connection file and ipc sockets; None: TCP
        self.prelaunched = prelaunched  # a kernel started before the imports, to adopt
        self.quiet_errors = False  # tracebacks at notice, not err (a requested stop)

    def create_kernel_manager(self) -> AsyncKernelManager:
        """Our own manager: the env's interpreter, never the notebook's kernelspec.

        The kernel talks over ``ipc`` (Unix sockets) in a private 0700 folder
        rather than TCP on localhost, where any local user could subscribe to
        the IOPub stream and read the outputs (ipykernel >= 7 also warns about
        it on every start).
        """
        ksm = _EnvKernelSpecManager(env_kernel_spec(self.python))
        self.kernel_name = KERNEL_NAME
        self.km = _AdoptingKernelManager(kernel_name=self.kernel_name, kernel_spec_manager=ksm, config=self.config)
        if self.private_dir is not None:
            self.km.transport = "ipc"
            self.km.connection_file = os.path.join(self.private_dir, "kernel.json")
            self.km.ip = os.path.join(self.private_dir, "k")  # sockets are k-1, k-2, ...
            pre = self.prelaunched
            if pre is not None and pre.connection_file == self.km.connection_file:
                self.km.prelaunched = pre
        return self.km

    def output(
        self, outs: List[NotebookNode], msg: Dict[str, Any], display_id: Optional[str], cell_index: int
    ) -> Optional[NotebookNode]:
        """Record the output as nbclient does, and write it to the journal now."""
        self._journal_msg(msg)
        out = super().output(outs, msg, display_id, cell_index)
        if out is not None and out.get("output_type") == "stream":
            _merge_stream(outs)
        if self.on_progress is not None:
            self.on_progress()
        return out

    def _journal_msg(self, msg: Dict[str, Any]) -> None:
        kind = msg["msg_type"]
        content = msg["content"]
        if kind == "stream":
            name = content.get("name", "stdout")
            self.journal.stream_text(name, ERR if name == "stderr" else INFO, content.get("text", ""))
            return
        self.journal.flush_partial()
        if kind in ("execute_result", "display_data"):
            data = content.get("data", {})
            if "text/plain" in data:
                text = data["text/plain"]
                self.journal.lines(INFO, "".join(text) if isinstance(text, list) else text)
            elif data:
                self.journal.line(INFO, f"[{kind}: {', '.join(sorted(data))}]")
        elif kind == "error":
            level = NOTICE if self.quiet_errors else ERR
            for entry in content.get("traceback", []) or [f"{content.get('ename')}: {content.get('evalue')}"]:
                self.journal.lines(level, entry)


def _merge_stream(outs: List[NotebookNode]) -> None:
    """Fold a new stream output into the previous one of the same name, capped in lines."""
    if len(outs) >= 2:
        last, prev = outs[-1], outs[-2]
        if prev.get("output_type") == "stream" and prev.get("name") == last.get("name"):
            prev["text"] += last["text"]
            outs.pop()
    target = outs[-1]
    text = target["text"]
    if text.count("\n") > MAX_STREAM_LINES + MAX_STREAM_LINES // 10:
        kept = text.split("\n")[-(MAX_STREAM_LINES + 1) :]
        if kept and kept[0] + "\n" == TRUNCATED_MARKER:
            kept = kept[1:]
        target["text"] = TRUNCATED_MARKER + "\n".join(kept)


# --------------------------------------------------------------------------
# The run


def _first_line(source: str, width: int = 60) -> str:
    line = next((s.strip() for s in source.splitlines() if s.strip()), "")
    return line if len(line) <= width else line[: width - 1] + "…"


class Runner:
    """One notebook run: kernel, cells, executed copy, notifications, stop handling."""

    def __init__(
        self,
        nb: NotebookNode,
        *,
        python: str,
        output: Path,
        output_mode: int,
        kernel_timeout: float,
        cell_timeout: Optional[float],
        stdout: Optional[TextIO] = None,
        run_copy: Optional[Path] = None,
        prelaunched: Optional[Prelaunched] = None,
    ) -> None:
        self.nb = nb
        self.python = python
        self.output = output
        self.run_copy = run_copy
        self.output_mode = output_mode
        self.cell_timeout = cell_timeout
        self.journal = JournalWriter(stdout if stdout is not None else sys.stdout)
        self.client = ServiceNotebookClient(
            nb,
            python=python,
            journal=self.journal,
            on_progress=self._maybe_save,
            prelaunched=prelaunched,
            startup_timeout=max(1, math.ceil(kernel_timeout)),
            timeout_func=(lambda cell: cell_timeout) if cell_timeout else None,
            # On timeout nbclient interrupts the kernel and reports this as the
            # cell's error, so the executed copy and the exit status say why.
            interrupt_on_timeout=True,
            error_on_timeout={
                "ename": "CellTimeoutError",
                "evalue": f"the cell did not finish within --cell-timeout {cell_timeout or 0:g} s",
                "traceback": [],
            },
        )
        self.stop_requested = False
        self.kernel_ready = False
        self._kernel_busy = False
        #: Set whenever kernel_busy turns False; made by _stop, inside the event loop (Python 3.9 binds it there).
        self._kernel_idle: Optional[asyncio.Event] = None
        self._last_save = 0.0
        self._task: Optional[asyncio.Future[int]] = None

    @property
    def kernel_busy(self) -> bool:
        """True while a cell may still be running in the kernel: then the
        kernel is killed at the end rather than asked to shut down."""
        return self._kernel_busy

    @kernel_busy.setter
    def kernel_busy(self, busy: bool) -> None:
        self._kernel_busy = busy
        if self._kernel_idle is not None:
            if busy:
                self._kernel_idle.clear()
            else:
                self._kernel_idle.set()

    # -- helpers -----------------------------------------------------------

    def log(self, level: int, text: str) -> None:
        self.journal.line(level, text)

    def save(self) -> None:
        """Write the executed copy now (errors are logged, not raised)."""
        self._last_save = time.monotonic()
        for path, mode in ((self.output, self.output_mode), (self.run_copy, 0o600)):
            if path is None:
                continue
            try:
                write_notebook_atomic(self.nb, path, mode)
            except (OSError, ValueError) as e:
                self.log(WARNING, f"could not write the executed copy {path}: {e}")

    def _maybe_save(self) -> None:
        if time.monotonic() - self._last_save >= SAVE_INTERVAL:
            self.save()

    def _runnable(self, cell: NotebookNode) -> bool:
        return (
            cell.cell_type == "code"
            and bool(cell.source.strip())
            and self.client.skip_cells_with_tag not in cell_tags(cell)
        )

    def _fail(self, n: int, total: int, why: str) -> int:
        self.log(ERR, f"cell {n} failed: {why}")
        notify(f"STATUS=failed: cell {n}/{total}: {_first_line(why, 120)}")
        return EXIT_FAILED

    # -- stop ----------------------------------------------------------------

    def request_stop(self, signum: int) -> None:
        """SIGTERM/SIGINT: interrupt the cell, give it a moment, then cancel the run."""
        if self.stop_requested:
            if self._task is not None:
                self._task.cancel()  # a second signal: stop waiting for the cell
            return
        self.stop_requested = True
        self.client.quiet_errors = True
        notify("STOPPING=1")
        self.log(NOTICE, f"stop requested ({signal.Signals(signum).name})")
        asyncio.get_running_loop().create_task(self._stop())

    async def _stop(self) -> None:
        km = self.client.km
        if self.kernel_busy and km is not None and km.has_kernel:
            idle = self._kernel_idle = asyncio.Event()  # kernel_busy is True: not set
            try:
                await km.interrupt_kernel()
            except Exception as e:  # noqa: BLE001 - best effort, it is killed below anyway
                self.log(WARNING, f"could not interrupt the kernel: {e}")
            try:
                await asyncio.wait_for(idle.wait(), STOP_INTERRUPT_GRACE)
            except asyncio.TimeoutError:
                pass
        if self._task is not None and not self._task.done():
            self._task.cancel()

    async def shutdown_kernel(self) -> None:
        """Stop the kernel process and close the channels; no kernel survives this.

        An idle kernel is asked to shut down (its ``atexit`` handlers run); a
        busy one, or one that does not go within ``STOP_SHUTDOWN_WAIT``, is
        killed (``shutdown_kernel(now=True)`` is SIGKILL to its process).
        """
        km, kc = self.client.km, self.client.kc
        if kc is not None:
            kc.stop_channels()
            self.client.kc = None
        if km is None:
            return
        km.shutdown_wait_time = STOP_SHUTDOWN_WAIT
        try:
            if km.has_kernel:
                await km.shutdown_kernel(now=self.kernel_busy)
        except Exception as e:  # noqa: BLE001
            self.log(WARNING, f"kernel shutdown failed ({e}); killing it")
            try:
                await km.shutdown_kernel(now=True)
            except Exception:  # noqa: BLE001
                pass
        self.client.km = None

    # -- run ---------------------------------------------------------------

    async def _execute(self) -> int:
        client = self.client
        total = sum(1 for c in self.nb.cells if self._runnable(c))
        client.km = client.create_kernel_manager()
        try:
            await client.async_start_new_kernel(cwd=os.getcwd(), env=kernel_env())
            await client.async_start_new_kernel_client()
        except Exception as e:  # noqa: BLE001 - any start failure is "kernel could not start"
            if self.stop_requested:
                return EXIT_OK
            self.log(
                ERR, f"kernel failed to start from {self.python}: {e} (is ipykernel installed in this environment?)"
            )
            notify("STATUS=failed: the kernel did not start")
            return EXIT_KERNEL
        self.kernel_ready = True
        start = time.monotonic()
        self.nb.metadata.setdefault("papermill", {})["start_time"] = now_iso()
        notify(f"READY=1\nSTATUS=kernel started, {total} cells to run")
        self.log(
            NOTICE,
            f"kernel started: {self.python} (pid {_kernel_pid(client.km)}), {total} cells to run in {os.getcwd()}",
        )

        assert client.kc is not None
        reply = await client.async_wait_for_reply(client.kc.kernel_info())
        if reply is not None and "language_info" in reply["content"]:
            self.nb.metadata["language_info"] = reply["content"]["language_info"]

        n = 0
        for index, cell in enumerate(self.nb.cells):
            if not self._runnable(cell):
                continue
            n += 1
            first = _first_line(cell.source)
            notify(f"STATUS=cell {n}/{total}: {first}")
            self.log(INFO, f"cell {n}/{total} started: {first}")
            self.kernel_busy = True
            cell_started(cell)
            try:
                await client.async_execute_cell(cell, index, execution_count=n)
                self.kernel_busy = False
            except CellExecutionError as e:
                timed_out = e.ename == "CellTimeoutError"
                self.kernel_busy = timed_out  # an interrupted cell may not have stopped
                self.journal.flush_partial()
                if is_clean_exit(e.ename, e.evalue) and not self.stop_requested:
                    # sys.exit(0) and friends: the notebook ended itself; the rest is skipped, the run succeeded.
                    cell_finished(cell)
                    notebook_finished(self.nb, exception=False, stop_at=index)
                    self.save()
                    elapsed = time.monotonic() - start
                    self.log(
                        NOTICE,
                        f"finished: cell {n} exited cleanly ({e.ename}), "
                        f"{total - n} remaining cells skipped, {elapsed:.1f}s",
                    )
                    notify(f"STATUS=finished: cell {n}/{total} exited cleanly")
                    return EXIT_OK
                return self._failed_cell(cell, index, n, total, e.ename, e.evalue, timed_out=timed_out)
            except CellTimeoutError as e:
                self.journal.flush_partial()
                return self._failed_cell(cell, index, n, total, "CellTimeoutError", str(e), timed_out=True)
            except DeadKernelError:
                self.journal.flush_partial()
                return self._failed_cell(cell, index, n, total, "DeadKernelError", "the kernel died")
            cell_finished(cell)
            self.journal.flush_partial()
            self.save()
            if self.stop_requested:  # the stop came between cells
                notebook_finished(self.nb, exception=False, stop_at=index)
                return EXIT_OK
        client.set_widgets_metadata()
        notebook_finished(self.nb, exception=False)
        self.save()
        elapsed = time.monotonic() - start
        self.log(NOTICE, f"finished: {n} cells in {elapsed:.1f}s")
        notify(f"STATUS=finished: {n} cells in {elapsed:.1f}s")
        return EXIT_OK

    def _failed_cell(
        self, cell: NotebookNode, index: int, n: int, total: int, ename: str, evalue: Any, *, timed_out: bool = False
    ) -> int:
        """Record a failed cell papermill's way (cell and notebook metadata, error markers), save, report."""
        if self.stop_requested:
            # interrupted by our own stop: not the notebook's failure
            cell_finished(cell)
            notebook_finished(self.nb, exception=False, stop_at=index)
            self.save()
            return EXIT_OK
        cell_finished(cell, failed=True)
        notebook_finished(self.nb, exception=True)
        insert_error_markers(self.nb, index, cell.get("execution_count") or n)
        self.save()
        if ename == "CellTimeoutError" and timed_out and self.cell_timeout:
            return self._fail(
                n, total, f"timed out after {self.cell_timeout:g} s (--cell-timeout); the kernel was interrupted"
            )
        if ename == "DeadKernelError":
            return self._fail(n, total, "the kernel died")
        return self._fail(n, total, f"{ename}: {evalue}")

    async def run(self) -> int:
        """Run the notebook, handling SIGTERM/SIGINT; leaves no kernel behind."""
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self.request_stop, signum)
        pre = self.client.prelaunched
        private_dir = pre.private_dir if pre is not None else tempfile.mkdtemp(prefix="condasvc-", dir=_private_base())
        self.client.private_dir = private_dir
        self._task = asyncio.ensure_future(self._execute())
        code = EXIT_FAILED
        try:
            code = await self._task
        except asyncio.CancelledError:
            code = EXIT_OK if self.stop_requested else EXIT_FAILED
        except Exception as e:  # noqa: BLE001 - report, clean up, fail
            if self.stop_requested:
                code = EXIT_OK
            else:
                self.log(ERR, f"runner failed: {type(e).__name__}: {e}")
                code = EXIT_FAILED
        finally:
            self.journal.flush_partial()
            await self.shutdown_kernel()
            if pre is not None:
                pre.discard()  # not adopted (the start failed first): kill it
            if self.kernel_ready:
                self.save()
            shutil.rmtree(private_dir, ignore_errors=True)
            if self.stop_requested:
                self.log(NOTICE, "stopped")
                notify("STATUS=stopped")
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(signum)
        return code


def _kernel_pid(km: Any) -> Any:
    provisioner = getattr(km, "provisioner", None)
    return getattr(provisioner, "pid", None) or "?"


# --------------------------------------------------------------------------
# Command line


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message}")


def _positive(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number of seconds") from None
    if not math.isfinite(seconds) or seconds <= 0:
        raise argparse.ArgumentTypeError(f"{value!r} must be a positive number of seconds")
    return seconds


def build_parser() -> argparse.ArgumentParser:
    """The runner's command line."""
    p = _Parser(
        prog="python -m jupyter_condasvc.runner",
        description="Execute a notebook on a conda environment's Python as a systemd service.",
    )
    p.add_argument("--python", required=True, help="Interpreter that runs the kernel (<env>/bin/python).")
    p.add_argument("--notebook", required=True, type=Path, help="Notebook to execute.")
    p.add_argument("--output", type=Path, help="Executed copy (default: <notebook dir>/<stem>.out.ipynb).")
    p.add_argument("--parameters-file", type=Path, help="JSON object of parameters to inject (papermill style).")
    p.add_argument(
        "--kernel-timeout", type=_positive, default=60.0, help="Seconds to wait for the kernel to start (default 60)."
    )
    p.add_argument(
        "--cell-timeout",
        type=_positive,
        default=None,
        help="Seconds one cell may run before it is interrupted and the run fails (default: no limit).",
    )
    p.add_argument(
        "--runs-dir",
        type=Path,
        default=None,
        help="Also keep this run's own executed copy as <runs-dir>/<$INVOCATION_ID>.ipynb, never overwritten.",
    )
    p.add_argument("--keep-runs", type=int, default=50, help="Executed copies kept in --runs-dir (0: all; default 50).")
    p.add_argument(
        "--keep-days",
        type=float,
        default=30.0,
        help="Executed copies older than this many days are removed from --runs-dir (0: never; default 30).",
    )
    return p


def _prepare(args: argparse.Namespace) -> tuple[NotebookNode, Path, int]:
    """Validate the arguments and load the notebook (with parameters): raises UsageError."""
    python = args.python
    if not os.path.isabs(python) or not os.path.isfile(python) or not os.access(python, os.X_OK):
        raise UsageError(f"--python {python!r} is not an absolute path to an executable file")
    nb_path: Path = args.notebook
    try:
        nb = nbformat.read(nb_path, as_version=4)
    except FileNotFoundError:
        raise UsageError(f"notebook {nb_path} does not exist") from None
    except (OSError, UnicodeDecodeError) as e:
        raise UsageError(f"cannot read notebook {nb_path}: {e}") from None
    except Exception as e:  # noqa: BLE001 - nbformat raises many kinds for a bad file
        raise UsageError(f"{nb_path} is not a valid notebook: {e}") from None
    params: Any = {}
    if args.parameters_file is not None:
        try:
            params = json.loads(args.parameters_file.read_text(encoding="utf-8"))
        except OSError as e:
            raise UsageError(f"cannot read parameters file {args.parameters_file}: {e}") from None
        except ValueError as e:
            raise UsageError(f"parameters file {args.parameters_file} is not valid JSON: {e}") from None
    output = args.output if args.output is not None else default_output_path(nb_path)
    output = output.absolute()
    try:
        nb = prepare_run(nb, params, input_path=str(nb_path.absolute()), output_path=str(output))
    except InvalidSpec as e:
        raise UsageError(f"{args.parameters_file}: {e.message}") from None
    if not output.parent.is_dir() or not os.access(output.parent, os.W_OK | os.X_OK):
        raise UsageError(f"cannot write the executed copy {output}: its folder does not exist or is not writable")
    if output.resolve() == nb_path.resolve():
        raise UsageError("--output must not be the notebook itself")
    try:
        mode = nb_path.stat().st_mode & 0o666
    except OSError:
        mode = 0o644
    return nb, output, mode


def main(argv: Optional[Sequence[str]] = None, prelaunched: Optional[Prelaunched] = None) -> int:
    """Entry point: run the notebook, return the exit status.

    ``prelaunched``: the kernel :func:`.prelaunch.prelaunch` started for this
    ``argv``; the run adopts it, and any other exit kills it.
    """
    try:
        return _main(argv, prelaunched)
    finally:
        if prelaunched is not None:
            prelaunched.discard()
            shutil.rmtree(prelaunched.private_dir, ignore_errors=True)


def _main(argv: Optional[Sequence[str]], prelaunched: Optional[Prelaunched]) -> int:
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(errors="backslashreplace")
    try:
        args = build_parser().parse_args(argv)
        nb, output, mode = _prepare(args)
    except SystemExit as e:  # --help
        return e.code if isinstance(e.code, int) else EXIT_OK
    except UsageError as e:
        sys.stderr.write(f"<{ERR}>{e}\n")
        sys.stderr.flush()
        notify(f"STATUS=failed: {e}")
        return EXIT_USAGE
    run_copy = None
    if args.runs_dir is not None:
        try:
            args.runs_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            # room for this run: keep one fewer than the limit before adding it
            prune_runs(args.runs_dir, args.keep_runs, args.keep_days, reserve=1)
            run_copy = run_copy_path(args.runs_dir)
        except OSError as e:
            sys.stderr.write(f"<{WARNING}>cannot keep this run's executed copy in {args.runs_dir}: {e}\n")
    runner = Runner(
        nb,
        python=args.python,
        output=output,
        output_mode=mode,
        kernel_timeout=args.kernel_timeout,
        cell_timeout=args.cell_timeout,
        run_copy=run_copy,
        prelaunched=prelaunched,
    )
    return asyncio.run(runner.run())


if __name__ == "__main__":
    sys.exit(main(prelaunched=_PRELAUNCHED))
