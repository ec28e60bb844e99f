"""The doctor's pure parts: result aggregation, disk arithmetic, output parsers, texts."""

from __future__ import annotations

import asyncio
import calendar
from datetime import UTC, datetime
from pathlib import Path

import pytest

from edge_agent.doctor import EXIT_CONFIG, EXIT_FAIL, EXIT_OK, Check, Status, counts, exit_code
from edge_agent.doctor._plc_modbus import explain_status
from edge_agent.doctor.broker import days_left, explain_verify_error
from edge_agent.doctor.clock import (
    parse_chronyc_tracking,
    parse_ntpq_peers,
    parse_timedatectl,
    verdict,
)
from edge_agent.doctor.config import check_config
from edge_agent.doctor.disk import (
    FLOOR_BYTES,
    MIB,
    buffer_size,
    check_data_dir,
    human_bytes,
    nearest_existing,
    space_verdict,
)
from edge_agent.doctor.plc import opcua_host_port
from edge_agent.doctor.results import fail, first_few, ok, warn, worst
from edge_agent.doctor.runner import _bounded

GIB = 1024 * MIB
NOW = datetime(2026, 11, 30, 6, 0, tzinfo=UTC)


# -- results -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("statuses", "valid", "expected"),
    [
        ([], True, EXIT_OK),
        (["ok", "ok"], True, EXIT_OK),
        (["ok", "warn"], True, EXIT_OK),
        (["warn", "fail", "ok"], True, EXIT_FAIL),
        (["fail"], False, EXIT_CONFIG),
    ],
)
def test_exit_code_is_0_for_ok_and_warn_1_for_fail_2_for_invalid_config(
    statuses: list[str], valid: bool, expected: int
) -> None:
    checks = [Check(f"c{i}", Status(s), "") for i, s in enumerate(statuses)]
    assert exit_code(checks, valid) == expected


def test_worst_and_counts() -> None:
    checks = [ok("a", ""), warn("b", "", "x"), ok("c", ""), fail("d", "", "y")]
    assert worst(checks) is Status.FAIL
    assert worst(checks[:3]) is Status.WARN
    assert worst([]) is Status.OK
    assert counts(checks) == {"ok": 2, "warn": 1, "fail": 1}


def test_as_dict_is_plain_json() -> None:
    assert fail("broker mqtt", "refused", "fix it").as_dict() == {
        "name": "broker mqtt",
        "status": "fail",
        "detail": "refused",
        "fix": "fix it",
    }


def test_first_few_says_how_many_more() -> None:
    assert first_few(["a", "b"]) == "a, b"
    assert first_few([str(i) for i in range(8)], 3) == "0, 1, 2 and 5 more"


# -- disk ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("free", "max_bytes", "current", "status"),
    [
        (10 * GIB, GIB, 0, Status.OK),  # room for 1.25 GiB
        (GIB, GIB, 0, Status.WARN),  # the file grows to ~1.25 GiB
        (GIB, GIB, GIB, Status.OK),  # already 1 GiB big: grows by 0.25 GiB at most
        (FLOOR_BYTES - 1, 16 * MIB, 0, Status.FAIL),  # below the floor whatever the bound
        (FLOOR_BYTES, 16 * MIB, 0, Status.OK),
    ],
)
def test_space_verdict(free: int, max_bytes: int, current: int, status: Status) -> None:
    check = space_verdict(free, max_bytes, current)
    assert check.name == "disk space"
    assert check.status is status
    assert (check.fix == "") == (status is Status.OK)


def test_space_verdict_names_the_numbers() -> None:
    check = space_verdict(GIB, GIB, 0)
    assert check.detail.startswith("1.0 GiB free; the buffer may grow by 1.2 GiB")
    assert "buffer.max_bytes" in check.fix


def test_human_bytes() -> None:
    assert human_bytes(800) == "800 B"
    assert human_bytes(1536) == "1.5 KiB"
    assert human_bytes(64 * MIB) == "64.0 MiB"
    assert human_bytes(3 * GIB) == "3.0 GiB"


def test_buffer_size_counts_the_wal(tmp_path: Path) -> None:
    db = tmp_path / "buffer.db"
    assert buffer_size(db) == 0
    db.write_bytes(b"x" * 100)
    Path(f"{db}-wal").write_bytes(b"x" * 20)
    assert buffer_size(db) == 120


def test_data_dir_checks(tmp_path: Path) -> None:
    assert check_data_dir(tmp_path).status is Status.OK
    assert list(tmp_path.iterdir()) == []  # the probe file is gone
    missing = tmp_path / "a" / "b"
    check = check_data_dir(missing)
    assert check.status is Status.OK
    assert "does not exist yet" in check.detail
    assert nearest_existing(missing) == tmp_path
    a_file = tmp_path / "file"
    a_file.write_text("")
    assert check_data_dir(a_file).status is Status.FAIL


