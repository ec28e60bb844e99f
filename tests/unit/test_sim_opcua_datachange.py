"""The simulator's synchronous data-change path queues exactly what asyncua's would.

Each test builds two identical asyncua subscriptions (real ``InternalSubscription`` and
``MonitoredItemService`` over an address space holding one variable), feeds the same
DataValues to one through asyncua's awaited ``datachange_callback`` and to the other
through :func:`enqueue_datachange` (awaiting the callback where it declines), then
compares the queued notifications and the encoded PublishResults.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from asyncua import ua
from asyncua.common.utils import Buffer
from asyncua.server.address_space import AddressSpace, AttributeValue, NodeData
from asyncua.server.internal_subscription import InternalSubscription
from asyncua.server.monitored_item_service import MonitoredItemValues
from asyncua.ua.ua_binary import struct_from_binary, struct_to_binary
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simulators.faces.opcua import monitoring, values
from simulators.faces.opcua.data_change_filter import reports_change
from simulators.faces.opcua.datachange import enqueue_datachange

T0 = datetime(2026, 11, 29, 6, 0, tzinfo=UTC)
NODE = ua.NodeId("plant1.press-1.ProcessValues.temperature", 2)
GOOD = ua.StatusCode()
BAD = ua.StatusCode(ua.StatusCodes.BadSensorFailure)
UNCERTAIN = ua.StatusCode(ua.StatusCodes.UncertainLastUsableValue)
ASYNCUA_COPYING_SET = MonitoredItemValues.set_current_datavalue


@pytest.fixture(autouse=True, params=["uncopied", "asyncua-copying"])
def value_keeping(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run every test with the face's copy-avoiding patch and with asyncua's deepcopy."""
    monitoring.keep_scalar_values_uncopied()
    if request.param == "asyncua-copying":
        monkeypatch.setattr(MonitoredItemValues, "set_current_datavalue", ASYNCUA_COPYING_SET)


def dv(value: float | None, status: ua.StatusCode = GOOD, second: int = 0) -> ua.DataValue:
    variant = None if value is None else ua.Variant(value, ua.VariantType.Double)
    ts = T0 + timedelta(seconds=second)
    return ua.DataValue(variant, status, ts, ts)


@dataclass
class Item:
    mode: ua.MonitoringMode = ua.MonitoringMode.Reporting
    queue_size: int = 1
    discard_oldest: bool = True
    item_filter: Any = None
    client_handle: int = 7


@dataclass
class World:
    """One subscription monitoring NODE, as asyncua's server builds it."""

    attribute: AttributeValue
    isub: InternalSubscription
    published: list[ua.PublishResult] = field(default_factory=list)
    fast: int = 0
    fallback: int = 0
    errors: list[str] = field(default_factory=list)

    async def deliver(self, value: ua.DataValue, *, fast_path: bool) -> None:
        """What ValueWriter._drain does for one change (errors are logged there)."""
        self.attribute.value = value
        for handle, callback in list(self.attribute.datachange_callbacks.items()):
            try:
                if fast_path and enqueue_datachange(callback, handle, value):
                    self.fast += 1
                else:
                    self.fallback += 1
                    await callback(handle, value)
            except Exception as exc:
                # asyncua's absolute deadband fails on a Bad value without a Variant.
                self.errors.append(repr(exc))

    def queued(self) -> dict[int, list[tuple[int, ua.DataValue]]]:
        return {
            mid: [(n.ClientHandle, n.Value) for n in notifications]
            for mid, notifications in self.isub._triggered_datachanges.items()
        }

    async def publish(self) -> None:
        await self.isub.publish_results()

    def encoded(self) -> list[bytes]:
        """The PublishResults as sent, with the wall-clock PublishTime pinned."""
        for result in self.published:
            result.NotificationMessage.PublishTime = T0
        return [struct_to_binary(result) for result in self.published]


