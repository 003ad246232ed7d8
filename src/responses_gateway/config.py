"""Settings: the YAML config parsed once into a frozen, typed tree (`load_settings`)."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from responses_gateway.errors import ConfigError

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
SECRET_KEYS = frozenset({"api_key", "password", "encryption_key"})


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ServerSettings(_Model):
    host: str = "127.0.0.1"
    port: int = Field(default=8801, ge=0, le=65535)


class BackendSettings(_Model):
    name: str
    base_url: str
    api_key: str | None = None
    models: list[str] = Field(default_factory=lambda: ["*"], min_length=1)
    timeout_seconds: float = Field(default=300.0, gt=0)

    @field_validator("base_url")
    @classmethod
    def _url(cls, v: str) -> str:
        if not v.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return v.rstrip("/")


class MemorySettings(_Model):
    max_responses: int = Field(default=10_000, ge=1)


class SQLiteSettings(_Model):
    path: str = "data/responses.db"
    purge_interval_seconds: float = Field(default=60.0, gt=0)


class RedisSettings(_Model):
    """The reference's `redis:` block (seed), plus `username` and the durability wait."""

    address: str | None = None
    username: str | None = None
    password: str | None = None
    db: int = Field(default=0, ge=0, le=15)
    key_prefix: str = "sr:"
    cluster_mode: bool = False
    cluster_addresses: list[str] = Field(default_factory=list)
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
            return self  # replaced by the external file in load_settings
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
        if (self.tls_cert_path is None) != (self.tls_key_path is None):
            raise ValueError("tls_cert_path and tls_key_path: give both or neither")
        return self


class ResponseAPISettings(_Model):
    enabled: bool = True
    store_backend: Literal["memory", "sqlite", "redis"] = "memory"
    ttl_seconds: int = Field(default=2_592_000, ge=1)
    max_responses: int | None = Field(default=None, ge=1, description="reference alias of memory.max_responses")
    memory: MemorySettings = Field(default_factory=MemorySettings)
    sqlite: SQLiteSettings = Field(default_factory=SQLiteSettings)
    redis: RedisSettings | None = None
    reject_hosted_tools: bool = False
    encryption_key: str | None = None

    @model_validator(mode="after")
    def _check(self) -> ResponseAPISettings:
        if self.store_backend == "redis" and self.redis is None:
            raise ValueError("redis: required when store_backend is redis")
        return self

    @property
    def memory_max_responses(self) -> int:
        return self.max_responses if self.max_responses is not None else self.memory.max_responses


class Settings(_Model):
    server: ServerSettings = Field(default_factory=ServerSettings)
    backends: list[BackendSettings] = Field(default_factory=list)
    response_api: ResponseAPISettings = Field(default_factory=ResponseAPISettings)
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    @model_validator(mode="after")
    def _names(self) -> Settings:
        names = [b.name for b in self.backends]
        if len(names) != len(set(names)):
            raise ValueError("backends: names must be unique")
        return self


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


def _read_yaml(path: Path, environ: Mapping[str, str]) -> Any:
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror or exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {exc}".replace("\n", " ")) from None
    return expand_vars(data if data is not None else {}, environ)


def _resolve(path: str, base: Path) -> Path:
    p = Path(path)
    if p.is_absolute() or p.exists():
        return p
    return base / p


def _format_error(exc: ValidationError) -> str:
    first = exc.errors()[0]
    loc = ".".join(str(x) for x in first["loc"])
    msg = str(first["msg"]).removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        msg = "unknown key"
    return f"{loc}: {msg}" if loc else msg


def settings_from_dict(data: Any, environ: Mapping[str, str] | None = None, base: Path | None = None) -> Settings:
    """Validate an already-parsed config tree (tests and `load_settings` share this)."""
    env = os.environ if environ is None else environ
    if not isinstance(data, dict):
        raise ConfigError("config: the top level must be a mapping")
    data = dict(data)
    api = data.get("response_api")
    if isinstance(api, dict) and isinstance(api.get("redis"), dict) and api["redis"].get("config_path"):
        ext_path = _resolve(str(api["redis"]["config_path"]), base or Path.cwd())
        ext = _read_yaml(ext_path, env)
        if isinstance(ext, dict) and set(ext) == {"redis"}:
            ext = ext["redis"]
        if not isinstance(ext, dict):
            raise ConfigError(f"{ext_path}: the top level must be a mapping of redis keys")
        if "config_path" in ext:
            raise ConfigError(f"{ext_path}: config_path: not allowed inside an external redis config")
        api = dict(api)
        api["redis"] = ext
        data["response_api"] = api
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_error(exc)) from None


def load_settings(path: str | Path, environ: Mapping[str, str] | None = None) -> Settings:
    """Read, expand and validate the YAML config at `path`."""
    env = os.environ if environ is None else environ
    p = Path(path)
    return settings_from_dict(_read_yaml(p, env), env, p.parent)


def redacted(settings: Settings) -> dict[str, Any]:
    """The effective config with secrets replaced by `***`, for `check-config`."""

    def walk(v: Any) -> Any:
        if isinstance(v, dict):
            return {k: ("***" if k in SECRET_KEYS and x else walk(x)) for k, x in v.items()}
        if isinstance(v, list):
            return [walk(x) for x in v]
        return v

    result: dict[str, Any] = walk(settings.model_dump(mode="json"))
    return result
