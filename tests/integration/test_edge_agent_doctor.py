"""``edge-agent doctor`` against a running plc-sim (OPC UA + Modbus) and a Mosquitto
with a password file, both on free loopback ports; each case breaks one thing."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from _mosquitto import MOSQUITTO_PASSWD, Mosquitto, free_port, make_tls_files, write_password_file
from _sim_process import SimProcess

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(MOSQUITTO_PASSWD is None, reason="mosquitto_passwd is not installed"),
]

EDGE_AGENT = str(Path(sys.executable).parent / "edge-agent")
EXAMPLE = Path(__file__).parent.parent.parent / "config" / "agent.line-3-machines.yaml"
USER = "line2-pc1"
PASSWORD = "doctor-Secret-pw1"
PRESS_STATE = "nsu=urn:lineside:simulator;s=plant1.body.line2.press-1.State"
PACK_STATE = "{table: holding_register, address: 0, unit_id: 3"


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimProcess]:
    process = SimProcess(tmp_path_factory.mktemp("sim"))
    yield process
    process.stop()


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mosquitto]:
    workdir = tmp_path_factory.mktemp("mosquitto")
    passwords = write_password_file(workdir / "passwords", {USER: PASSWORD})
    with Mosquitto(workdir, password_file=passwords) as mosquitto:
        yield mosquitto


@pytest.fixture(scope="module")
def good_config(
    sim: SimProcess, broker: Mosquitto, tmp_path_factory: pytest.TempPathFactory
) -> str:
    """The example configuration pointed at the test's simulator and broker."""
    data_dir = tmp_path_factory.mktemp("agent")
    text = EXAMPLE.read_text()
    text = text.replace("port: 5020", f"port: {sim.modbus_port}")
    text = text.replace("opc.tcp://127.0.0.1:4840", f"opc.tcp://127.0.0.1:{sim.opcua_port}")
    text = text.replace("data_dir: var/agent/line2-pc1", f"data_dir: {data_dir}")
    text = text.replace("max_bytes: 1073741824", "max_bytes: 16777216")
    text = text.replace(
        "  port: 1883\n",
        f"  port: {broker.port}\n  username: {USER}\n  password: {PASSWORD}\n",
    )
    assert PACK_STATE in text
    assert PRESS_STATE in text
    return text


def doctor(
    tmp_path: Path, text: str, *args: str, name: str = "agent.yaml"
) -> subprocess.CompletedProcess[str]:
    path = tmp_path / name
    path.write_text(text)
    return subprocess.run(
        [EDGE_AGENT, "doctor", str(path), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"COLUMNS": "250", "PATH": "/usr/bin:/bin"},
    )


def checks_of(result: subprocess.CompletedProcess[str]) -> dict[str, dict[str, str]]:
    document = json.loads(result.stdout)
    assert document["exit_code"] == result.returncode
    return {check["name"]: check for check in document["checks"]}


def test_a_healthy_line_is_all_ok_and_no_secret_is_shown(tmp_path: Path, good_config: str) -> None:
    result = doctor(tmp_path, good_config)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "FAIL" not in result.stdout
    for name in ("plc line2-opcua session", "plc pack-modbus pack-1", "broker mqtt"):
        assert name in result.stdout
    assert PASSWORD not in result.stdout + result.stderr

    checks = checks_of(doctor(tmp_path, good_config, "--json"))
    expected_ok = [
        "config",
        "plc line2-opcua tcp",
        "plc line2-opcua session",
        "plc line2-opcua tags",
        "plc pack-modbus tcp",
        "plc pack-modbus pack-1",
        "broker tcp",
        "broker mqtt",
        "disk data_dir",
        "disk space",
        "disk buffer",
    ]
    assert {name: checks[name]["status"] for name in expected_ok} == dict.fromkeys(
        expected_ok, "ok"
    )
    assert "all 13 tags read" in checks["plc line2-opcua tags"]["detail"]
    assert checks["clock"]["status"] in ("ok", "warn", "fail")  # depends on this machine


def test_a_wrong_modbus_port_fails_with_a_fix(
    tmp_path: Path, good_config: str, sim: SimProcess
) -> None:
    text = good_config.replace(f"port: {sim.modbus_port}", f"port: {free_port()}")
    result = doctor(tmp_path, text, "--json")
    assert result.returncode == 1
    check = checks_of(result)["plc pack-modbus tcp"]
    assert check["status"] == "fail"
    assert "connection refused" in check["detail"]
    assert "wrong port" in check["fix"]


