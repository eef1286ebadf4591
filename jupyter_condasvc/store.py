"""Files on disk: unit files, 0600 environment files and service records.

One job: read and write the files that make up a service, atomically, and
know which units are ours.  A service is ours when its record exists in the
state directory *and* its unit file carries our marker; nothing else is
ever modified or removed.

All methods are synchronous and small; the service layer runs them off the
event loop (``asyncio.to_thread``).
"""

from __future__ import annotations

import errno
import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Union

from .atomicfile import atomic_write, prepare, unlink_quietly
from .errors import CondaSvcError, Conflict, NotOwned, ServiceNotFound
from .units import is_managed

#: A path as the os functions take it.
PathLike = Union[str, "os.PathLike[str]"]
#: What a file's identity looks like to a cache: (mtime_ns, size, inode), or None when it does not exist.
StatKey = Optional[Tuple[int, int, int]]

_RECORD_KEYS = ("version", "spec", "unit", "resolved", "created", "updated", "unit_changed")


@dataclass
class ServiceRecord:
    """A service's stored record (``records/<name>.json``): its spec as saved and what it resolved to on this host.

    ``spec`` stays the plain dict that was saved (``ServiceSpec.model_dump()``): a record edited by hand into
    an invalid spec must still be listed and deletable, so it is parsed only where a valid spec is needed.
    """

    spec: Dict[str, Any]
    unit: str
    #: What the spec resolved to when saved: exec_argv, working_directory, env_prefix, env_name, activation,
    #: runner_python (services._resolved).
    resolved: Dict[str, Any] = field(default_factory=dict)
    created: Optional[float] = None
    updated: Optional[float] = None
    #: When the unit last changed in a way a running process would not pick up without a restart.
    unit_changed: Optional[float] = None
    version: int = 1
    #: Why the file could not be used as it is (not JSON, no spec); never written back.
    broken: Optional[str] = None
    #: Keys this version does not know, kept when the record is written again.
    extra: Dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: Dict[str, Any]) -> ServiceRecord:
        resolved = data.get("resolved")
        return cls(
            spec=data["spec"],
            unit=str(data.get("unit") or ""),
            resolved=resolved if isinstance(resolved, dict) else {},
            created=_as_time(data.get("created")),
            updated=_as_time(data.get("updated")),
            unit_changed=_as_time(data.get("unit_changed")),
            version=version if isinstance(version := data.get("version"), int) else 1,
            broken=data.get("broken") if isinstance(data.get("broken"), str) else None,
            extra={k: v for k, v in data.items() if k not in _RECORD_KEYS and k != "broken"},
        )

    def to_json(self) -> Dict[str, Any]:
        out: Dict[str, Any] = {
            **self.extra,
            "version": self.version,
            "spec": self.spec,
            "unit": self.unit,
            "resolved": self.resolved,
            "created": self.created,
            "updated": self.updated,
        }
        if self.unit_changed is not None:
            out["unit_changed"] = self.unit_changed
        return out

    @property
    def scheduled(self) -> bool:
        return bool(self.spec.get("schedule"))

    @property
    def last_unit_change(self) -> Optional[float]:
        """``unit_changed``, or the creation for a unit never changed since."""
        return self.unit_changed if self.unit_changed is not None else self.created


def _as_time(value: Any) -> Optional[float]:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


class StorageError(CondaSvcError):
    """The unit or state directory cannot be written."""

    status = 507

    def __init__(self, message: str) -> None:
        super().__init__(message)


def stat_key(path: PathLike) -> StatKey:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


def _storage_error(exc: OSError, path: Path) -> StorageError:
    if exc.errno == errno.ENOSPC:
        return StorageError(f"No space left on the device holding {path.parent}; nothing was changed.")
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return StorageError(f"Cannot write {path.parent} ({exc.strerror}); nothing was changed.")
    return StorageError(f"Cannot write {path}: {exc.strerror or exc}; nothing was changed.")


