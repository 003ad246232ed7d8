"""Settings: the YAML config parsed once into a frozen, typed tree (`load_settings`).

Every error is a ConfigError whose one-line message starts with the dotted key it is about
(`response_api.redis.cluster_addresses: required when cluster_mode is true`).
"""

from __future__ import annotations

import difflib
import ipaddress
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails

from responses_gateway.errors import ConfigError
from responses_gateway.redaction import mask_url
from responses_gateway.stores import BACKENDS

__all__ = [
    "SECRET_KEYS",
    "APIKey",
    "AuthSettings",
    "BackendSettings",
    "FileInputSettings",
    "LimitSettings",
    "MemorySettings",
    "RedisSettings",
    "ResponseAPISettings",
    "SQLiteSettings",
    "SamplingDefaults",
    "ServerSettings",
    "Settings",
    "TenantLimits",
    "TracingSettings",
    "WebSocketSettings",
    "expand_vars",
    "load_settings",
    "redacted",
    "settings_from_dict",
]

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_KEY_FIRST = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*): (.*)$", re.DOTALL)
_HOST_PORT = re.compile(r"^(?:rediss?://)?(?:\[[0-9A-Fa-f:.]+\]|[^\s:/@\[\]]+)(?::(\d{1,5}))?$")
SECRET_KEYS = frozenset({"api_key", "password", "encryption_key", "key", "metrics_key"})
_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
_TENANT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
MiB = 1024 * 1024


class _Model(BaseModel):
    # Numbers become strings where a string is wanted: `password: 12345` is a password, not an error.
    model_config = ConfigDict(extra="forbid", frozen=True, coerce_numbers_to_str=True)


class ServerSettings(_Model):
    host: str = "127.0.0.1"
    port: int = Field(default=8801, ge=0, le=65535)
    workers: int | Literal["auto"] = 1  # processes sharing the port; "auto": one per CPU core
    # Listening on a non-loopback address without `auth.api_keys` is refused unless this says so.
    allow_unauthenticated: bool = False
    # `Host` header names accepted (port ignored); None: the loopback names when bound to loopback,
    # any name otherwise. A web page cannot reach a loopback gateway through DNS rebinding.
    allowed_hosts: list[str] | None = None
    # Browser origins allowed (CORS on for exactly these); a request with another `Origin` is a 403.
    cors_allowed_origins: list[str] = Field(default_factory=list)
    # Capacity and time limits of the HTTP server, per process.
    max_connections: int = Field(default=1000, ge=1)  # open connections; beyond it new ones get 503
    max_streams: int = Field(default=500, ge=1)  # open SSE streams; beyond it a stream create gets 503
    header_timeout_seconds: float = Field(default=10.0, gt=0)  # to receive a request's headers
    body_timeout_seconds: float = Field(default=30.0, gt=0)  # to receive a request's body
    keep_alive_seconds: float = Field(default=5.0, gt=0)  # an idle keep-alive connection is closed
    request_timeout_seconds: float = Field(default=600.0, gt=0)  # overall deadline of a non-stream create
    stream_send_timeout_seconds: float = Field(default=30.0, gt=0)  # a stream nobody reads is dropped
    shutdown_grace_seconds: float = Field(default=30.0, ge=0)  # SIGTERM: in-flight work gets this long

    @field_validator("workers", mode="before")
    @classmethod
    def _workers(cls, v: Any) -> Any:
        if isinstance(v, str) and v.strip().lower() == "auto":
            return "auto"
        if isinstance(v, str) and v.strip().isdigit():
            v = int(v.strip())
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"must be a whole number of processes, 1 or more, or 'auto' (got {v!r})")
        return v


class SamplingDefaults(_Model):
    """`backends[].sampling_defaults`: sent to the backend, and reported in the Response, for each of
    these the client left out (docs/API.md, "What a Response reports"). OpenAI's defaults; set them
    to the model's own (vLLM: its generation_config) to keep the model's behaviour."""

    temperature: float = Field(default=1.0, ge=0, le=2)
    top_p: float = Field(default=1.0, ge=0, le=1)
    presence_penalty: float = Field(default=0.0, ge=-2, le=2)
    frequency_penalty: float = Field(default=0.0, ge=-2, le=2)