# -- clock ---------------------------------------------------------------------------


def test_clock_parsers() -> None:
    assert parse_timedatectl("yes\n") is True
    assert parse_timedatectl("no\n") is False
    assert parse_timedatectl("") is None
    tracking = "Reference ID    : C0A80001 (ntp.plant)\nLeap status     : Normal\n"
    assert parse_chronyc_tracking(tracking) is True
    assert parse_chronyc_tracking("Leap status     : Not synchronised\n") is False
    assert parse_chronyc_tracking("506 Cannot talk to daemon") is None
    header = "     remote           refid      st t when poll reach   delay   offset  jitter\n"
    header += "=" * 79 + "\n"
    assert parse_ntpq_peers(header + "*10.0.0.1   .GPS.   1 u   3   64  377  0.3  0.01  0.02\n")
    assert parse_ntpq_peers(
        header + " 10.0.0.1   .INIT.  16 u   -   64    0  0.0  0.00  0.00\n"
    ) is (False)
    assert parse_ntpq_peers("ntpq: read: Connection refused") is None


def test_clock_verdicts_say_why_it_matters() -> None:
    assert verdict("timedatectl", True, NOW).status is Status.OK
    unsynced = verdict("chrony", False, NOW)
    assert unsynced.status is Status.FAIL
    assert "10 min in the future" in unsynced.detail
    assert "timedatectl set-ntp true" in unsynced.fix
    assert verdict(None, None, NOW).status is Status.WARN
    never_set = verdict("timedatectl", True, datetime(1970, 1, 1, tzinfo=UTC))
    assert never_set.status is Status.FAIL
    assert "never set" in never_set.detail


# -- explanations --------------------------------------------------------------------


def test_modbus_statuses_are_explained() -> None:
    detail, fix = explain_status("ModbusException(2)", 3)
    assert detail == "exception 2 (illegal data address)"
    assert "register map" in fix
    assert "unit_id" in fix
    assert explain_status("ModbusException(11)", 3)[0].startswith("exception 11 (gateway target")
    assert explain_status("ModbusException(99)", 3)[0] == "exception 99 (unknown exception code)"
    detail, fix = explain_status("Timeout", 7)
    assert detail == "no answer from unit_id 7"
    assert "timeout_s" in fix


@pytest.mark.parametrize(
    ("code", "words"),
    [
        (10, "has expired"),
        (20, "unknown CA"),
        (19, "unknown CA"),
        (62, "does not name the configured host"),
        (12345, "certificate verification failed"),
    ],
)
def test_certificate_problems_are_explained(code: int, words: str) -> None:
    detail, fix = explain_verify_error(code, "openssl text")
    assert words in detail
    assert detail.endswith("(openssl text)")
    assert fix


def test_days_left() -> None:
    now = calendar.timegm((2026, 11, 30, 0, 0, 0, 0, 0, 0))
    assert round(days_left("Dec 10 00:00:00 2026 GMT", now)) == 10
    assert days_left("Nov 20 00:00:00 2026 GMT", now) < 0


def test_opcua_endpoint_host_and_port() -> None:
    assert opcua_host_port("opc.tcp://plc-1.local:4841/UA/Server") == ("plc-1.local", 4841)
    assert opcua_host_port("opc.tcp://10.0.0.5") == ("10.0.0.5", 4840)


# -- never crashes -------------------------------------------------------------------


def test_an_unparsable_or_missing_config_is_a_located_failure(tmp_path: Path) -> None:
    binary = tmp_path / "agent.yaml"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    outcome = check_config(binary)
    assert outcome.config is None
    assert outcome.check.status is Status.FAIL
    assert str(binary) in outcome.check.detail
    for name, text in (("control.yaml", "agent:\x01\x02\n"), ("alias.yaml", "agent: &a [*a]\n")):
        odd = tmp_path / name
        odd.write_text(text)
        outcome = check_config(odd)
        assert outcome.check.status is Status.FAIL
        assert f"{odd}: cannot parse: " in outcome.check.detail
    missing = check_config(tmp_path / "nope.yaml")
    assert missing.config is None
    assert "cannot read" in missing.check.detail


async def test_a_check_that_raises_or_hangs_becomes_a_failure() -> None:
    async def broken() -> list[Check]:
        raise RuntimeError("boom")

    async def hangs() -> list[Check]:
        await asyncio.Event().wait()
        return []

    (crashed,) = await _bounded("broker", broken(), 1)
    assert crashed.status is Status.FAIL
    assert "RuntimeError: boom" in crashed.detail
    (slow,) = await _bounded("clock", hangs(), 0.05)
    assert slow.status is Status.FAIL
    assert "did not finish within 0.05 s" in slow.detail
