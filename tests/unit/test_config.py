"""Config: the seed's YAML parses; every bad value is a one-line ConfigError naming its key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from responses_gateway.config import (
    RedisSettings,
    Settings,
    expand_vars,
    load_settings,
    redacted,
    settings_from_dict,
)
from responses_gateway.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]

# The seed's "Option 1: Inline Configuration", verbatim (indentation restored).
SEED_OPTION_1 = """
response_api:
  enabled: true
  store_backend: "redis"
  ttl_seconds: 86400
  redis:
    cluster_mode: true
    cluster_addresses:
      - "127.0.0.1:7001"
      - "127.0.0.1:7002"
      - "127.0.0.1:7003"
      - "127.0.0.1:7004"
      - "127.0.0.1:7005"
      - "127.0.0.1:7006"
    db: 0 # MUST be 0 for cluster
    key_prefix: "sr:"
    pool_size: 20 # Higher for cluster
    max_retries: 5 # More retries for redirects
    dial_timeout: 10 # Longer for cluster
"""

# The seed's "Option 2: External Config File", verbatim.
SEED_OPTION_2 = """
response_api:
  enabled: true
  store_backend: "redis"
  ttl_seconds: 86400
  redis:
    config_path: "config/response-api/redis-cluster.yaml"
"""

CLUSTER_FILE = """
cluster_mode: true
cluster_addresses: ["127.0.0.1:7001", "127.0.0.1:7002", "127.0.0.1:7003"]
password: ${REDIS_PASSWORD}
key_prefix: "sr"
pool_size: 20
"""


def parse(text: str, environ: dict[str, str] | None = None, base: Path | None = None) -> Settings:
    return settings_from_dict(yaml.safe_load(text), environ or {}, base)


def error_of(data: Any, environ: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as info:
        settings_from_dict(data, environ or {})
    message = str(info.value)
    assert "\n" not in message
    return message


def redis_config(**redis: Any) -> dict[str, Any]:
    return {"response_api": {"store_backend": "redis", "redis": redis}}


def test_empty_config_gives_defaults() -> None:
    s = settings_from_dict({}, {})
    assert s.server.host == "127.0.0.1" and s.server.port == 8801
    assert s.response_api.store_backend == "memory"
    assert s.response_api.ttl_seconds == 2_592_000
    assert s.response_api.memory_max_responses == 10_000
    assert s.log_level == "info"


def test_seed_option_1_parses() -> None:
    s = parse(SEED_OPTION_1)
    api = s.response_api
    assert api.enabled and api.store_backend == "redis" and api.ttl_seconds == 86400
    assert api.redis is not None
    assert api.redis.cluster_mode
    assert api.redis.cluster_addresses == [f"127.0.0.1:{p}" for p in range(7001, 7007)]
    assert api.redis.key_prefix == "sr:"
    assert (api.redis.pool_size, api.redis.max_retries, api.redis.dial_timeout) == (20, 5, 10.0)
    # the reference's defaults for what the seed leaves out
    assert (api.redis.min_idle_conns, api.redis.read_timeout, api.redis.write_timeout) == (2, 3.0, 3.0)


def test_seed_option_2_reads_the_external_file_from_the_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ext = tmp_path / "config" / "response-api" / "redis-cluster.yaml"
    ext.parent.mkdir(parents=True)
    ext.write_text(CLUSTER_FILE)
    main = tmp_path / "config" / "config.yaml"
    main.write_text(SEED_OPTION_2)
    monkeypatch.chdir(tmp_path)
    s = load_settings(main, {"REDIS_PASSWORD": "s3cret"})
    redis = s.response_api.redis
    assert redis is not None
    assert redis.cluster_mode and len(redis.cluster_addresses) == 3
    assert redis.password == "s3cret"  # ${VAR} expanded inside the external file too
    assert redis.key_prefix == "sr:"
    assert redis.config_path is None  # replaced, not merged


def test_external_file_falls_back_to_the_config_files_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    conf_dir = tmp_path / "etc"
    (conf_dir / "redis").mkdir(parents=True)
    (conf_dir / "redis" / "cluster.yaml").write_text(
        "redis:\n  cluster_mode: true\n  cluster_addresses: ['127.0.0.1:7001']\n"
    )
    main = conf_dir / "gateway.yaml"
    main.write_text("response_api:\n  store_backend: redis\n  redis:\n    config_path: redis/cluster.yaml\n")
    monkeypatch.chdir(tmp_path)  # redis/cluster.yaml is not here
    redis = load_settings(main, {}).response_api.redis
    assert redis is not None and redis.cluster_addresses == ["127.0.0.1:7001"]


def test_external_file_errors_name_the_key_and_the_file(tmp_path: Path) -> None:
    ext = tmp_path / "r.yaml"
    ext.write_text("cluster_mode: true\n")
    main = tmp_path / "c.yaml"
    main.write_text(f"response_api:\n  store_backend: redis\n  redis:\n    config_path: {ext}\n")
    with pytest.raises(ConfigError, match=r"^response_api\.redis\.cluster_addresses: required .*r\.yaml"):
        load_settings(main, {})
    ext.write_text("address: ${NOPE}\n")
    with pytest.raises(ConfigError, match=r"^response_api\.redis\.address: environment variable NOPE"):
        load_settings(main, {})


def test_missing_external_file_names_config_path(tmp_path: Path) -> None:
    message = error_of(redis_config(config_path=str(tmp_path / "absent.yaml")))
    assert message.startswith("response_api.redis.config_path: file not found")


def test_inline_keys_next_to_config_path_are_an_error(tmp_path: Path) -> None:
    ext = tmp_path / "r.yaml"
    ext.write_text("address: 127.0.0.1:6379\n")
    message = error_of(redis_config(config_path=str(ext), pool_size=5))
    assert message.startswith("response_api.redis.pool_size: not allowed next to config_path")


def test_env_vars_expand_anywhere() -> None:
    s = parse(
        """
