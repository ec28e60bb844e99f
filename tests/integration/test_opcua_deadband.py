"""Server-side deadbands: what the simulator's face does, and the agent's fallback.

asyncua 2.1's server accepts a percent deadband and ignores it; the face refuses it
with BadDeadbandFilterInvalid, as OPC 10000-8 6.2 requires for variables without an
EURange (see simulators/faces/opcua/monitoring.py). The agent must then monitor the
item without a server-side filter, log that once per tag, and keep reporting.
Absolute deadbands are accepted and decided by the face as OPC UA specifies: a status
change is always reported (asyncua 2.1 raised TypeError on a Bad value without a value
and the Bad notification was lost).
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from _opcua_helpers import (
    SimRig,
    StartFace,
    connected,
    face_starter,
    make_rig,
    wait_until,
)
from _opcua_source_helpers import (
    RunSource,
    connection,
    fast_subscribe,
    matches,
    signal,
    source_runner,
    tag,
)
from asyncua import ua

from edge_agent.samples import Quality
from simulators.faces.opcua import OpcUaFace
from simulators.faults.state import BadTag
from simulators.scenario.loader import load_scenario

pytestmark = pytest.mark.integration

SCENARIO = load_scenario("one-machine-shift")
URI = SCENARIO.namespace_uri
MACHINE = "press-1"
BASE = "plant1.stamping.line1.press-1"
TOTAL = f"nsu={URI};s={BASE}.TotalCount"
TEMPERATURE = f"nsu={URI};s={BASE}.ProcessValues.temperature"


@pytest.fixture
def rig(tmp_path: Path) -> SimRig:
    return make_rig(SCENARIO, tmp_path)


@pytest.fixture
async def face(rig: SimRig, tmp_path: Path) -> AsyncIterator[OpcUaFace]:
    start: StartFace
    async with face_starter(tmp_path / "server-pki") as start:
        yield await start(rig)


@pytest.fixture
async def run_source(tmp_path: Path) -> AsyncIterator[RunSource]:
    async with source_runner(tmp_path / "agent") as start:
        yield start


def item_request(node_id: ua.NodeId, handle: int, deadband: ua.DeadbandType | None) -> object:
    params = ua.MonitoringParameters(
        ClientHandle=handle, SamplingInterval=0, QueueSize=1, DiscardOldest=True
    )
    if deadband is not None:
        params.Filter = ua.DataChangeFilter(
            Trigger=ua.DataChangeTrigger.StatusValue, DeadbandType=deadband, DeadbandValue=5.0
        )
    return ua.MonitoredItemCreateRequest(
        ItemToMonitor=ua.ReadValueId(NodeId=node_id, AttributeId=ua.AttributeIds.Value),
        MonitoringMode=ua.MonitoringMode.Reporting,
        RequestedParameters=params,
    )


class _Ignore:
    def datachange_notification(self, *args: object) -> None:
        pass


async def test_face_refuses_percent_deadbands_and_answers_in_request_order(
    face: OpcUaFace,
) -> None:
    async with connected(face.url) as client:
        ns = face.namespace_index or 0
        total = ua.NodeId(f"{BASE}.TotalCount", ns)
        temperature = ua.NodeId(f"{BASE}.ProcessValues.temperature", ns)
        subscription = await client.create_subscription(100, _Ignore())
        results = await subscription.create_monitored_items(
            [
                item_request(total, 1, ua.DeadbandType.Percent),
                item_request(temperature, 2, ua.DeadbandType.Absolute),
                item_request(temperature, 3, ua.DeadbandType.Percent),
                item_request(total, 4, None),
            ]
        )
        await subscription.delete()
    refused = ua.StatusCode(ua.StatusCodes.BadDeadbandFilterInvalid)
    assert results[0] == refused
    assert isinstance(results[1], int)  # the MonitoredItemId of an accepted item
    assert results[2] == refused
    assert isinstance(results[3], int)
    assert results[1] != results[3]


async def test_refused_percent_deadband_falls_back_to_no_filter_logged_once_per_tag(
    rig: SimRig, face: OpcUaFace, run_source: RunSource, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="lineside.agent.opcua")
    rig.advance(600)  # running: a part every ~2.2 s
    percent = fast_subscribe(deadband={"type": "percent", "value": 10})
    tags = [
        ("total", tag("total", TOTAL, percent)),
        ("temperature", tag("temperature", TEMPERATURE, percent)),
    ]
    out = await run_source(connection(face.url), tags)
    await wait_until(lambda: matches(out.latest("total"), rig, MACHINE, "TotalCount"), 10)

    # Without a server-side filter every part is reported, though +1 is far below 10%.
    for _ in range(3):
        before = signal(rig, MACHINE, "TotalCount")[0].value
        while signal(rig, MACHINE, "TotalCount")[0].value == before:
            rig.advance(1.0)
        await wait_until(
            lambda: matches(out.latest("total"), rig, MACHINE, "TotalCount"), 10, message="+1"
        )
    await wait_until(
        lambda: matches(out.latest("temperature"), rig, MACHINE, "ProcessValues.temperature"), 10
    )

    # A new session subscribes again, is refused again, and does not log it again.
    dropped = time.monotonic()
    assert await face.drop_connections() >= 1
    await wait_until(lambda: out.first_change(True, dropped), 15, message="reconnected")
    rig.advance(30)
    await wait_until(
        lambda: matches(out.latest("total"), rig, MACHINE, "TotalCount"), 10, message="again"
    )
    assert [c.connected for c in out.changes()] == [True, False, True]
    messages = [r.getMessage() for r in caplog.records]
    refusals = [m for m in messages if "event=opcua_deadband_refused" in m]
    assert len(refusals) == 2, refusals
    for key in ("total", "temperature"):
        (line,) = [m for m in refusals if f" tag={key} " in m]
        assert "status=BadDeadbandFilterInvalid" in line
        assert "action=subscribed_without_server_deadband" in line
    assert not [m for m in messages if "opcua_monitored_item_refused" in m]


async def test_absolute_deadband_holds_back_changes_up_to_the_deadband(
    rig: SimRig, face: OpcUaFace, run_source: RunSource, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="lineside.agent.opcua")
    rig.advance(600)
    tags = [
        ("total", tag("total", TOTAL, fast_subscribe(deadband={"type": "absolute", "value": 5}))),
        # Changes every simulated second; same subscription, so it marks "published".
        ("marker", tag("marker", TEMPERATURE, fast_subscribe())),
    ]
    out = await run_source(connection(face.url), tags)
    await wait_until(lambda: matches(out.latest("total"), rig, MACHINE, "TotalCount"), 10)
    first = signal(rig, MACHINE, "TotalCount")[0].value

    def marker_current() -> bool:
        return matches(out.latest("marker"), rig, MACHINE, "ProcessValues.temperature")

    # Two parts, one at a time: +1 and +2 are within the deadband of 5.
    while signal(rig, MACHINE, "TotalCount")[0].value < first + 2:
        rig.advance(1.0)
    await wait_until(marker_current, 10, message="the marker published after the small change")
    assert [s.value for s in out.samples("total")] == [first]

    # Many parts at once: beyond the deadband, reported.
    rig.advance(40)
    big = signal(rig, MACHINE, "TotalCount")[0].value
    assert big - first > 5
    await wait_until(
        lambda: matches(out.latest("total"), rig, MACHINE, "TotalCount"), 10, message="big change"
    )
    assert [s.value for s in out.samples("total")] == [first, big]
    assert not [r for r in caplog.records if "opcua_deadband_refused" in r.getMessage()]


async def test_absolute_deadband_reports_a_bad_status_and_its_end(
    rig: SimRig, face: OpcUaFace, run_source: RunSource
) -> None:
    rig.advance(600)
    deadband = fast_subscribe(deadband={"type": "absolute", "value": 5})
    out = await run_source(connection(face.url), [("total", tag("total", TOTAL, deadband))])
    await wait_until(lambda: matches(out.latest("total"), rig, MACHINE, "TotalCount"), 10)
    good = out.latest("total")
    assert good is not None

    face.faults.bad_tags[(MACHINE, "TotalCount")] = BadTag("BadSensorFailure")

    def bad_reported() -> bool:
        latest = out.latest("total")
        return latest is not None and latest.quality is Quality.BAD

    await wait_until(bad_reported, 10, message="the Bad status through the deadband")
    bad = out.latest("total")
    assert bad is not None
    assert (bad.status, bad.value) == ("BadSensorFailure", None)

    # Good again with the same count: a status change, reported though the value moved
    # less than the deadband.
    face.faults.bad_tags.clear()
    await wait_until(
        lambda: matches(out.latest("total"), rig, MACHINE, "TotalCount"), 10, message="good again"
    )
    assert [s.quality for s in out.samples("total")] == [Quality.GOOD, Quality.BAD, Quality.GOOD]
    assert [s.value for s in out.samples("total")] == [good.value, None, good.value]
