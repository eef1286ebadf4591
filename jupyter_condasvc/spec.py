"""The service spec: what a user asks for, typed and validated.

Pure: no filesystem, no systemd.  Checks that need the host (does the
interpreter exist, is the working directory writable, ...) live in
``ServiceManager.plan``.  Every rule here produces an :class:`InvalidSpec`
naming the field, which the API answers with a 400.
"""

from __future__ import annotations

import keyword
import math
import re
from typing import Any, Dict, List, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .errors import InvalidSpec
from .health import is_redacted_form

#: A service name becomes ``<prefix><name>.service``: letters, digits, ``-``,
#: ``_`` and ``.``, starting with a letter or digit.  No ``@`` (templates),
#: no ``\`` (systemd escapes), at most 64 characters so the unit name and
#: the SyslogIdentifier stay readable.
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
ENV_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
#: MemoryMax= accepts bytes with an optional K/M/G/T suffix (base 1024), a
#: percentage of physical memory, or "infinity".
MEMORY_RE = re.compile(r"(?:[0-9]+(?:\.[0-9]+)?[KMGT]?|[0-9]+(?:\.[0-9]+)?%|infinity)")
#: CPUQuota= is a percentage of one CPU, may exceed 100 % on several cores.
CPU_RE = re.compile(r"[0-9]+(?:\.[0-9]+)?%")
#: Variables we set ourselves; a user may not override them.
RESERVED_VARIABLES = frozenset({"PATH", "CONDA_PREFIX", "CONDA_DEFAULT_ENV", "PYTHONUNBUFFERED", "CONDASVC_HEALTH_URL"})

Kind = Literal["script", "command", "notebook"]
Restart = Literal["no", "on-failure", "always"]


