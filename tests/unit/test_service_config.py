"""The health section of the agent config: host:port parsing and the model's rules."""

from __future__ import annotations

import re

import pytest
from pydantic import ValidationError

from edge_agent.service import HealthConfig, parse_listen


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:9108", ("127.0.0.1", 9108)),
        ("0.0.0.0:80", ("0.0.0.0", 80)),
        ("[::1]:9108", ("::1", 9108)),
        ("[::]:9108", ("::", 9108)),
        ("[fe80::1%eth0]:9108", ("fe80::1%eth0", 9108)),
        ("localhost:9108", ("localhost", 9108)),
        ("line-pc-1.plant.example:9108", ("line-pc-1.plant.example", 9108)),
        ("127.0.0.1:0", ("127.0.0.1", 0)),
        (" 127.0.0.1:9108 ", ("127.0.0.1", 9108)),
    ],
)
def test_valid_listen_addresses(text: str, expected: tuple[str, int]) -> None:
    assert parse_listen(text) == expected


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("9108", "is not host:port"),
        ("127.0.0.1", "is not host:port"),
        ("::1:9108", "is not host:port"),
        ("[::1]", "is not host:port"),
        ("127.0.0.1:65536", "port 65536 is out of range"),
        ("127.0.0.1:port", "is not host:port"),
        ("[not-v6]:9108", "'not-v6' is not an IPv6 address"),
        ("300.1.1.1:9108", "'300.1.1.1' is not an IPv4 address"),
        ("bad_host:9108", "'bad_host' is not a valid host name"),
        ("-lead.example:9108", "is not a valid host name"),
    ],
)
def test_invalid_listen_addresses_say_what_is_wrong(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=re.escape(problem)):
        parse_listen(text)


def test_defaults_listen_on_loopback() -> None:
    config = HealthConfig()
    assert config.enabled is True
    assert (config.host, config.port) == ("127.0.0.1", 9108)


def test_ipv6_listen_is_accepted() -> None:
    config = HealthConfig.model_validate({"listen": "[::1]:9108"})
    assert (config.host, config.port) == ("::1", 9108)


def test_an_invalid_listen_is_a_validation_error_at_the_key() -> None:
    with pytest.raises(ValidationError) as caught:
        HealthConfig.model_validate({"listen": "localhost"})
    (error,) = caught.value.errors()
    assert error["loc"] == ("listen",)
    assert "is not host:port" in error["msg"]


def test_unknown_keys_are_errors() -> None:
    with pytest.raises(ValidationError, match=r"Extra inputs are not permitted"):
        HealthConfig.model_validate({"listen": "127.0.0.1:9108", "port": 9108})


def test_every_field_is_described_for_the_schema() -> None:
    schema = HealthConfig.model_json_schema()
    assert set(schema["properties"]) == {"enabled", "listen"}
    assert all(prop.get("description") for prop in schema["properties"].values())