class BackendSettings(_Model):
    name: str = Field(min_length=1)
    base_url: str
    api_key: str | None = None
    models: list[str] = Field(default_factory=lambda: ["*"], min_length=1)
    timeout_seconds: float = Field(default=300.0, gt=0)
    file_inputs: Literal["extract", "passthrough", "reject"] = "extract"  # input_file parts (docs/API.md)
    sampling_defaults: SamplingDefaults = Field(default_factory=SamplingDefaults)
    strict_tools_default: bool = True  # `strict` sent and reported for a function tool that omits it

    @field_validator("base_url")
    @classmethod
    def _url(cls, v: str) -> str:
        if not v.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return v.rstrip("/")


class MemorySettings(_Model):
    max_responses: int = Field(default=10_000, ge=1)
    max_bytes: int = Field(default=256 * MiB, ge=1)  # stored bytes; oldest responses evicted beyond it
    # conversations' item JSON + metadata; least recently written conversations evicted beyond it
    max_conversation_bytes: int = Field(default=64 * MiB, ge=1)


class SQLiteSettings(_Model):
    path: str = "data/responses.db"
    purge_interval_seconds: float = Field(default=60.0, gt=0)


def _check_address(v: str) -> str:
    """`host:port` (the reference's form); `[v6]:port`, a bare host (port 6379), `redis://` also pass."""
    m = _HOST_PORT.match(v.strip())
    if m is None or (m.group(1) is not None and not 0 < int(m.group(1)) <= 65535):
        raise ValueError(f"must be host:port, got {v!r}")
    return v


_Address = Annotated[str, AfterValidator(_check_address)]


class RedisSettings(_Model):
    """The reference's `redis:` block (seed), plus `username` and the durability wait."""

    address: _Address | None = None
    username: str | None = None
    password: str | None = None
    db: int = Field(default=0, ge=0, le=15)
    key_prefix: str = "sr:"
    cluster_mode: bool = False
    cluster_addresses: list[_Address] = Field(default_factory=list)
    pool_size: int = Field(default=10, ge=1)
    min_idle_conns: int = Field(default=2, ge=0)
    max_retries: int = Field(default=3, ge=0)
    dial_timeout: float = Field(default=5.0, gt=0)
    read_timeout: float = Field(default=3.0, gt=0)
    write_timeout: float = Field(default=3.0, gt=0)
    tls_enabled: bool = False
    tls_ca_path: str | None = None
    tls_cert_path: str | None = None
    tls_key_path: str | None = None
    wait_replicas: int = Field(default=0, ge=0)
    wait_timeout_ms: int = Field(default=100, ge=0)
    config_path: str | None = None

    @field_validator("key_prefix")
    @classmethod
    def _prefix(cls, v: str) -> str:
        if not v:
            raise ValueError("must not be empty")
        return v if v.endswith(":") else v + ":"

    @model_validator(mode="after")
    def _check(self) -> RedisSettings:
        if self.config_path is not None:
            return self  # replaced by the external file in settings_from_dict
        if self.cluster_mode:
            if not self.cluster_addresses:
                raise ValueError("cluster_addresses: required when cluster_mode is true")
            if self.db != 0:
                raise ValueError("db: must be 0 when cluster_mode is true (a cluster has only db 0)")
        elif not self.address:
            raise ValueError("address: required when cluster_mode is false")
        for key in ("tls_ca_path", "tls_cert_path", "tls_key_path"):
            path = getattr(self, key)
            if path is not None and not Path(path).is_file():
                raise ValueError(f"{key}: file not found: {path}")
        if self.tls_cert_path is not None and self.tls_key_path is None:
            raise ValueError("tls_key_path: required when tls_cert_path is set")
        if self.tls_key_path is not None and self.tls_cert_path is None:
            raise ValueError("tls_cert_path: required when tls_key_path is set")
        return self


class BackgroundSettings(_Model):
    """`background: true` responses (docs/API.md, Background mode)."""

    # background responses running at once in one process; a create beyond it is a 429
    max_concurrent: int = Field(default=64, ge=1)
    # how long a running background response's lease lives without renewal (renewed every
    # min(0.5, lease/4) s); after it expires another replica settles the response as failed
    lease_seconds: float = Field(default=10.0, ge=1.0, le=3600.0)
    # how long the events of a background response are kept after its last one, for
    # `GET /v1/responses/{id}?stream=true&starting_after=N`
    events_keep_seconds: float = Field(default=600.0, ge=1.0, le=86_400.0)