async def make_world(items: Iterable[Item], interval_ms: float = 100.0) -> World:
    aspace = AddressSpace()
    node = NodeData(NODE)
    attribute = AttributeValue(dv(20.0))
    node.attributes[ua.AttributeIds.Value] = attribute
    aspace[NODE] = node
    published: list[ua.PublishResult] = []

    async def collect(result: ua.PublishResult) -> None:
        published.append(result)

    data = ua.CreateSubscriptionResult(
        SubscriptionId=1,
        RevisedPublishingInterval=interval_ms,
        RevisedLifetimeCount=10_000,
        RevisedMaxKeepAliveCount=10,
    )
    isub = InternalSubscription(data, aspace, collect, ua.NodeId(1, 0))
    requests = [
        ua.MonitoredItemCreateRequest(
            ItemToMonitor=ua.ReadValueId(NodeId=NODE, AttributeId=ua.AttributeIds.Value),
            MonitoringMode=item.mode,
            RequestedParameters=ua.MonitoringParameters(
                ClientHandle=item.client_handle,
                SamplingInterval=interval_ms,
                QueueSize=item.queue_size,
                DiscardOldest=item.discard_oldest,
                Filter=item.item_filter,
            ),
        )
        for item in items
    ]
    params = ua.CreateMonitoredItemsParameters(SubscriptionId=1, ItemsToCreate=requests)
    # As the server gets them: decoded from the wire (filters come out as
    # uaprotocol_auto classes, no filter as a null ExtensionObject).
    decoded = struct_from_binary(
        ua.CreateMonitoredItemsParameters, Buffer(struct_to_binary(params))
    )
    results = await isub.monitored_item_srv.create_monitored_items(decoded)
    assert all(r.StatusCode.is_good() for r in results)
    return World(attribute, isub, published)


async def both_ways(
    items: list[Item], steps: list[ua.DataValue | str], interval_ms: float = 100.0
) -> tuple[World, World]:
    """Run ``steps`` (DataValues, or "publish") through asyncua's path and the fast one."""
    reference = await make_world(items, interval_ms)
    candidate = await make_world(items, interval_ms)
    for step in steps:
        for world, fast_path in ((reference, False), (candidate, True)):
            if step == "publish":
                await world.publish()
            else:
                assert isinstance(step, ua.DataValue)
                await world.deliver(step, fast_path=fast_path)
        assert candidate.queued() == reference.queued()
    assert candidate.errors == reference.errors
    await reference.publish()
    await candidate.publish()
    assert candidate.encoded() == reference.encoded()
    assert len(candidate.published) == len(reference.published)
    return reference, candidate


def values_queued(world: World) -> list[float | None]:
    return [
        None if n.Value.Value is None else n.Value.Value.Value
        for result in world.published
        for data in result.NotificationMessage.NotificationData
        for n in data.MonitoredItems
    ]


CHANGES: list[ua.DataValue | str] = [
    dv(21.0, second=1),
    dv(21.0, second=2),  # same value and status: not reported
    dv(22.5, second=3),
    "publish",
    dv(None, BAD, second=4),
    dv(None, BAD, second=5),
    dv(22.5, UNCERTAIN, second=6),
    dv(22.5, GOOD, second=7),
    "publish",
    dv(23.0, second=8),
]


async def test_plain_items_take_the_fast_path_and_publish_the_same() -> None:
    reference, candidate = await both_ways([Item(), Item(client_handle=8, queue_size=9)], CHANGES)
    assert candidate.fallback == 0
    assert candidate.fast == 2 * 8
    # 20.0 is the initial value asyncua queues when an item is created.
    assert values_queued(reference) == [
        *(22.5, 20.0, 21.0, 22.5),
        *(22.5, None, 22.5, 22.5),
        *(23.0, 23.0),
    ]


@pytest.mark.parametrize("discard_oldest", [True, False])
@pytest.mark.parametrize("queue_size", [1, 2, 3, 0])
async def test_queue_overflow_drops_like_asyncua(queue_size: int, discard_oldest: bool) -> None:
    steps: list[ua.DataValue | str] = [dv(30.0 + i, second=i) for i in range(6)]
    reference, candidate = await both_ways(
        [Item(queue_size=queue_size, discard_oldest=discard_oldest)], steps
    )
    assert candidate.fallback == 0
    kept = {1: [35.0], 2: [34.0, 35.0], 3: [33.0, 34.0, 35.0]}
    assert values_queued(reference) == kept.get(
        queue_size, [20.0, 30.0, 31.0, 32.0, 33.0, 34.0, 35.0]
    )


