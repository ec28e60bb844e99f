"""systemd/edge-agent.service agrees with the agent's defaults and the install guide.

(`systemd-analyze verify` runs over every unit in tests/integration/test_systemd_units.py.)
"""

from __future__ import annotations

from pathlib import Path

from edge_agent.config.models import Agent
from edge_agent.service import HealthConfig
from edge_agent.service.status_cli import DEFAULT_URL

ROOT = Path(__file__).parent.parent.parent
UNIT = ROOT / "systemd" / "edge-agent.service"


def directives() -> dict[str, list[str]]:
    """Every Key=value of the unit, repeated keys kept in order (comments skipped)."""
    found: dict[str, list[str]] = {}
    for line in UNIT.read_text().splitlines():
        if "=" in line and not line.startswith(("#", ";", "[")):
            key, value = line.split("=", 1)
            found.setdefault(key.strip(), []).append(value.strip())
    return found


def one(key: str) -> str:
    (value,) = directives()[key]
    return value


def test_a_notify_service_with_a_watchdog_that_always_restarts() -> None:
    assert one("Type") == "notify"
    assert one("NotifyAccess") == "main"
    assert one("WatchdogSec") == "30"
    assert one("Restart") == "always"
    assert one("RestartSec") == "5"
    assert one("ExecReload") == "/bin/kill -HUP $MAINPID"
    assert one("KillSignal") == "SIGTERM"
    assert "TimeoutStopSec" in directives()


def test_state_directory_is_the_configs_default_data_dir() -> None:
    data_dir = Agent.model_fields["data_dir"].default
    assert Path("/var/lib") / one("StateDirectory") == data_dir
    assert Path(one("WorkingDirectory")) == data_dir


def test_exec_start_runs_the_config_in_the_configuration_directory() -> None:
    executable, command, config = one("ExecStart").split()
    assert executable == "/opt/lineside/venv/bin/edge-agent"
    assert command == "run"
    assert Path(config).parent == Path("/etc") / one("ConfigurationDirectory")


def test_credentials_come_from_etc_lineside_credentials_under_their_own_name() -> None:
    loaded = dict(entry.split(":", 1) for entry in directives()["LoadCredential"])
    assert set(loaded) == {"mqtt-password", "opcua-password"}
    for name, source in loaded.items():
        assert source == f"/etc/lineside/credentials/{name}"


def test_serial_ports_stay_reachable_under_the_hardening() -> None:
    found = directives()
    assert one("SupplementaryGroups") == "dialout"
    assert one("DevicePolicy") == "closed"
    assert found["DeviceAllow"] == ["char-ttyS rw", "char-ttyUSB rw", "char-ttyACM rw"]
    assert "PrivateDevices" not in found
    assert {"AF_INET", "AF_INET6"} <= set(one("RestrictAddressFamilies").split())
    for key in ("NoNewPrivileges", "ProtectHome", "PrivateTmp"):
        assert one(key) == "yes"
    assert one("ProtectSystem") == "strict"


def test_status_cli_default_url_is_the_default_listen_address() -> None:
    assert f"http://{HealthConfig().listen}" == DEFAULT_URL
