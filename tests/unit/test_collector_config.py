"""The collector's configuration: the example loads, problems are located, DSN order."""

from __future__ import annotations

from pathlib import Path

import pytest

from collector.config import (
    DATABASE_URL_ENV,
    CollectorConfig,
    load_collector_config,
    resolve_database_url,
)
from lineside_common.yamlconfig import ConfigFileError

EXAMPLE = Path(__file__).parent.parent.parent / "config" / "collector.example.yaml"


def test_the_example_loads_with_its_credentials(tmp_path: Path) -> None:
    (tmp_path / "mqtt-password").write_text("s3cret\n")
    (tmp_path / "database-url").write_text("postgresql://lineside@db/lineside\n")
    (tmp_path / "api-hs256-secret").write_text("k" * 40 + "\n")
    (tmp_path / "webhook-url").write_text("https://chat.example/hooks/T0K3N\n")
    config = load_collector_config(EXAMPLE, {"CREDENTIALS_DIRECTORY": str(tmp_path)})
    assert config.mqtt.password is not None
    assert config.mqtt.password.get_secret_value() == "s3cret"
    assert config.mqtt.resolved_port == 8883
    assert resolve_database_url(config, None, {}) == "postgresql://lineside@db/lineside"
    assert config.api.auth is not None
    assert config.api.auth.hs256_secret is not None
    assert config.api.auth.hs256_secret.get_secret_value() == "k" * 40
    assert [rule.name for rule in config.alerts.rules] == [
        "line-oee-low",
        "long-stop",
        "machine-offline",
    ]
    assert config.masterdata_file == EXAMPLE.parent / "masterdata.yaml"
    for secret in ("s3cret", "k" * 40, "T0K3N"):  # secrets never printed
        assert secret not in repr(config)


def test_no_file_means_every_default() -> None:
    config = load_collector_config(None)
    assert config == CollectorConfig()
    assert config.mqtt.broker == "127.0.0.1:1883"
    assert config.health.listen == "127.0.0.1:9109"


def test_every_problem_is_located(tmp_path: Path) -> None:
    path = tmp_path / "collector.yaml"
    path.write_text("mqtt:\n  hots: broker\n  group: 'a/b'\ningest:\n  max_events_per_commit: 0\n")
    with pytest.raises(ConfigFileError) as caught:
        load_collector_config(path, {})
    report = caught.value.report(str(path))
    assert f"{path}:2:3: mqtt.hots: unknown key" in report
    assert f"{path}:3:3: mqtt.group:" in report
    assert f"{path}:5:3: ingest.max_events_per_commit:" in report


def test_password_without_username_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "collector.yaml"
    path.write_text("mqtt:\n  password: x\n")
    with pytest.raises(ConfigFileError, match="password is set but username is not"):
        load_collector_config(path, {})


@pytest.mark.parametrize(
    ("dsn", "env", "in_file", "expected"),
    [
        ("postgresql://a", "postgresql://b", "postgresql://c", "postgresql://a"),
        (None, "postgresql://b", "postgresql://c", "postgresql://b"),
        (None, None, "postgresql://c", "postgresql://c"),
        (None, None, None, None),
    ],
)
def test_database_url_order(
    dsn: str | None, env: str | None, in_file: str | None, expected: str | None
) -> None:
    config = CollectorConfig.model_validate({"database": {"url": in_file}})
    environ = {DATABASE_URL_ENV: env} if env else {}
    assert resolve_database_url(config, dsn, environ) == expected
