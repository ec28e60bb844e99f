"""The ``alerts`` configuration section: defaults, rule kinds, names, ids, secrets."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from collector.alerts.config import (
    AlertsConfig,
    OeeBelowRule,
    OfflineRule,
    StopLongerThanRule,
)

SECRET_URL = "https://hooks.example/services/T000/B000/very-secret-token"


def alerts(**document: Any) -> AlertsConfig:
    return AlertsConfig.model_validate(document)


def problem(document: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as caught:
        AlertsConfig.model_validate(document)
    return str(caught.value)


def test_everything_has_a_default_and_alerts_are_off() -> None:
    config = AlertsConfig()
    assert config.enabled is False
    assert config.evaluate_every_s == 2.0
    assert config.mqtt is True
    assert config.rules == []
    assert config.webhooks == []


def test_the_three_rule_kinds_with_their_defaults() -> None:
    config = alerts(
        enabled=True,
        rules=[
            {"kind": "oee_below", "name": "oee-low", "threshold": 0.65},
            {"kind": "stop_longer_than", "name": "long-stop"},
            {"kind": "offline", "name": "offline", "ids": ["plant-1/pressing"]},
        ],
    )
    oee, stop, offline = config.rules
    assert isinstance(oee, OeeBelowRule)
    assert (oee.scope, oee.ids, oee.for_s, oee.window) == ("line", None, 600.0, "current_shift")
    assert isinstance(stop, StopLongerThanRule)
    assert (stop.states, stop.min_duration_s, stop.ids) == (["unplanned_stop"], 300.0, None)
    assert isinstance(offline, OfflineRule)
    assert (offline.for_s, offline.ids, offline.severity) == (60.0, ["plant-1/pressing"], "warning")
    assert config.rule("long-stop") is stop
    assert config.rule("nope") is None


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        (
            {"rules": [{"kind": "oee_high", "name": "x"}]},
            "does not match any of the expected tags: 'oee_below', 'stop_longer_than', 'offline'",
        ),
        (
            {"rules": [{"kind": "oee_below", "name": "x", "threshold": 65}]},
            "less than or equal to 1",
        ),
        (
            {"rules": [{"kind": "oee_below", "name": "x", "threshold": 0.6, "window": "day"}]},
            "Input should be 'current_shift'",
        ),
        (
            {"rules": [{"kind": "stop_longer_than", "name": "x", "states": ["stopped"]}]},
            "rules.0.stop_longer_than.states.0",
        ),
        (
            {"rules": [{"kind": "offline", "name": "x", "for_s": 0}]},
            "greater than 0",
        ),
        (
            {"rules": [{"kind": "offline", "name": "x", "timeout": 5}]},
            "Extra inputs are not permitted",
        ),
        (
            {"rules": [{"kind": "offline", "name": "a b"}]},
            "should match pattern",
        ),
        (
            {"rules": [{"kind": "offline", "name": "x"}, {"kind": "offline", "name": "x"}]},
            "rule name 'x' is used twice",
        ),
        (
            {"rules": [{"kind": "offline", "name": "x", "ids": ["plant-1/a/b/c/d"]}]},
            "is not a site, area, line or equipment id",
        ),
        (
            {"rules": [{"kind": "offline", "name": "x", "ids": ["plant 1"]}]},
            "is not a site, area, line or equipment id",
        ),
        (
            {
                "rules": [
                    {"kind": "oee_below", "name": "x", "threshold": 0.5, "ids": ["s/a/l/press"]}
                ]
            },
            "scope line judges whole lines, but 's/a/l/press' is an equipment id",
        ),
        ({"evaluate_every_s": 30}, "less than or equal to 5"),
        ({"surprise": True}, "Extra inputs are not permitted"),
        (
            {"webhooks": [{"name": "w", "url": SECRET_URL, "rules": ["missing"]}]},
            "webhook 'w': rules ['missing'] are not defined under rules (defined: none)",
        ),
        (
            {"webhooks": [{"name": "w", "url": SECRET_URL}, {"name": "w", "url": SECRET_URL}]},
            "webhook name 'w' is used twice",
        ),
        (
            {"webhooks": [{"name": "w", "url": SECRET_URL, "headers": {"Bad Header": "x"}}]},
            "'Bad Header' is not a valid HTTP header name",
        ),
    ],
)
def test_mistakes_are_named(document: dict[str, Any], expected: str) -> None:
    assert expected in problem(document)


def test_oee_below_on_equipment_takes_equipment_ids() -> None:
    config = alerts(
        rules=[
            {
                "kind": "oee_below",
                "name": "press-oee",
                "scope": "equipment",
                "ids": ["plant-1/pressing/line-3/press-1", "plant-2"],
                "threshold": 0.5,
                "for_s": 30,
                "severity": "critical",
            }
        ]
    )
    rule = config.rules[0]
    assert isinstance(rule, OeeBelowRule)
    assert rule.ids == ["plant-1/pressing/line-3/press-1", "plant-2"]
    assert rule.severity == "critical"


def test_webhook_url_and_headers_are_secrets_and_never_echoed() -> None:
    config = alerts(
        rules=[{"kind": "offline", "name": "offline"}],
        webhooks=[
            {
                "name": "teams",
                "url": SECRET_URL,
                "headers": {"Authorization": "Bearer s3cr3t-header"},
                "rules": ["offline"],
            }
        ],
    )
    hook = config.webhooks[0]
    assert hook.url.get_secret_value() == SECRET_URL
    assert (hook.timeout_s, hook.retries, hook.breaker_fail_max) == (5.0, 2, 3)
    shown = repr(config) + str(config.model_dump())
    assert "very-secret-token" not in shown
    assert "s3cr3t-header" not in shown

    text = problem({"webhooks": [{"name": "w", "url": "ftp://user:very-secret-token@x"}]})
    assert "url must be an http:// or https:// URL with a host name" in text
    assert "very-secret-token" not in text
    text = problem({"webhooks": [{"name": "w", "url": SECRET_URL, "timeout_s": "soon"}]})
    assert "very-secret-token" not in text
    assert "soon" not in text  # hide_input_in_errors


def test_every_field_is_described() -> None:
    from collector.alerts.config import Webhook

    for model in (AlertsConfig, OeeBelowRule, StopLongerThanRule, OfflineRule, Webhook):
        for name, field in model.model_fields.items():
            assert field.description, f"{model.__name__}.{name} has no description"
