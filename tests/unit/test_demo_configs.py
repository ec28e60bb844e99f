"""lineside_demo.configs: the compressed calendar, scaled cycle times, generated configs."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from collector.config import CollectorConfig
from collector.masterdata.loader import load_masterdata
from edge_agent.config.loader import load_config
from lineside_demo import configs
from simulators.scenario.loader import load_scenario

PORTS = configs.DemoPorts(4840, 5020, 8470, 9108, 9109, 8080)


@pytest.fixture(scope="module")
def scenario():  # type: ignore[no-untyped-def]
    return load_scenario(configs.SCENARIO)


@pytest.mark.parametrize(
    ("wall_start", "speed", "shift", "breaks"),
    [
        # 06:00-14:00 simulated at 60x: 8 minutes; breaks 09:00 (15 min) and 12:00 (30 min)
        (
            datetime(2026, 11, 29, 10, 0, 0, 400_000, tzinfo=UTC),
            60,
            ("sun", "10:00:00", "10:08:00"),
            [("10:03:00", "10:03:15"), ("10:06:00", "10:06:30")],
        ),
        # 120x: 4 minutes, and a shift running over midnight (end before start: next day)
        (
            datetime(2026, 11, 30, 23, 58, 0, tzinfo=UTC),
            120,
            ("mon", "23:58:00", "00:02:00"),
            [("23:59:30", "23:59:37"), ("00:01:00", "00:01:15")],
        ),
    ],
)
def test_calendar_is_the_simulated_shift_divided_by_speed(
    wall_start: datetime,
    speed: float,
    shift: tuple[str, str, str],
    breaks: list[tuple[str, str]],
) -> None:
    calendar = configs.compressed_calendar(wall_start, speed)
    assert calendar["timezone"] == "UTC"
    [entry] = calendar["shifts"]
    assert (entry["days"], entry["start"], entry["end"]) == shift
    assert [(b["start"], b["end"]) for b in entry["breaks"]] == breaks
    start, end = configs.shift_window(wall_start, speed)
    assert (end - start).total_seconds() == 8 * 3600 / speed


def test_masterdata_scales_cycle_times_and_micro_stops_and_loads(scenario, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    wall_start = datetime(2026, 11, 29, 10, 0, tzinfo=UTC)
    document = configs.masterdata_document(scenario, wall_start, 60)
    # press-1 3.0 s, weld-1 2.8 s, pack-1 2.5 s in the scenario: / 60
    assert document["products"] == {
        "panel-x": {
            "ideal_cycle_time_s": 0.05,
            "overrides": [
                {"equipment": "plant1/body/line2/weld-1", "ideal_cycle_time_s": 0.046667},
                {"equipment": "plant1/body/line2/pack-1", "ideal_cycle_time_s": 0.041667},
            ],
        }
    }
    assert document["oee"] == {"micro_stop_threshold_s": 2.0}
    path = configs.write_yaml(tmp_path / "masterdata.yaml", document)
    masterdata = load_masterdata(path)  # the collector accepts it as written
    assert masterdata.products["panel-x"].ideal_cycle_time_s == 0.05


def test_agent_config_has_no_ideal_cycle_times_and_the_demo_ports(tmp_path: Path) -> None:
    template = configs.read_yaml(configs.AGENT_TEMPLATE)
    document = configs.agent_document(template, PORTS, "127.0.0.1", 1884, tmp_path / "agent")
    assert "ideal_cycle_times_s" not in str(document)
    assert "ideal_cycle_times_s" in str(template)  # the template itself is untouched
    loaded = load_config(configs.write_yaml(tmp_path / "agent.yaml", document))
    assert loaded.agent.id == configs.AGENT_ID
    assert loaded.mqtt.port == 1884
    text = (tmp_path / "agent.yaml").read_text()
    assert "opc.tcp://127.0.0.1:4840" in text
    assert "port: 5020" in text


def test_collector_config_serves_the_api_with_ingest(tmp_path: Path) -> None:
    secret = configs.new_hs256_secret()
    document = configs.collector_document(PORTS, "127.0.0.1", 1883, tmp_path / "md.yaml", secret)
    config = CollectorConfig.model_validate(document)
    assert config.api is not None
    assert config.api.serve_with_ingest
    assert config.api.auth is not None
    assert config.api.auth.hs256_secret is not None
    assert config.api.auth.hs256_secret.get_secret_value() == secret
    assert config.oee_hours.enabled
    assert config.mqtt.group == configs.COLLECTOR_GROUP
    path = configs.write_yaml(tmp_path / "collector.yaml", document, private=True)
    assert path.stat().st_mode & 0o077 == 0