def _finite(value: Any, where: str) -> None:
    """Refuse NaN and infinities anywhere in a parameter: the spec is JSON, which has neither."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(
            f"parameter {where} is {value!r}: only finite numbers are accepted (JSON has no NaN or Infinity, "
            "and 1e400 overflows to infinity); pass such a value as a string and convert it in the notebook"
        )
    if isinstance(value, list):
        for i, item in enumerate(value):
            _finite(item, f"{where}[{i}]")
    elif isinstance(value, dict):
        for k, item in value.items():
            _finite(item, f"{where}[{k!r}]")


ParamValue = Union[None, bool, int, float, str, List[Any], Dict[str, Any]]


class HealthCheck(BaseModel):
    """An HTTP or TCP probe (``health_check``), in its complete, normalised form.

    What a user sends is checked and completed by :func:`health.validate_check` (its sentences name
    ``health_check.<key>``); the model holds the result, with the same keys in the same order, so the
    stored spec and the API's JSON are what they were when this was a plain dict.
    """

    model_config = ConfigDict(extra="forbid")

    type: Literal["http", "tcp"]
    url: Optional[str] = None
    host: Optional[str] = None
    port: Optional[int] = None
    interval_sec: float
    timeout_sec: float
    start_period_sec: float
    failure_threshold: int

    @model_validator(mode="before")
    @classmethod
    def _complete(cls, data: Any) -> Any:
        if isinstance(data, HealthCheck):
            return data
        from .health import validate_check

        try:
            return validate_check(data)
        except InvalidSpec as exc:
            raise ValueError(exc.message.rstrip(".")) from None


def _check_text(value: str, what: str, *, allow_empty: bool = True) -> str:
    """Refuse what no unit file can carry faithfully."""
    if "\x00" in value:
        raise ValueError(f"{what} must not contain NUL characters")
    if "\n" in value or "\r" in value:
        raise ValueError(f"{what} must not contain line breaks")
    if not allow_empty and value == "":
        raise ValueError(f"{what} must not be empty")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"{what} must be valid Unicode text") from None
    return value


class ServiceSpec(BaseModel):
    """A service as the user describes it."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)

    name: str = Field(
        description="Service name, e.g. 'pytorch-inference-api-v1'; the unit is '<prefix><name>.service'."
    )
    kind: Kind = Field(
        description="'script' runs a Python file, 'command' runs a program from the environment, 'notebook' executes "
        "a notebook on the environment's kernel."
    )
    env: str = Field(description="Conda environment, by name or absolute prefix.")
    path: Optional[str] = Field(
        None,
        description="Script or notebook path (script and notebook kinds), relative to the server root or absolute.",
    )
    argv: Optional[List[str]] = Field(
        None,
        description="Command and its arguments (command kind). argv[0] is looked up in the environment's bin "
        "directory unless absolute.",
    )
    args: List[str] = Field(default_factory=list, description="Extra arguments passed to the script or command.")
    cwd: Optional[str] = Field(
        None, description="Working directory; defaults to the script's or notebook's directory, or the server root."
    )
    environment: Dict[str, str] = Field(
        default_factory=dict,
        description="Environment variables, stored in a 0600 EnvironmentFile, never in the unit text.",
    )
    secrets: List[str] = Field(
        default_factory=list,
        description="Names of variables in 'environment' whose values are write-only: the API answers null for them, "
        "and an edit that leaves one out, null or empty keeps the stored value.",
    )
    restart: Optional[Restart] = Field(None, description="Restart policy; default from configuration.")
    restart_sec: Optional[float] = Field(None, ge=0, le=86400, description="Seconds to wait before a restart.")
    start_limit_burst: Optional[int] = Field(
        None,
        ge=0,
        le=10000,
        description="At most this many starts within start_limit_interval_sec, then the unit is left failed "
        "(crash-loop guard).",
    )
    start_limit_interval_sec: Optional[float] = Field(
        None, ge=0, le=86400 * 7, description="Window for start_limit_burst, in seconds."
    )
    memory_max: Optional[str] = Field(None, description="MemoryMax=, e.g. '512M', '2G', '50%' or 'infinity'.")
    cpu_quota: Optional[str] = Field(None, description="CPUQuota=, e.g. '50%' (half a core) or '200%' (two cores).")
    enabled: bool = Field(False, description="Start at login (and at boot when lingering): WantedBy=default.target.")
    description: str = Field("", max_length=512, description="Human description, shown by systemctl.")
    parameters: Dict[str, ParamValue] = Field(
        default_factory=dict,
        description="Notebook parameters injected after the cell tagged 'parameters' (papermill convention).",
    )
    output: Optional[str] = Field(
        None,
        description="Where a notebook service writes its executed copy; default '<stem>.out.ipynb' next to the "
        "notebook.",
    )
    schedule: Optional[str] = Field(
        None,
        description="Run on a schedule: a systemd calendar expression (OnCalendar=), e.g. 'daily' or 'Mon..Fri "
        "09:00'. Creates a .timer with Persistent=true.",
    )
    activation: bool = Field(
        False,
        description="Snapshot what `conda activate` would set (the env's etc/conda/activate.d scripts) into the "
        "environment file.",
    )
    restart_on_change: bool = Field(
        False,
        description="Restart the service (when it runs) each time its script or notebook file changes: a .path unit "
        "watches the file (PathChanged=) and starts a oneshot unit that runs `systemctl --user try-restart`. "
        "Script and notebook kinds.",
    )
    health_check: Optional[HealthCheck] = Field(
        None,
        description="HTTP or TCP probe; a service that stays unhealthy is restarted through the systemd watchdog. "
        "{type: http|tcp, url | host+port, interval_sec, timeout_sec, start_period_sec, failure_threshold}.",
    )

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not NAME_RE.fullmatch(v):
            raise ValueError(
                "name must be 1-64 characters of letters, digits, '-', '_' or '.', "
                "starting with a letter or digit (e.g. 'pytorch-inference-api-v1')"
            )
        if v.endswith((".service", ".timer")):
            raise ValueError("name must not end in '.service' or '.timer'; give the bare name")
        return v

    @field_validator("env")
    @classmethod
    def _env(cls, v: str) -> str:
        return _check_text(v, "env", allow_empty=False)

    @field_validator("path", "cwd", "output")
    @classmethod
    def _paths(cls, v: Optional[str], info: Any) -> Optional[str]:
        if v is None:
            return v
        return _check_text(v, info.field_name, allow_empty=False)

    @field_validator("argv")
    @classmethod
    def _argv(cls, v: Optional[List[str]]) -> Optional[List[str]]:
        if v is None:
            return v
        if not v:
            raise ValueError("argv must name a command")
        for i, a in enumerate(v):
            _check_text(a, f"argv[{i}]", allow_empty=(i > 0))
        return v

    @field_validator("args")
    @classmethod
    def _args(cls, v: List[str]) -> List[str]:
        for i, a in enumerate(v):
            _check_text(a, f"args[{i}]")
        return v

    @field_validator("environment")
    @classmethod
    def _environment(cls, v: Dict[str, str]) -> Dict[str, str]:
        for key, value in v.items():
            if not ENV_NAME_RE.fullmatch(key):
                raise ValueError(f"variable name {key!r} must be letters, digits and '_', not starting with a digit")
            if key in RESERVED_VARIABLES:
                raise ValueError(f"variable {key} is set from the environment and cannot be overridden")
            if "\x00" in value:
                raise ValueError(f"variable {key} must not contain NUL characters")
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise ValueError(f"variable {key} must be valid Unicode text") from None
        return v

    @field_validator("description")
    @classmethod
    def _description(cls, v: str) -> str:
        _check_text(v, "description")
        if v != v.strip():
            raise ValueError("description must not start or end with white space")
        return v

    @field_validator("memory_max")
    @classmethod
    def _memory(cls, v: Optional[str]) -> Optional[str]:
        if v is not None and not MEMORY_RE.fullmatch(v):
            raise ValueError(
                "memory_max must be bytes with an optional K, M, G or T suffix, a percentage, or 'infinity' (e.g. "
                "'512M')"
            )
        return v

    @field_validator("cpu_quota")
    @classmethod
    def _cpu(cls, v: Optional[str]) -> Optional[str]:
        if v is None:
            return v
        if not CPU_RE.fullmatch(v) or float(v[:-1]) <= 0:
            raise ValueError("cpu_quota must be a positive percentage of one CPU, e.g. '50%' or '200%'")
        return v

    @field_validator("parameters")
    @classmethod
    def _parameters(cls, v: Dict[str, Any]) -> Dict[str, Any]:
        for key, value in v.items():
            if not key.isidentifier() or keyword.iskeyword(key):
                raise ValueError(f"parameter name {key!r} must be a Python identifier")
            _finite(value, key)
        return v

    @field_validator("schedule")
    @classmethod
    def _schedule(cls, v: Optional[str]) -> Optional[str]:
        if v is None:
            return v
        _check_text(v, "schedule", allow_empty=False)
        if v != v.strip():
            raise ValueError("schedule must not start or end with white space")
        return v

    @model_validator(mode="after")
    def _secrets_known(self) -> ServiceSpec:
        unknown = [n for n in self.secrets if n not in self.environment]
        if unknown:
            raise _FieldError(
                "secrets", f"'secrets' names variables that 'environment' does not set: {', '.join(unknown)}"
            )
        return self

    @model_validator(mode="after")
    def _kind_fields(self) -> ServiceSpec:
        if self.kind in ("script", "notebook"):
            if not self.path:
                raise _FieldError("path", f"a {self.kind} service needs 'path'")
            if self.argv is not None:
                raise _FieldError("argv", f"a {self.kind} service takes 'path' and 'args', not 'argv'")
            suffix = ".ipynb" if self.kind == "notebook" else None
            if suffix and not self.path.endswith(suffix):
                raise _FieldError("path", "a notebook service needs a .ipynb file")
        else:
            if not self.argv:
                raise _FieldError("argv", "a command service needs 'argv', e.g. ['jupyter', 'lab', '--no-browser']")
            if self.restart_on_change:
                raise _FieldError(
                    "restart_on_change",
                    "restart_on_change watches a script or notebook file; a command service has none",
                )
            if self.path is not None:
                raise _FieldError("path", "a command service takes 'argv', not 'path'")
        if self.kind != "notebook":
            if self.parameters:
                raise _FieldError("parameters", "'parameters' apply to notebook services only")
            if self.output is not None:
                raise _FieldError("output", "'output' applies to notebook services only")
        return self