@pytest.mark.parametrize("mode", [ua.MonitoringMode.Disabled, ua.MonitoringMode.Sampling])
async def test_other_monitoring_modes_fall_back(mode: ua.MonitoringMode) -> None:
    _, candidate = await both_ways([Item(mode=mode), Item()], CHANGES)
    assert candidate.fallback == 8
    assert candidate.fast == 8


@pytest.mark.parametrize(
    ("item_filter", "fast"),
    [
        (ua.DataChangeFilter(Trigger=ua.DataChangeTrigger.StatusValue), True),
        (ua.DataChangeFilter(Trigger=ua.DataChangeTrigger.Status), False),
        (ua.DataChangeFilter(Trigger=ua.DataChangeTrigger.StatusValueTimestamp), False),
    ],
)
async def test_filters_other_than_status_value_fall_back(item_filter: Any, fast: bool) -> None:
    _, candidate = await both_ways([Item(item_filter=item_filter, queue_size=5)], CHANGES)
    assert (candidate.fast, candidate.fallback) == ((8, 0) if fast else (0, 8))


def absolute_deadband(
    limit: float, trigger: ua.DataChangeTrigger = ua.DataChangeTrigger.StatusValue
) -> ua.DataChangeFilter:
    return ua.DataChangeFilter(
        Trigger=trigger, DeadbandType=ua.DeadbandType.Absolute, DeadbandValue=limit
    )


async def delivered(
    items: list[Item], steps: list[ua.DataValue | str], *, fast_path: bool = True
) -> World:
    """One world fed ``steps`` one way (the face's path, or asyncua's), published at the end."""
    world = await make_world(items)
    for step in steps:
        if step == "publish":
            await world.publish()
        else:
            assert isinstance(step, ua.DataValue)
            await world.deliver(step, fast_path=fast_path)
    await world.publish()
    return world


async def test_absolute_deadband_items_report_as_opc_ua_specifies() -> None:
    """Status changes always; values beyond 0.7 from the last *reported* one; no errors."""
    world = await delivered([Item(item_filter=absolute_deadband(0.7), queue_size=5)], CHANGES)
    assert (world.fast, world.fallback, world.errors) == (8, 0, [])
    # 20.0 queued at creation; 21.0 (+1.0); 22.5 (+1.5); Bad (status); Uncertain and
    # Good again (status); 23.0 is 0.5 from the last reported 22.5: held back.
    assert values_queued(world) == [20.0, 21.0, 22.5, None, 22.5, 22.5]

    # asyncua's own path raises on the Bad value without a value and loses it
    asyncua = await delivered(
        [Item(item_filter=absolute_deadband(0.7), queue_size=5)], CHANGES, fast_path=False
    )
    assert any("TypeError" in error for error in asyncua.errors)
    assert None not in values_queued(asyncua)


async def test_a_slow_drift_beyond_the_deadband_is_reported() -> None:
    """asyncua compares with the previous served value, so 0.5 steps never pass 0.7."""
    steps: list[ua.DataValue | str] = [dv(20.0 + 0.5 * i, second=i) for i in range(1, 7)]
    world = await delivered([Item(item_filter=absolute_deadband(0.7), queue_size=0)], steps)
    assert values_queued(world) == [20.0, 21.0, 22.0, 23.0]
    asyncua = await delivered(
        [Item(item_filter=absolute_deadband(0.7), queue_size=0)], steps, fast_path=False
    )
    assert values_queued(asyncua) == [20.0]


async def test_no_filter_as_decoded_from_a_request_is_fast() -> None:
    """A request without a filter decodes to a null ExtensionObject (falsy, like None)."""
    world = await make_world([Item()])
    (mdata,) = world.isub.monitored_item_srv._monitored_items.values()
    assert mdata.filter == ua.ExtensionObject()
    _, candidate = await both_ways([Item()], CHANGES)
    assert (candidate.fast, candidate.fallback) == (8, 0)


async def test_a_decoded_filter_is_recognised() -> None:
    """Requests decode to ua.uaprotocol_auto.DataChangeFilter, not ua.DataChangeFilter."""
    decoded = ua.uaprotocol_auto.DataChangeFilter(Trigger=ua.DataChangeTrigger.StatusValue)
    _, candidate = await both_ways([Item(item_filter=decoded)], CHANGES)
    assert candidate.fallback == 0