class ResponseAPISettings(_Model):
    enabled: bool = True
    store_backend: str = "memory"  # a name in stores.BACKENDS, the one table of backends
    ttl_seconds: int = Field(default=2_592_000, ge=1)
    # conversations (/v1/conversations) do not expire unless this is set: then each lives this long
    # after its last write (create, metadata update, items added or deleted)
    conversation_ttl_seconds: int | None = Field(default=None, ge=1)
    max_responses: int | None = Field(default=None, ge=1)  # the reference's name for memory.max_responses
    memory: MemorySettings = Field(default_factory=MemorySettings)
    sqlite: SQLiteSettings = Field(default_factory=SQLiteSettings)
    redis: RedisSettings | None = None
    reject_hosted_tools: bool = False
    encryption_key: str | None = None
    # the names of the reasoning text events: OpenAI's (`response.reasoning_text.*`, what its SDKs and
    # Codex read) or the Open Responses spec's (`response.reasoning.*`)
    reasoning_event_names: Literal["openai", "open_responses"] = "openai"
    background: BackgroundSettings = Field(default_factory=BackgroundSettings)

    @field_validator("store_backend")
    @classmethod
    def _backend(cls, v: str) -> str:
        if v not in BACKENDS:
            raise ValueError(f"must be one of {', '.join(map(repr, BACKENDS))}")
        return v

    @model_validator(mode="after")
    def _check(self) -> ResponseAPISettings:
        if self.store_backend == "redis" and self.redis is None:
            raise ValueError("redis: required when store_backend is redis")
        return self

    @property
    def memory_max_responses(self) -> int:
        return self.max_responses if self.max_responses is not None else self.memory.max_responses


def _sha256_hex(value: str | None) -> str | None:
    """A SHA-256 given in the config: 64 hex digits, any case, kept in lower case."""
    if value is None:
        return None
    digest = value.strip().lower()
    if not _SHA256_HEX.match(digest):
        raise ValueError("must be 64 hex digits (the SHA-256 of the key)")
    return digest


class APIKey(_Model):
    """One client key of a tenant: the key itself (from the environment) or only its SHA-256."""

    tenant: str
    key: str | None = Field(default=None, min_length=16)
    key_sha256: str | None = None

    @field_validator("tenant")
    @classmethod
    def _tenant(cls, v: str) -> str:
        if not _TENANT.match(v):
            raise ValueError("must be 1-64 characters: letters, digits, '.', '_', '-' (not first)")
        return v

    @field_validator("key_sha256")
    @classmethod
    def _sha(cls, v: str | None) -> str | None:
        return _sha256_hex(v)

    @model_validator(mode="after")
    def _one(self) -> APIKey:
        if (self.key is None) == (self.key_sha256 is None):
            raise ValueError("key: exactly one of key and key_sha256 is required")
        return self


class AuthSettings(_Model):
    """Client keys. Empty `api_keys`: no authentication (the pass-through of the client's own
    Authorization header to backends without an api_key stays)."""

    api_keys: list[APIKey] = Field(default_factory=list)
    # /metrics: open when neither is set, else it needs `Authorization: Bearer <metrics key>`.
    metrics_key: str | None = Field(default=None, min_length=16)
    metrics_key_sha256: str | None = None

    @field_validator("metrics_key_sha256")
    @classmethod
    def _sha(cls, v: str | None) -> str | None:
        return _sha256_hex(v)

    @model_validator(mode="after")
    def _check(self) -> AuthSettings:
        if self.metrics_key is not None and self.metrics_key_sha256 is not None:
            raise ValueError("metrics_key: set metrics_key or metrics_key_sha256, not both")
        return self

    @property
    def enabled(self) -> bool:
        return bool(self.api_keys)


class TenantLimits(_Model):
    """A tenant's own rate limits (0: unlimited); unset keys take the `limits` defaults."""

    requests_per_minute: int | None = Field(default=None, ge=0)
    concurrent_streams: int | None = Field(default=None, ge=0)