server: {host: "${HOST}", port: "${PORT}"}
backends:
  - {name: a, base_url: "http://${HOST}:8000/v1", api_key: "${KEY}"}
response_api:
  store_backend: redis
  redis: {address: "${HOST}:6379", password: "pre-${KEY}-post"}
""",
        {"HOST": "127.0.0.2", "PORT": "9000", "KEY": "k"},
    )
    assert s.server.host == "127.0.0.2" and s.server.port == 9000
    assert s.backends[0].base_url == "http://127.0.0.2:8000/v1" and s.backends[0].api_key == "k"
    assert s.response_api.redis is not None and s.response_api.redis.password == "pre-k-post"


def test_missing_env_var_names_it_and_the_key() -> None:
    message = error_of(redis_config(address="127.0.0.1:6379", password="${REDIS_PASSWORD}"))
    assert message == "response_api.redis.password: environment variable REDIS_PASSWORD is not set"


def test_expand_vars_walks_lists() -> None:
    assert expand_vars({"a": ["${X}", 1, None]}, {"X": "y"}) == {"a": ["y", 1, None]}
    with pytest.raises(ConfigError, match=r"^a\[1\]: environment variable Z"):
        expand_vars({"a": ["x", "${Z}"]}, {})


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (
            redis_config(cluster_mode=True),
            "response_api.redis.cluster_addresses: required when cluster_mode is true",
        ),
        (redis_config(), "response_api.redis.address: required when cluster_mode is false"),
        (
            redis_config(cluster_mode=True, cluster_addresses=["127.0.0.1:7001"], db=3),
            "response_api.redis.db: must be 0 when cluster_mode is true",
        ),
        (redis_config(address="127.0.0.1:6379", db=16), "response_api.redis.db: "),
        (redis_config(address="127.0.0.1:99999"), "response_api.redis.address: must be host:port"),
        (redis_config(address="http://h/x"), "response_api.redis.address: must be host:port"),
        (
            redis_config(cluster_mode=True, cluster_addresses=["127.0.0.1:7001", "h:x"]),
            "response_api.redis.cluster_addresses[1]: must be host:port",
        ),
        (
            redis_config(address="127.0.0.1:6379", tls_enabled=True, tls_ca_path="/nonexistent/ca.pem"),
            "response_api.redis.tls_ca_path: file not found: /nonexistent/ca.pem",
        ),
        ({"response_api": {"store_backend": "redis"}}, "response_api.redis: required when store_backend"),
        ({"response_api": {"ttl_seconds": 0}}, "response_api.ttl_seconds: "),
        ({"response_api": {"ttl_seconds": "a day"}}, "response_api.ttl_seconds: "),
        ({"response_api": {"store_backend": "postgres"}}, "response_api.store_backend: "),
        ({"response_api": {"redis_config": {}}}, "response_api.redis_config: unknown key"),
        ({"respones_api": {}}, "respones_api: unknown key (did you mean 'response_api'?)"),
        ({"server": {"port": 70000}}, "server.port: "),
        ({"server": {"workers": 0}}, "server.workers: must be a whole number of processes, 1 or more"),
        ({"server": {"workers": "many"}}, "server.workers: must be a whole number"),
        ({"backends": [{"name": "a"}]}, "backends[0].base_url: required"),
        ({"backends": [{"name": "a", "base_url": "127.0.0.1:8000"}]}, "backends[0].base_url: must start"),
        (
            {"backends": [{"name": "a", "base_url": "http://x"}, {"name": "a", "base_url": "http://y"}]},
            "backends: names must be unique",
        ),
        ({"log_level": "loud"}, "log_level: "),
        ([1, 2], "config: the top level must be a mapping"),
    ],
)
def test_bad_values_name_their_key(data: Any, expected: str) -> None:
    assert error_of(data).startswith(expected)


def test_store_backend_is_a_name_of_the_one_backend_table() -> None:
    from responses_gateway.stores import BACKENDS

    names = ", ".join(repr(name) for name in BACKENDS)
    assert error_of({"response_api": {"store_backend": "postgres"}}) == (
        f"response_api.store_backend: must be one of {names} (got 'postgres')"
    )
    assert settings_from_dict(
        {"response_api": {"store_backend": "sqlite"}}, {}
    ).response_api.store_backend == ("sqlite")


@pytest.mark.parametrize(
    ("given", "expected"), [(None, 1), (4, 4), ("2", 2), ("auto", "auto"), ("AUTO", "auto")]
)
def test_server_workers(given: Any, expected: Any) -> None:
    data = {} if given is None else {"server": {"workers": given}}
    assert settings_from_dict(data, {}).server.workers == expected


def test_wrong_type_says_what_was_given() -> None:
    message = error_of({"response_api": {"store_backend": "postgres"}})
    assert "'memory'" in message and "(got 'postgres')" in message


def test_every_error_is_listed_one_per_line() -> None:
    with pytest.raises(ConfigError) as info:
        settings_from_dict({"server": {"port": -1, "host": [], "prot": 1}, "log_level": "x"}, {})
    lines = str(info.value).splitlines()
    assert [line.split(":", 1)[0] for line in lines] == [
        "server.host",
        "server.port",
        "server.prot",
        "log_level",
    ]
    assert "more error" not in str(info.value)


def test_secrets_never_appear_in_errors() -> None:
    message = error_of({"backends": [{"name": "a", "base_url": "http://x", "api_key": ["sk-123"]}]})
    assert "sk-123" not in message


def test_key_prefix_gets_a_trailing_colon() -> None:
    s = settings_from_dict(redis_config(address="127.0.0.1:6379", key_prefix="myapp"), {})
    assert s.response_api.redis is not None and s.response_api.redis.key_prefix == "myapp:"
    assert RedisSettings(address="h:1", key_prefix="a:").key_prefix == "a:"
    assert error_of(redis_config(address="h:1", key_prefix="")).startswith("response_api.redis.key_prefix:")


def test_tls_files_must_come_in_pairs(tmp_path: Path) -> None:
    cert = tmp_path / "cert.pem"
    cert.write_text("x")
    message = error_of(redis_config(address="h:1", tls_enabled=True, tls_cert_path=str(cert)))
    assert message.startswith("response_api.redis.tls_key_path: required when tls_cert_path is set")
    key = tmp_path / "key.pem"
    key.write_text("x")
    s = settings_from_dict(
        redis_config(address="h:1", tls_enabled=True, tls_cert_path=str(cert), tls_key_path=str(key)), {}
    )
    assert s.response_api.redis is not None and s.response_api.redis.tls_enabled


def test_max_responses_is_the_references_alias_for_memory() -> None:
    s = settings_from_dict({"response_api": {"max_responses": 5}}, {})
    assert s.response_api.memory_max_responses == 5
    s = settings_from_dict({"response_api": {"memory": {"max_responses": 7}}}, {})
    assert s.response_api.memory_max_responses == 7


def test_numbers_are_accepted_where_strings_are_wanted() -> None:
    s = settings_from_dict(redis_config(address="h:1", password=12345), {})
    assert s.response_api.redis is not None and s.response_api.redis.password == "12345"


def test_log_level_is_case_insensitive() -> None:
    assert settings_from_dict({"log_level": "DEBUG"}, {}).log_level == "debug"


@pytest.mark.parametrize("address", ["127.0.0.1:6379", "redis.local:6380", "[::1]:6379", "localhost"])
def test_address_forms(address: str) -> None:
    s = settings_from_dict(redis_config(address=address), {})
    assert s.response_api.redis is not None and s.response_api.redis.address == address


def test_durability_wait_keys() -> None:
    s = settings_from_dict(redis_config(address="h:1", wait_replicas=1, wait_timeout_ms=250), {})
    assert s.response_api.redis is not None
    assert (s.response_api.redis.wait_replicas, s.response_api.redis.wait_timeout_ms) == (1, 250)


def test_settings_are_frozen() -> None:
    s = settings_from_dict({}, {})
    with pytest.raises(ValueError):
        s.server.port = 1  # type: ignore[misc]


def test_redacted_hides_secrets_only() -> None:
    s = settings_from_dict(
        {
            "backends": [{"name": "a", "base_url": "http://x", "api_key": "sk-123"}],
            "response_api": {"store_backend": "redis", "redis": {"address": "h:1", "password": "pw"}},
        },
        {},
    )
    out = redacted(s)
    assert out["backends"][0]["api_key"] == "***"
    assert out["response_api"]["redis"]["password"] == "***"
    assert out["response_api"]["redis"]["address"] == "h:1"
    assert out["response_api"]["encryption_key"] is None  # unset secrets stay visibly unset
    assert "sk-123" not in yaml.safe_dump(out) and "pw" not in yaml.safe_dump(out)


def test_unreadable_and_invalid_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_settings(tmp_path / "absent.yaml", {})
    bad = tmp_path / "bad.yaml"
    bad.write_text("server: [unclosed\n")
    with pytest.raises(ConfigError, match="invalid YAML") as info:
        load_settings(bad, {})
    assert "\n" not in str(info.value)
    for text in ("", "# nothing\n", "{}\n"):
        empty = tmp_path / "empty.yaml"
        empty.write_text(text)
        with pytest.raises(
            ConfigError, match=r"^backends: required: .*empty\.yaml is empty; give at least one"
        ):
            load_settings(empty, {})


def test_shipped_config_is_valid(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    s = load_settings(REPO / "config" / "config.yaml", {})
    assert (s.server.host, s.server.port) == ("127.0.0.1", 8801)
    assert [b.name for b in s.backends] == ["llm-katan"]
    assert s.backends[0].models == ["qwen3"]
    assert s.backends[0].base_url == "http://127.0.0.1:8000/v1"
    api = s.response_api
    assert (api.enabled, api.store_backend, api.ttl_seconds) == (True, "sqlite", 2_592_000)
    assert api.sqlite.path == "data/responses.db"