async def test_an_immediately_publishing_subscription_falls_back() -> None:
    """Publishing interval 0: asyncua publishes on the first queued change itself."""
    reference, candidate = await both_ways([Item()], CHANGES, interval_ms=0.0)
    assert candidate.fast == 0
    assert len(reference.published) > 3


async def test_a_callback_that_is_not_asyncuas_is_declined() -> None:
    calls: list[tuple[int, ua.DataValue]] = []

    async def callback(handle: int, value: ua.DataValue) -> None:
        calls.append((handle, value))

    assert enqueue_datachange(callback, 1, dv(1.0)) is False
    assert calls == []


async def test_an_unknown_handle_is_left_to_asyncua() -> None:
    world = await make_world([Item()])
    (callback,) = world.attribute.datachange_callbacks.values()
    assert enqueue_datachange(callback, 999, dv(1.0)) is False


async def test_the_writer_delivers_in_order_mixing_fast_and_fallback_items(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    items = [
        Item(),
        Item(queue_size=3, client_handle=8),
        Item(client_handle=9, item_filter=ua.DataChangeFilter(Trigger=ua.DataChangeTrigger.Status)),
    ]
    batches = [[dv(20.0 + i * 0.75, second=i)] for i in range(1, 5)] + [[dv(None, BAD, second=9)]]

    async def run(world: World) -> list[bytes]:
        loop = asyncio.get_running_loop()
        writer = values.ValueWriter({}, lambda: None, lambda: T0, loop)  # type: ignore[arg-type]
        for batch in batches:
            writer._notify([(world.attribute, data) for data in batch])
        drain = writer._drain_task
        assert drain is not None
        await drain  # one task drains every batch queued before it ran
        await world.publish()
        return world.encoded()

    expected = await run(await make_world(items))
    monkeypatch.setattr(values, "enqueue_datachange", lambda *_: False)
    asyncua_only = await run(await make_world(items))
    assert expected == asyncua_only


finite = st.floats(allow_nan=False, allow_infinity=False, width=32)
step_strategy = st.one_of(
    st.just("publish"),
    st.tuples(
        st.one_of(st.none(), finite, st.just(math.nan)),
        st.sampled_from([GOOD, BAD, UNCERTAIN]),
        st.integers(0, 3),
    ),
)
item_strategy = st.builds(
    Item,
    mode=st.sampled_from(list(ua.MonitoringMode)),
    queue_size=st.integers(0, 4),
    discard_oldest=st.booleans(),
    item_filter=st.one_of(
        st.none(),
        st.builds(
            ua.DataChangeFilter,
            Trigger=st.sampled_from(list(ua.DataChangeTrigger)),
            DeadbandType=st.just(ua.DeadbandType.None_),  # deadbands: the test below
        ),
    ),
    client_handle=st.integers(0, 2**32 - 1),
)


# The autouse fixture only picks how values are kept; it holds for every example.
@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(items=st.lists(item_strategy, min_size=1, max_size=3), raw=st.lists(step_strategy))
def test_any_items_and_changes_give_what_asyncua_gives(items: list[Item], raw: list[Any]) -> None:
    steps: list[ua.DataValue | str] = [
        s if s == "publish" else dv(s[0], s[1], second=s[2]) for s in raw
    ]
    asyncio.run(both_ways(items, steps))


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    trigger=st.sampled_from(list(ua.DataChangeTrigger)),
    limit=st.sampled_from([0.0, 0.5, 2.0]),
    raw=st.lists(step_strategy),
)
def test_deadband_items_queue_what_the_filter_reports(
    trigger: ua.DataChangeTrigger, limit: float, raw: list[Any]
) -> None:
    """Every served value, in order, that ``reports_change`` accepts against the last one."""
    steps: list[ua.DataValue | str] = [
        s if s == "publish" else dv(s[0], s[1], second=s[2]) for s in raw
    ]
    item = Item(item_filter=absolute_deadband(limit, trigger), queue_size=0)
    world = asyncio.run(delivered([item], steps))
    assert world.errors == []
    last = dv(20.0)  # queued when the item was created
    expected: list[float | None] = [20.0]
    for step in steps:
        if isinstance(step, ua.DataValue) and reports_change(
            last, step, trigger, ua.DeadbandType.Absolute, limit
        ):
            expected.append(None if step.Value is None else step.Value.Value)
            last = step
    assert values_queued(world) == pytest.approx(expected, nan_ok=True)