class LimitSettings(_Model):
    """What one request may ask for, and per-tenant rates. Every limit is a clear 4xx naming it."""

    max_body_bytes: int = Field(default=16 * MiB, ge=1024)  # 413 beyond it
    max_json_depth: int = Field(default=64, ge=4)  # nesting of arrays and objects in a body
    max_input_items: int = Field(default=10_000, ge=1)
    max_tools: int = Field(default=256, ge=1)
    max_metadata_pairs: int = Field(default=16, ge=0)  # OpenAI's limits on `metadata`
    max_metadata_key_chars: int = Field(default=64, ge=1)
    max_metadata_value_chars: int = Field(default=512, ge=1)
    max_output_tokens: int = Field(default=1_000_000, ge=1)  # upper bound of `max_output_tokens`
    max_completion_bytes: int = Field(default=16 * MiB, ge=1024)  # a backend's completion is cut here
    # Per tenant (the anonymous tenant "" too when auth is off); 0: unlimited. Enforced across
    # replicas on the Redis store, per process on memory and SQLite.
    requests_per_minute: int = Field(default=0, ge=0)
    concurrent_streams: int = Field(default=0, ge=0)
    tenants: dict[str, TenantLimits] = Field(default_factory=dict)

    def for_tenant(self, tenant: str) -> tuple[int, int]:
        """(requests per minute, concurrent streams) of a tenant; 0 is unlimited."""
        own = self.tenants.get(tenant)
        rpm = own.requests_per_minute if own and own.requests_per_minute is not None else None
        streams = own.concurrent_streams if own and own.concurrent_streams is not None else None
        return (
            self.requests_per_minute if rpm is None else rpm,
            self.concurrent_streams if streams is None else streams,
        )


class UISettings(_Model):
    """The read-only `/ui` page (docs/INSPECT.md): off unless enabled; behind auth.api_keys when set."""

    enabled: bool = False
    recent_limit: int = Field(default=50, ge=1, le=1000)  # responses listed (Redis keeps this many per owner)


class FileInputSettings(_Model):
    """`input_file` parts: the bounds of reading, fetching and extracting a file (docs/API.md)."""

    max_bytes: int = Field(default=10 * MiB, ge=1)  # one file, decoded or fetched
    max_pages: int = Field(default=100, ge=1)  # of one PDF
    max_text_chars: int = Field(default=1_000_000, ge=1)  # text extracted from one file
    max_files: int = Field(default=10, ge=0)  # input_file parts read for one request
    extract_timeout_seconds: float = Field(default=30.0, gt=0)  # one file's extraction
    max_concurrent_extractions: int = Field(default=2, ge=1)  # threads extracting at once (per process)
    fetch_urls: bool = True  # false: `file_url` is a 400
    fetch_timeout_seconds: float = Field(default=10.0, gt=0)  # one `file_url`, redirects included
    # networks a `file_url` may reach besides public addresses (SSRF guard), e.g. ["10.0.0.0/8"]
    fetch_allowed_networks: list[str] = Field(default_factory=list)

    @field_validator("fetch_allowed_networks")
    @classmethod
    def _networks(cls, v: list[str]) -> list[str]:
        for net in v:
            try:
                ipaddress.ip_network(net, strict=False)
            except ValueError:
                raise ValueError(f"not a network (an address or CIDR): {net!r}") from None
        return v


class WebSocketSettings(_Model):
    """WebSocket mode on `/v1/responses` (`api/websocket.py`, docs/API.md "WebSocket mode")."""

    enabled: bool = True  # false: an upgrade on /v1/responses is answered 404
    max_sockets: int = Field(default=500, ge=1)  # open sockets per process; beyond it the upgrade gets 503
    idle_timeout_seconds: float = Field(default=300.0, gt=0)  # no message and no response running: closed
    ping_interval_seconds: float = Field(default=20.0, ge=0)  # server pings (0: none); unanswered: closed
    ping_timeout_seconds: float = Field(default=20.0, gt=0)  # a ping not answered within it closes the socket
    max_message_bytes: int | None = Field(default=None, ge=1024)  # None: limits.max_body_bytes
    cache_max_responses: int = Field(default=256, ge=0)  # store:false responses kept per socket (0: none)
    cache_max_bytes: int = Field(default=4 * MiB, ge=0)  # their Chat history bytes per socket; oldest evicted
    per_message_deflate: bool = True  # compression when the client offers it (about 35 KiB more a socket)


