"""The agent's OPC UA sessions decode PublishResponses with the fast decoder.

A plain asyncua Server on a free loopback port (in this process, so it also shows the
server side is left alone) holds variables of several types; an OpcUaSource subscribes
to them, the test writes new values, and the samples must carry them, decoded by the
fast path (a spy on ``decode_fast`` sees every PublishResponse the agent received).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from _opcua_helpers import free_port, wait_until
from _opcua_source_helpers import connection, fast_subscribe, source_runner, tag
from asyncua import Server, ua
from asyncua.client.ua_session import UaSession
from asyncua.common.utils import Buffer

from edge_agent.samples import Quality
from edge_agent.sources.opcua import _publish_decode

pytestmark = pytest.mark.integration

URI = "urn:lineside:test:publish-decode"
ORIGINAL_PUBLISH = UaSession.publish
VARIABLES: dict[str, tuple[Any, ua.VariantType, Any]] = {
    # name: (initial value, type, value written by the test)
    "speed": (1.5, ua.VariantType.Double, 42.25),
    "count": (0, ua.VariantType.Int32, -7),
    "order": ("order-1", ua.VariantType.String, "order-2"),
    "running": (False, ua.VariantType.Boolean, True),
}


@pytest.fixture
async def server() -> AsyncIterator[tuple[str, dict[str, Any]]]:
    url = f"opc.tcp://127.0.0.1:{free_port()}/lineside/"
    server = Server()
    await server.init()
    server.set_endpoint(url)
    server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
    namespace = await server.register_namespace(URI)
    machine = await server.nodes.objects.add_object(ua.NodeId("press", namespace), "press")
    nodes = {
        name: await machine.add_variable(
            ua.NodeId(f"press.{name}", namespace), name, ua.Variant(value, vtype)
        )
        for name, (value, vtype, _written) in VARIABLES.items()
    }
    await server.start()
    try:
        yield url, nodes
    finally:
        await server.stop()


async def test_subscribed_values_arrive_through_the_fast_decoder(
    server: tuple[str, dict[str, Any]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, nodes = server
    decoded: list[ua.PublishResponse | None] = []
    fast = _publish_decode.decode_fast

    def spy(data: Buffer) -> ua.PublishResponse | None:
        response = fast(data)
        decoded.append(response)
        return response

    monkeypatch.setattr(_publish_decode, "decode_fast", spy)
    tags = [
        (f"press.{name}", tag(name, f"nsu={URI};s=press.{name}", fast_subscribe()))
        for name in VARIABLES
    ]
    async with source_runner(tmp_path / "agent") as start:
        out = await start(connection(url), tags)

        def latest_are(which: int) -> bool:
            for name, values in VARIABLES.items():
                sample = out.latest(f"press.{name}")
                if sample is None or sample.quality is not Quality.GOOD:
                    return False
                if sample.value != values[which] or type(sample.value) is not type(values[which]):
                    return False
            return True

        await wait_until(lambda: latest_are(0), 15, message="the initial values")
        before = datetime.now(UTC)
        for name, (_value, vtype, written) in VARIABLES.items():
            await nodes[name].write_value(ua.Variant(written, vtype))
        await wait_until(lambda: latest_are(2), 10, message="the written values")

    speed = out.latest("press.speed")
    assert speed is not None
    assert speed.source_ts is not None
    assert speed.source_ts >= before
    assert speed.server_ts is not None
    assert speed.server_ts.tzinfo is not None
    changes = [
        item
        for response in decoded
        if response is not None
        for data in response.Parameters.NotificationMessage.NotificationData
        if isinstance(data, ua.DataChangeNotification)
        for item in data.MonitoredItems
    ]
    assert None not in decoded, "a PublishResponse of the subscription fell back to asyncua"
    assert len(changes) >= 2 * len(VARIABLES)  # initial and written values, all fast
    assert UaSession.publish is ORIGINAL_PUBLISH  # asyncua's class (and servers) untouched