def test_a_modbus_address_outside_the_register_map_is_explained(
    tmp_path: Path, good_config: str
) -> None:
    text = good_config.replace(PACK_STATE, "{table: holding_register, address: 9000, unit_id: 3")
    result = doctor(tmp_path, text, "--json")
    assert result.returncode == 1
    check = checks_of(result)["plc pack-modbus pack-1"]
    assert check["status"] == "fail"
    assert "pack-1.state (holding_register 9000, unit_id 3)" in check["detail"]
    assert "exception 2 (illegal data address)" in check["detail"]
    assert "register map" in check["fix"]


def test_a_wrong_mqtt_password_fails_naming_authentication(
    tmp_path: Path, good_config: str
) -> None:
    result = doctor(tmp_path, good_config.replace(PASSWORD, "not-the-password"), "--json")
    assert result.returncode == 1
    checks = checks_of(result)
    assert checks["broker tcp"]["status"] == "ok"
    assert checks["broker mqtt"]["status"] == "fail"
    assert "authentication refused" in checks["broker mqtt"]["detail"]
    assert "mqtt.username" in checks["broker mqtt"]["fix"]
    assert "not-the-password" not in result.stdout


def test_a_missing_opcua_node_fails_naming_the_tag(tmp_path: Path, good_config: str) -> None:
    result = doctor(tmp_path, good_config.replace(PRESS_STATE, PRESS_STATE + "Nope"), "--json")
    assert result.returncode == 1
    checks = checks_of(result)
    assert checks["plc line2-opcua session"]["status"] == "ok"
    tags = checks["plc line2-opcua tags"]
    assert tags["status"] == "fail"
    assert tags["detail"].startswith("1 of 13 tags have no node on the server: press-1.state (")
    assert "BadNodeIdUnknown" in tags["detail"]
    assert "edge-agent discover" in tags["fix"]


def test_an_invalid_config_exits_2_with_file_and_line(tmp_path: Path, good_config: str) -> None:
    text = good_config.replace("timeout_s: 1\n", "timeout_s: 1\n      speed: fast\n")
    result = doctor(tmp_path, text)
    assert result.returncode == 2
    assert f"{tmp_path / 'agent.yaml'}:" in result.stderr
    assert "speed: unknown key" in result.stderr
    as_json = doctor(tmp_path, text, "--json")
    assert as_json.returncode == 2
    (config,) = json.loads(as_json.stdout)["checks"]
    assert config["name"] == "config"
    assert config["status"] == "fail"
    assert config["detail"].startswith(f"1 problem(s): {tmp_path / 'agent.yaml'}:")


def test_a_broker_certificate_from_an_unknown_ca_is_explained(
    tmp_path: Path, good_config: str, broker: Mosquitto
) -> None:
    tls = make_tls_files(tmp_path / "pki")
    stranger = make_tls_files(tmp_path / "other-pki")
    port = free_port()

    def with_ca(ca_file: Path) -> str:
        tls_line = (
            f"  tls: {{ca_file: {ca_file}, cert_file: {tls.client_cert}, "
            f"key_file: {tls.client_key}}}\n"
        )
        return good_config.replace(f"  port: {broker.port}\n", f"  port: {port}\n{tls_line}")

    with Mosquitto(tmp_path / "tls-broker", tls=tls, port=port):
        trusted = checks_of(doctor(tmp_path, with_ca(tls.ca_cert), "--json"))
        unknown = checks_of(doctor(tmp_path, with_ca(stranger.ca_cert), "--json"))
    # the test CA issues certificates valid for one day: trusted, and due for renewal
    assert trusted["broker tls"]["status"] == "warn", trusted["broker tls"]
    assert "certificate trusted, but it expires in" in trusted["broker tls"]["detail"]
    assert trusted["broker mqtt"]["status"] == "ok", trusted["broker mqtt"]
    assert unknown["broker tls"]["status"] == "fail"
    assert "signed by an unknown CA" in unknown["broker tls"]["detail"]
    assert "mqtt.tls.ca_file" in unknown["broker tls"]["fix"]
    assert "broker mqtt" not in unknown  # not tried after a failed handshake


def test_everything_down_still_reports_quickly(tmp_path: Path, good_config: str) -> None:
    not_a_dir = tmp_path / "not-a-directory"
    not_a_dir.write_text("")
    text = good_config.replace("127.0.0.1", "192.0.2.1")  # TEST-NET-1: nothing answers
    text = re.sub(r"data_dir: .*", f"data_dir: {not_a_dir}", text)
    started = time.monotonic()
    result = doctor(tmp_path, text, "--json", "--timeout", "1")
    elapsed = time.monotonic() - started
    assert result.returncode == 1
    checks = checks_of(result)
    for name in ("plc line2-opcua tcp", "plc pack-modbus tcp", "broker tcp", "disk data_dir"):
        assert checks[name]["status"] == "fail", checks[name]
    assert "is not a directory" in checks["disk data_dir"]["detail"]
    assert elapsed < 15, f"doctor took {elapsed:.1f} s with everything down"