class TracingSettings(_Model):
    """OpenTelemetry tracing (docs/OPERATIONS.md): off by default; when off nothing of OpenTelemetry is
    imported. Spans go to an OTLP/HTTP (protobuf) collector."""

    enabled: bool = False
    endpoint: str = "http://127.0.0.1:4318/v1/traces"  # the collector's OTLP/HTTP traces URL
    service_name: str = Field(default="responses-gateway", min_length=1)
    sample_ratio: float = Field(default=1.0, ge=0.0, le=1.0)  # of the traces this gateway starts


class Settings(_Model):
    server: ServerSettings = Field(default_factory=ServerSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    limits: LimitSettings = Field(default_factory=LimitSettings)
    backends: list[BackendSettings] = Field(default_factory=list)
    response_api: ResponseAPISettings = Field(default_factory=ResponseAPISettings)
    files: FileInputSettings = Field(default_factory=FileInputSettings)
    websocket: WebSocketSettings = Field(default_factory=WebSocketSettings)
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    ui: UISettings = Field(default_factory=UISettings)
    log_format: Literal["text", "json"] = "text"
    tracing: TracingSettings = Field(default_factory=TracingSettings)

    @field_validator("log_level", mode="before")
    @classmethod
    def _lower(cls, v: Any) -> Any:
        return v.lower() if isinstance(v, str) else v

    @model_validator(mode="after")
    def _names(self) -> Settings:
        names = [b.name for b in self.backends]
        if len(names) != len(set(names)):
            raise ValueError("backends: names must be unique")
        tenants = {k.tenant for k in self.auth.api_keys}
        unknown = sorted(set(self.limits.tenants) - tenants) if tenants else []
        if unknown:
            raise ValueError(f"limits: tenants: {unknown[0]!r} is not a tenant of auth.api_keys")
        return self


_MODELS: tuple[type[_Model], ...] = (
    Settings,
    ServerSettings,
    AuthSettings,
    APIKey,
    LimitSettings,
    TenantLimits,
    BackendSettings,
    SamplingDefaults,
    ResponseAPISettings,
    MemorySettings,
    SQLiteSettings,
    RedisSettings,
    TracingSettings,
)
_ALL_KEYS = sorted({name for model in _MODELS for name in model.model_fields})  # for "did you mean"


def expand_vars(value: Any, environ: Mapping[str, str], where: str = "") -> Any:
    """Replace `${VAR}` in every string of a parsed YAML tree; a missing variable is an error."""
    if isinstance(value, str):

        def sub(m: re.Match[str]) -> str:
            name = m.group(1)
            if name not in environ:
                raise ConfigError(f"{where or 'config'}: environment variable {name} is not set")
            return environ[name]

        return _VAR.sub(sub, value)
    if isinstance(value, dict):
        return {k: expand_vars(v, environ, f"{where}.{k}" if where else str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [expand_vars(v, environ, f"{where}[{i}]") for i, v in enumerate(value)]
    return value


def _read_yaml(path: Path, what: str = "config file") -> Any:
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        detail = " ".join(str(exc).split())
        raise ConfigError(f"{path}: invalid YAML: {detail}") from None
    return {} if data is None else data


def _resolve(path: str, base: Path) -> Path:
    """Relative paths: the current directory first, then `base` (the config file's directory)."""
    p = Path(path).expanduser()
    if p.is_absolute() or p.exists():
        return p
    return base / p


def _dotted(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _format_one(err: ErrorDetails) -> str:
    loc = list(err["loc"])
    msg = " ".join(str(err["msg"]).removeprefix("Value error, ").split())
    kind = err["type"]
    if kind == "extra_forbidden":
        msg = "unknown key"
        close = difflib.get_close_matches(str(loc[-1]), _ALL_KEYS, n=1) if loc else []
        if close:
            msg += f" (did you mean {close[0]!r}?)"
    elif kind == "missing":
        msg = "required"
    else:
        m = _KEY_FIRST.match(msg)
        if m and kind == "value_error":  # "cluster_addresses: required ..." from a model validator
            if not loc or loc[-1] != m.group(1):
                loc.append(m.group(1))
            msg = m.group(2)
        given = err.get("input")
        secret = bool(loc) and loc[-1] in SECRET_KEYS
        if isinstance(given, str | int | float | bool) and not secret and "got " not in msg:
            msg += f" (got {given!r})"
    where = _dotted(tuple(loc))
    return f"{where}: {msg}" if where else msg


def _format_error(exc: ValidationError, origin: tuple[str, Path] | None = None) -> str:
    """Every error, one line each, each naming its key (the same key once)."""
    lines: list[str] = []
    for err in exc.errors():
        text = _format_one(err)
        if origin is not None and text.startswith(origin[0]):
            text += f" (in {origin[1]})"
        if text not in lines:
            lines.append(text)
    return "\n".join(lines)


def _external_redis(
    block: dict[str, Any], environ: Mapping[str, str], base: Path
) -> tuple[dict[str, Any], Path]:
    """Read `response_api.redis.config_path`: a YAML file of redis keys, top level or under `redis:`."""
    where = "response_api.redis"
    others = sorted(str(k) for k in block if k != "config_path")
    if others:
        raise ConfigError(
            f"{where}.{others[0]}: not allowed next to config_path (the external file replaces the inline "
            "block; put it in that file)"
        )
    raw = block["config_path"]
    if not isinstance(raw, str):
        raise ConfigError(f"{where}.config_path: must be a string path (got {raw!r})")
    path = _resolve(raw, base)
    if not path.is_file():
        raise ConfigError(f"{where}.config_path: file not found: {raw} (looked in {Path.cwd()} and {base})")
    data = _read_yaml(path, "redis config file")
    if isinstance(data, dict) and set(data) == {"redis"}:
        data = data["redis"]
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of redis keys")
    if "config_path" in data:
        raise ConfigError(f"{where}.config_path: not allowed inside the external redis config {path}")
    try:
        expanded: dict[str, Any] = expand_vars(data, environ, where)
    except ConfigError as exc:
        raise ConfigError(f"{exc} (in {path})") from None
    return expanded, path


def settings_from_dict(
    data: Any, environ: Mapping[str, str] | None = None, base: Path | None = None
) -> Settings:
    """Validate a parsed config tree: expand `${VAR}`, read `redis.config_path`, check every key.

    `base` is the directory relative paths fall back to (the config file's); default: the current one.
    """
    env = os.environ if environ is None else environ
    if not isinstance(data, dict):
        raise ConfigError("config: the top level must be a mapping")
    data = expand_vars(data, env)
    origin: tuple[str, Path] | None = None
    api = data.get("response_api")
    if isinstance(api, dict) and isinstance(api.get("redis"), dict) and "config_path" in api["redis"]:
        redis_block, ext_path = _external_redis(api["redis"], env, base or Path.cwd())
        data["response_api"] = {**api, "redis": redis_block}
        origin = ("response_api.redis", ext_path)
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_error(exc, origin)) from None


_EXAMPLE_BACKEND = "backends: [{name: local, base_url: 'http://127.0.0.1:8000/v1'}]"


def load_settings(path: str | Path, environ: Mapping[str, str] | None = None) -> Settings:
    """Read, expand and validate the YAML config at `path`."""
    p = Path(path)
    data = _read_yaml(p)
    if data == {}:  # an empty file (or only comments): nothing would answer a request
        raise ConfigError(f"backends: required: {p} is empty; give at least one backend ({_EXAMPLE_BACKEND})")
    return settings_from_dict(data, environ, p.parent)


def redacted(settings: Settings) -> dict[str, Any]:
    """The effective config with secrets replaced by `***`, for `check-config`: the values of
    SECRET_KEYS, and the user info of every URL or address (`https://user:pw@host` ->
    `https://***@host`, `redis://:pw@host:6379` -> `redis://***@host:6379`)."""

    def walk(v: Any) -> Any:
        if isinstance(v, dict):
            return {k: ("***" if k in SECRET_KEYS and x else walk(x)) for k, x in v.items()}
        if isinstance(v, list):
            return [walk(x) for x in v]
        if isinstance(v, str):
            return mask_url(v)
        return v

    result: dict[str, Any] = walk(settings.model_dump(mode="json"))
    return result