class ServiceStore:
    """The unit directory and the state directory of one user."""

    def __init__(self, unit_dir: Path, state_dir: Path, prefix: str = "") -> None:
        self.unit_dir = Path(unit_dir)
        self.state_dir = Path(state_dir)
        self.prefix = prefix
        self._loaded: Dict[str, Tuple[Tuple[StatKey, StatKey], Optional[ServiceRecord]]] = {}

    # -- names ----------------------------------------------------------
    def unit_name(self, name: str) -> str:
        return f"{self.prefix}{name}.service"

    def unit_path(self, name: str) -> Path:
        return self.unit_dir / self.unit_name(name)

    @property
    def records_dir(self) -> Path:
        # Records live apart from side files: "x.health.json" is the health
        # state of service "x", while service "x.health" has records/x.health.json.
        return self.state_dir / "records"

    def record_path(self, name: str) -> Path:
        return self.records_dir / f"{name}.json"

    def env_path(self, name: str) -> Path:
        return self.state_dir / f"{name}.env"

    def timer_name(self, name: str) -> str:
        return f"{self.prefix}{name}.timer"

    def timer_path(self, name: str) -> Path:
        return self.unit_dir / self.timer_name(name)

    def watch_names(self, name: str) -> List[str]:
        """restart_on_change's units: the ``.path`` and the oneshot it starts (units.UnitPlan names them alike)."""
        return [f"{self.prefix}{name}.path", f"{self.prefix}{name}:on-change.service"]

    def watch_paths(self, name: str) -> List[Path]:
        return [self.unit_dir / n for n in self.watch_names(name)]

    def parameters_path(self, name: str) -> Path:
        return self.state_dir / f"{name}.parameters.json"

    def runs_dir(self, name: str) -> Path:
        """Per-service run history kept by us: executed notebooks (one per run) and the manual-start marks."""
        return self.state_dir / "runs" / name

    def mark_manual(self, name: str, job_id: Optional[int]) -> None:
        """Remember that job ``job_id`` (a start or restart) was asked for by a user, for run history's trigger."""
        if job_id is None:
            return
        folder = self.runs_dir(name)
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = folder / "manual-jobs"
        lines = path.read_text().splitlines()[-199:] if path.exists() else []
        lines.append(f"{job_id} {int(time.time())}")
        atomic_write(path, "\n".join(lines) + "\n", 0o600)

    def manual_jobs(self, name: str) -> Dict[int, int]:
        """``{job id: epoch seconds}`` of the starts a user asked for (newest 200)."""
        out: Dict[int, int] = {}
        try:
            text = (self.runs_dir(name) / "manual-jobs").read_text()
        except OSError:
            return out
        for line in text.splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[0].isdigit() and parts[1].isdigit():
                out[int(parts[0])] = int(parts[1])
        return out

    def health_path(self, name: str) -> Path:
        return self.state_dir / f"{name}.health.json"

    # -- ownership ------------------------------------------------------
    def ownership(self, name: str) -> str:
        """``ours``, ``foreign`` (a unit file we did not write) or ``absent``."""
        path = self.unit_path(name)
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return "ours" if self.record_path(name).exists() else "absent"
        except OSError:
            return "foreign"
        if is_managed(text) and self.record_path(name).exists():
            return "ours"
        return "foreign"

    def require_ours(self, name: str) -> ServiceRecord:
        state = self.ownership(name)
        if state == "foreign":
            raise NotOwned(
                f"The unit {self.unit_name(name)} was not created by jupyter_condasvc; it is left untouched."
            )
        return self.read_record(name)

    # -- records --------------------------------------------------------
    def names(self) -> List[str]:
        try:
            with os.scandir(self.records_dir) as it:
                files = [e.name for e in it if e.name.endswith(".json") and not e.name.startswith(".")]
        except OSError:
            return []
        return [f[:-5] for f in sorted(files)]  # the order of the files' names, as before

    def load_all(self) -> Dict[str, ServiceRecord]:
        """Every record that is ours, in one pass; parsed files are reused while unchanged.

        A record is re-read only when its file or its unit file changed
        (mtime, size, inode), so listing many services costs one stat per file.
        """
        out: Dict[str, ServiceRecord] = {}
        seen = set()
        # plain strings, not Path objects: this runs for every listed service on every list
        records, units, prefix = f"{self.records_dir}{os.sep}", f"{self.unit_dir}{os.sep}", self.prefix
        for name in self.names():
            seen.add(name)
            key = (stat_key(f"{records}{name}.json"), stat_key(f"{units}{prefix}{name}.service"))
            cached = self._loaded.get(name)
            if cached is not None and cached[0] == key:
                if cached[1] is not None:
                    out[name] = cached[1]
                continue
            try:
                record: Optional[ServiceRecord] = self.require_ours(name)
            except (ServiceNotFound, NotOwned):
                record = None
            self._loaded[name] = (key, record)
            if record is not None:
                out[name] = record
        for name in set(self._loaded) - seen:
            del self._loaded[name]
        return out

    def load_one(self, name: str) -> ServiceRecord:
        """``require_ours`` through load_all's cache: the record is re-read only when its file or unit file changed."""
        key = (stat_key(self.record_path(name)), stat_key(self.unit_path(name)))
        cached = self._loaded.get(name)
        if cached is not None and cached[0] == key and cached[1] is not None:
            return cached[1]
        record = self.require_ours(name)
        self._loaded[name] = (key, record)
        return record

    def known_record(self, name: str) -> Optional[ServiceRecord]:
        """The record as load_all or load_one last read it (no disk access); None if not read or not ours."""
        cached = self._loaded.get(name)
        return None if cached is None else cached[1]

    def read_record(self, name: str) -> ServiceRecord:
        path = self.record_path(name)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ServiceNotFound(f"There is no service named '{name}'.") from None
        except OSError as exc:
            raise ServiceNotFound(f"The record of service '{name}' cannot be read: {exc}.") from None
        except ValueError as exc:
            data = {"broken": f"its record {path} is not JSON ({exc})"}
        if not isinstance(data, dict) or not isinstance(data.get("spec"), dict):
            # Edited by hand into garbage: still listed (and deletable), its unit untouched until then.
            reason = data.get("broken") if isinstance(data, dict) else None
            return ServiceRecord(
                spec={"name": name}, unit=self.unit_name(name), broken=reason or f"its record {path} has no spec"
            )
        if not isinstance(data.get("unit"), str):
            data["unit"] = self.unit_name(name)
        return ServiceRecord.from_json(data)

    def private_state_dir(self) -> None:
        """Make the state dir 0700 (creating it): its file names are service names, its files hold variables."""
        for folder in (self.state_dir, self.records_dir):
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            mode = folder.stat().st_mode
            if mode & 0o077:
                folder.chmod(mode & 0o700)  # only ever take permissions away

    def claim(self, name: str, record: ServiceRecord) -> None:
        """Create the record exclusively: of two concurrent creates, one wins."""
        path = self.record_path(name)
        try:
            self.private_state_dir()
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            raise Conflict(f"A service named '{name}' already exists.", field="name") from None
        except OSError as exc:
            raise _storage_error(exc, path) from None
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(json.dumps(record.to_json(), indent=1, sort_keys=True))
                fh.flush()
                os.fsync(fh.fileno())
        except OSError as exc:
            path.unlink(missing_ok=True)
            raise _storage_error(exc, path) from None

    def write_record(self, name: str, record: ServiceRecord) -> None:
        path = self.record_path(name)
        try:
            atomic_write(path, json.dumps(record.to_json(), indent=1, sort_keys=True), 0o600)
        except OSError as exc:
            raise _storage_error(exc, path) from None

    # -- unit and environment files --------------------------------------
    def read_unit(self, name: str) -> Optional[str]:
        try:
            # a unit edited by hand may hold any bytes: show them, never fail on them
            return self.unit_path(name).read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return None

    def write_files(
        self,
        name: str,
        unit_text: str,
        env_text: str,
        *,
        timer_text: Optional[str] = None,
        parameters_text: Optional[str] = None,
        record: Optional[ServiceRecord] = None,
        watch_texts: Optional[Sequence[Optional[str]]] = None,
    ) -> None:
        """Write environment and parameters files, the unit, its timer and (if given) the record: all or none.

        A file the new version does not need (a timer after the schedule was
        dropped) is removed, so no ``.timer`` outlives its schedule.
        """
        if self.ownership(name) == "foreign":
            raise NotOwned(
                f"The unit {self.unit_name(name)} was not created by jupyter_condasvc; it is left untouched."
            )
        timer_path = self.timer_path(name)
        watch = list(zip(self.watch_paths(name), watch_texts or (None, None)))
        for path in (timer_path, *(p for p, _ in watch)):
            if path.exists() and not is_managed(path.read_text(encoding="utf-8", errors="replace")):
                raise NotOwned(f"The unit {path.name} was not created by jupyter_condasvc; it is left untouched.")
        try:
            self.private_state_dir()
        except OSError as exc:
            raise _storage_error(exc, self.record_path(name)) from None
        plan = [
            (self.env_path(name), env_text, 0o600),
            (self.parameters_path(name), parameters_text, 0o600),
            (self.unit_path(name), unit_text, 0o644),
            (timer_path, timer_text, 0o644),
            *((path, text, 0o644) for path, text in watch),
        ]
        if record is not None:
            plan.append((self.record_path(name), json.dumps(record.to_json(), indent=1, sort_keys=True), 0o600))
        # Two phases, so that a full disk or a read-only directory changes nothing: every new
        # file is written beside its target first; only when all are on disk are they renamed
        # into place (a rename needs no space) and obsolete files removed.
        prepared: List[Tuple[Path, str]] = []
        try:
            for path, text, mode in plan:
                if text is not None:
                    prepared.append((path, prepare(path, text, mode)))
                elif path.exists() and not os.access(path.parent, os.W_OK | os.X_OK):
                    raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))
        except OSError as exc:
            for _, tmp in prepared:
                unlink_quietly(tmp)
            raise _storage_error(exc, Path(exc.filename or path)) from None
        for path, tmp in prepared:
            os.replace(tmp, path)
        for path, text, _ in plan:
            if text is None:
                path.unlink(missing_ok=True)

    def _removable(self, name: str) -> List[Path]:
        """The files ``remove`` deletes, in order; StorageError if any of their folders is read-only."""
        if self.ownership(name) == "foreign":
            raise NotOwned(
                f"The unit {self.unit_name(name)} was not created by jupyter_condasvc; it is left untouched."
            )
        timer_file = self.timer_path(name)
        timer: Optional[Path] = timer_file
        if timer_file.exists() and not is_managed(timer_file.read_text(encoding="utf-8", errors="replace")):
            timer = None
        watch = [
            p
            for p in self.watch_paths(name)
            if p.exists() and is_managed(p.read_text(encoding="utf-8", errors="replace"))
        ]
        side = (self.env_path(name), self.parameters_path(name), self.health_path(name))
        paths = [*((timer,) if timer else ()), *watch, self.unit_path(name), *side, self.record_path(name)]
        for path in paths:
            # A delete refused half-way would leave a record without its unit: check every folder first.
            if path.exists() and not os.access(path.parent, os.W_OK | os.X_OK):
                raise StorageError(f"Cannot write {path.parent} (Permission denied); nothing was changed.")
        return paths

    def check_removable(self, name: str) -> None:
        """Raise StorageError now if ``remove`` could not finish (before anything is stopped)."""
        self._removable(name)

    def remove(self, name: str) -> None:
        """Remove timer, unit, side files (with the run history we keep) and, last, the record."""
        removable = self._removable(name)
        import shutil

        shutil.rmtree(self.runs_dir(name), ignore_errors=True)
        for path in removable:
            try:
                path.unlink()
            except FileNotFoundError:
                pass
            except OSError as exc:
                raise _storage_error(exc, path) from None


def new_record(spec: Dict[str, Any], unit_name: str, resolved: Dict[str, Any]) -> ServiceRecord:
    now = time.time()
    return ServiceRecord(spec=spec, unit=unit_name, resolved=resolved, created=now, updated=now)