class _FieldError(ValueError):
    """A cross-field rule failure that names its field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def parse_spec(data: Any) -> ServiceSpec:
    """Validate ``data`` into a :class:`ServiceSpec` or raise :class:`InvalidSpec`."""
    if not isinstance(data, dict):
        raise InvalidSpec("The request body must be a JSON object describing the service.")
    try:
        return ServiceSpec.model_validate(data)
    except ValidationError as exc:
        raise _to_invalid(exc) from None


def _to_invalid(exc: ValidationError) -> InvalidSpec:
    err = exc.errors(include_url=False)[0]
    ctx_error = (err.get("ctx") or {}).get("error")
    loc = [str(p) for p in err.get("loc", ())]
    field = (isinstance(ctx_error, _FieldError) and ctx_error.field) or (".".join(loc) if loc else None)
    top = loc[0] if loc else field
    if err["type"] == "extra_forbidden":
        return InvalidSpec(f"Unknown field '{field}'.", field=field)
    if err["type"] == "missing":
        return InvalidSpec(f"Field '{field}' is required.", field=field)
    msg = str(ctx_error) if ctx_error is not None else err["msg"]
    if isinstance(ctx_error, _FieldError):
        return InvalidSpec(f"{msg[0].upper()}{msg[1:]}.", field=ctx_error.field)
    return InvalidSpec(f"Invalid '{field}': {msg}.", field=top if top in ServiceSpec.model_fields else field)


def merge_patch(spec: ServiceSpec, patch: Any) -> ServiceSpec:
    """Apply a JSON merge-patch style update (``null`` resets a field)."""
    if not isinstance(patch, dict):
        raise InvalidSpec("The request body must be a JSON object with the fields to change.")
    if "name" in patch and patch["name"] != spec.name:
        raise InvalidSpec("A service cannot be renamed; create a new one and delete this one.", field="name")
    data = spec.model_dump()
    for key, value in patch.items():
        if value is None and key in ServiceSpec.model_fields:
            field = ServiceSpec.model_fields[key]
            data[key] = field.get_default(call_default_factory=True)
        else:
            data[key] = value
    # The health check's URL is shown with its credentials as '***': sent back unchanged, it keeps them.
    check = data.get("health_check")
    stored = spec.health_check.url if spec.health_check else None
    if isinstance(check, dict) and is_redacted_form(check.get("url"), stored):
        data["health_check"] = {**check, "url": stored}
    # Un-secreting would reveal the stored value to every reader of GET: only a writer who sends the value
    # again may do it (or leave the variable out of 'environment' to remove it).
    sent = patch["environment"] if isinstance(patch.get("environment"), dict) else {}
    new_secrets = data["secrets"] if isinstance(data.get("secrets"), list) else []
    new_env = data["environment"] if isinstance(data.get("environment"), dict) else {}
    for name in spec.secrets:
        if name not in new_secrets and name in new_env and not (isinstance(sent.get(name), str) and sent[name] != ""):
            raise InvalidSpec(
                f"To stop keeping {name} secret, send its value again in 'environment' "
                "(the stored one is never shown).",
                field="secrets",
            )
    # Secret values are never sent back, so an edit cannot know them: one left
    # out, null or empty keeps what is stored (drop it from 'secrets' to change that).
    secrets = data["secrets"] if isinstance(data.get("secrets"), list) else []
    if isinstance(data.get("environment"), dict):
        environment = dict(data["environment"])
        for name in secrets:
            if name in spec.environment and environment.get(name) in (None, ""):
                environment[name] = spec.environment[name]
        data["environment"] = environment
    return parse_spec(data)


from .redaction import redact  # noqa: E402,F401  (re-exported: a stored spec is shown without pydantic)
