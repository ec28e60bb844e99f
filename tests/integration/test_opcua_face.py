"""The OPC UA face against independent asyncua clients on loopback.

Time is a ManualClock: a test moves it, calls ``sim.step()`` and compares what a
client reads with the ground-truth log the simulation wrote.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from _opcua_helpers import (
    SimRig,
    StartFace,
    client_certificate,
    connected,
    disconnect_quietly,
    face_starter,
    make_client,
    make_rig,
    node,
    wait_until,
)
from asyncua import ua
from asyncua.crypto.security_policies import (
    SecurityPolicyAes256Sha256RsaPss,
    SecurityPolicyBasic256Sha256,
)
from asyncua.server.address_space import AddressSpace

from simulators.faces.opcua import OpcUaFace, OpcUaFaceError, OpcUaSecurity, SecurityPolicy
from simulators.faces.opcua.certificates import certificate_uris
from simulators.faces.opcua.fast_nodes import (
    VariableFactory,
    VariableSpec,
    add_checked,
    variable_item,
)
from simulators.faces.opcua.server import SHIFT_NAMESPACE_URI
from simulators.faces.opcua.transport import FaultGate, SimulatorServer
from simulators.faults.state import BadTag, FaultState
from simulators.scenario.loader import load_scenario, parse_scenario
from simulators.tags import DataType, value_of

pytestmark = pytest.mark.integration

ONE_MACHINE = load_scenario("one-machine-shift")
MACHINE = "press-1"
BASE = "plant1.stamping.line1.press-1"
TOTAL = f"{BASE}.TotalCount"
STATE = f"{BASE}.State"
EXPECTED_VARIANT = {
    DataType.BOOL: ua.VariantType.Boolean,
    DataType.UINT16: ua.VariantType.UInt16,
    DataType.UINT32: ua.VariantType.UInt32,
    DataType.FLOAT32: ua.VariantType.Float,
    DataType.FLOAT64: ua.VariantType.Double,
    DataType.STRING: ua.VariantType.String,
}
CONNECTION_LOST = (ConnectionError, TimeoutError, ua.UaError)


@pytest.fixture(scope="session")
def opcua_cert_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("opcua-pki")


@pytest.fixture
async def opcua_faces(opcua_cert_dir: Path) -> AsyncIterator[StartFace]:
    """Start faces on free ports (wired to their simulation); stop them afterwards."""
    async with face_starter(opcua_cert_dir) as start:
        yield start


@pytest.fixture
def opcua_rig(tmp_path: Path) -> SimRig:
    return make_rig(ONE_MACHINE, tmp_path)


@pytest.fixture
async def opcua_face(opcua_rig: SimRig, opcua_faces: StartFace) -> OpcUaFace:
    return await opcua_faces(opcua_rig)


# -- address space and values -----------------------------------------------------------


async def test_browse_isa95_tree_and_read_values_matching_ground_truth(
    opcua_rig: SimRig, opcua_face: OpcUaFace
) -> None:
    opcua_rig.advance(2 * 3600 + 15 * 60)  # 08:15, inside the 08:10 unplanned stop
    async with connected(opcua_face.url) as client:
        ns = await client.get_namespace_index(ONE_MACHINE.namespace_uri)
        assert ns == opcua_face.namespace_index == 2
        current = client.nodes.objects
        path = [("plant1", ua.ObjectIds.FolderType), ("stamping", ua.ObjectIds.FolderType)]
        path += [("line1", ua.ObjectIds.FolderType), (MACHINE, ua.ObjectIds.BaseObjectType)]
        for name, type_id in path:
            children = {(await c.read_browse_name()).Name: c for c in await current.get_children()}
            current = children[name]
            assert (await current.read_browse_name()).NamespaceIndex == ns
            assert await current.read_type_definition() == ua.NodeId(type_id)
        machine_children = {
            (await c.read_browse_name()).Name: c for c in await current.get_children()
        }
        assert await machine_children["ResetCounters"].read_node_class() == ua.NodeClass.Method
        process_values = machine_children.pop("ProcessValues")
        pv_names = {(await c.read_browse_name()).Name for c in await process_values.get_children()}
        assert pv_names == {"temperature", "speed", "pressure"}
        served = [t for t in opcua_rig.sim.tags[MACHINE] if t.opcua_id and not t.is_command]
        top_level = {t.name for t in served if "." not in t.name}
        assert set(machine_children) == top_level | {"ResetCounters"}

        signals = opcua_rig.sim.machines[MACHINE].signals(opcua_rig.clock.now())
        read: dict[str, ua.DataValue] = {}
        for tag in served:
            variable = node(client, ns, tag.opcua_id or "")
            data = await variable.read_data_value()
            read[tag.name] = data
            expected = value_of(tag, signals)
            assert data.StatusCode is not None
            assert data.StatusCode.is_good(), tag.name
            assert data.Value is not None
            assert data.Value.VariantType == EXPECTED_VARIANT[tag.data_type], tag.name
            if tag.data_type is DataType.FLOAT32:  # single precision on the wire
                assert data.Value.Value == pytest.approx(expected.value, rel=1e-6), tag.name
            else:
                assert data.Value.Value == expected.value, tag.name
            assert data.SourceTimestamp == expected.changed_at, tag.name
            assert data.ServerTimestamp is not None
            if tag.unit:
                description = await variable.read_description()
                assert f"[{tag.unit}]" in description.Text
        with pytest.raises(ua.UaStatusCodeError):  # read-only for clients
            await node(client, ns, TOTAL).write_value(ua.Variant(1, ua.VariantType.UInt16))

    last_part = opcua_rig.truth("part", MACHINE)[-1]
    last_state = opcua_rig.truth("state", MACHINE)[-1]
    last_order = opcua_rig.truth("order", MACHINE)[-1]
    assert last_state["to"] == "unplanned_stop"
    assert read["TotalCount"].Value.Value == last_part["total"] > 0
    assert read["GoodCount"].Value.Value == last_part["good_count"]
    assert read["ScrapCount"].Value.Value == last_part["scrap_count"]
    assert read["TotalCount"].SourceTimestamp == last_part["ts"]
    assert read["State"].Value.Value == last_state["code"]
    assert read["State"].SourceTimestamp == last_state["ts"]
    assert read["StateName"].Value.Value == "unplanned_stop"
    assert read["Reason"].Value.Value == last_state["reason"] == 17
    assert read["Order"].Value.Value == last_order["order"] == "4711"
    assert read["Product"].Value.Value == last_order["product"]


WRAP_SCENARIO = """
scenario: wrap-test
timezone: UTC
start: 2026-01-05T06:00:00+00:00
machines:
  - name: fast-1
    location: {site: s1, area: a1, line: l1}
    counter_width: uint16
    scrap_rate: 0.0
    products:
      - {id: p1, ideal_cycle_time_s: 0.01, jitter: 0.0}
    timeline:
      - "06:00 run p1 order o1"
"""


async def test_uint16_counter_wraps_from_65535_to_0(tmp_path: Path, opcua_faces: StartFace) -> None:
    rig = make_rig(parse_scenario(WRAP_SCENARIO), tmp_path)
    face = await opcua_faces(rig)
    async with connected(face.url) as client:
        ns = await client.get_namespace_index("urn:lineside:simulator")
        total = node(client, ns, "s1.a1.l1.fast-1.TotalCount")
        rig.advance(65535 * 0.01)  # one part every 10 ms
        data = await total.read_data_value()
        assert data.Value is not None
        assert data.Value.VariantType == ua.VariantType.UInt16
        assert data.Value.Value == 65535
        rig.advance(0.01)
        assert await total.read_value() == 0
        rig.advance(0.05)
        assert await total.read_value() == 5
    parts = rig.truth("part", "fast-1")
    assert [p["total"] for p in parts[65533:65538]] == [65534, 65535, 0, 1, 2]


# -- faults as a client sees them -------------------------------------------------------


async def test_drop_connections_closes_clients_and_reconnect_works(opcua_face: OpcUaFace) -> None:
    async with connected(opcua_face.url) as client:
        ns = opcua_face.namespace_index or 0
        await node(client, ns, TOTAL).read_value()
        assert await opcua_face.drop_connections() == 1
        with pytest.raises(CONNECTION_LOST):
            await node(client, ns, TOTAL).read_value()
    await wait_until(lambda: opcua_face.connection_count == 0, 5, message="connections closed")
    async with connected(opcua_face.url) as again:
        assert await node(again, ns, TOTAL).read_value() is not None


async def test_hang_times_out_requests_on_open_connections_then_recovers(
    opcua_face: OpcUaFace,
) -> None:
    async with connected(opcua_face.url, timeout_s=0.5) as client:
        total = node(client, opcua_face.namespace_index or 0, TOTAL)
        await total.read_value()
        hang_until = time.monotonic() + 1.5
        opcua_face.faults.hang_until_mono = hang_until
        with pytest.raises(TimeoutError):
            await total.read_value()
        assert opcua_face.connection_count == 1  # the connection stays open
        newcomer = make_client(opcua_face.url, timeout_s=0.5)
        with pytest.raises(TimeoutError):  # no Hello acknowledge either
            await newcomer.connect()
        newcomer.disconnect_socket()

        async def read_ok() -> bool:
            await total.read_value()
            return True

        await wait_until(read_ok, 5, message="reads work after the hang")
        assert time.monotonic() >= hang_until


async def test_slow_responses_are_delayed(opcua_face: OpcUaFace) -> None:
    async with connected(opcua_face.url) as client:
        total = node(client, opcua_face.namespace_index or 0, TOTAL)
        await total.read_value()
        opcua_face.faults.delay_s = 0.5
        started = time.perf_counter()
        await total.read_value()
        slow_s = time.perf_counter() - started
        opcua_face.faults.delay_s = 0.0
        started = time.perf_counter()
        await total.read_value()
        fast_s = time.perf_counter() - started
    assert 0.5 <= slow_s < 2.0
    assert fast_s < 0.4


async def test_bad_status_tag_reads_and_notifies_bad_until_cleared(
    opcua_rig: SimRig, opcua_face: OpcUaFace
) -> None:
    opcua_rig.advance(600)
    async with connected(opcua_face.url) as client:
        ns = opcua_face.namespace_index or 0
        total, state = node(client, ns, TOTAL), node(client, ns, STATE)
        good_total = await total.read_value()
        notifications: asyncio.Queue[ua.DataValue] = asyncio.Queue()

        class Handler:
            def datachange_notification(self, node: Any, val: Any, data: Any) -> None:
                notifications.put_nowait(data.monitored_item.Value)

        subscription = await client.create_subscription(50, Handler())
        await subscription.subscribe_data_change(total, queuesize=1)
        first = await asyncio.wait_for(notifications.get(), 5)
        assert first.StatusCode.is_good()

        opcua_face.faults.bad_tags[(MACHINE, "TotalCount")] = BadTag("BadSensorFailure")
        with pytest.raises(ua.uaerrors.BadSensorFailure):
            await total.read_value()
        data = await total.read_data_value(raise_on_bad_status=False)
        assert data.StatusCode == ua.StatusCode(ua.StatusCodes.BadSensorFailure)
        assert data.Value is None or data.Value.Value is None
        assert await state.read_value() is not None  # other tags unaffected
        bad = await asyncio.wait_for(notifications.get(), 5)
        assert bad.StatusCode == ua.StatusCode(ua.StatusCodes.BadSensorFailure)

        opcua_rig.advance(60)  # model keeps counting while the sensor is "broken"
        with pytest.raises(ua.uaerrors.BadSensorFailure):
            await total.read_value()
        opcua_face.faults.bad_tags.clear()
        restored = await asyncio.wait_for(notifications.get(), 5)
        assert restored.StatusCode.is_good()
        assert restored.Value.Value == await total.read_value() > good_total
        assert restored.Value.Value == opcua_rig.truth("part", MACHINE)[-1]["total"]


async def test_timed_bad_status_ends_by_itself(opcua_face: OpcUaFace) -> None:
    async with connected(opcua_face.url) as client:
        total = node(client, opcua_face.namespace_index or 0, TOTAL)
        opcua_face.faults.bad_tags[(MACHINE, "TotalCount")] = BadTag(
            "BadCommunicationError", until_mono=time.monotonic() + 0.5
        )
        with pytest.raises(ua.uaerrors.BadCommunicationError):
            await total.read_value()

        async def good_again() -> bool:
            return (await total.read_data_value()).StatusCode.is_good()

        await wait_until(good_again, 5, message="bad status expired")


async def test_restart_needs_a_new_session_and_shifts_the_namespace(
    opcua_rig: SimRig, opcua_face: OpcUaFace
) -> None:
    uri = ONE_MACHINE.namespace_uri
    opcua_rig.advance(900)
    async with connected(opcua_face.url) as old:
        assert await old.get_namespace_index(uri) == 2
        old_total = node(old, 2, TOTAL)
        await old_total.read_value()
        started = time.monotonic()
        restart = asyncio.create_task(opcua_face.restart(shift_namespace=True, downtime_s=0.5))
        await wait_until(lambda: not opcua_face.running, 5, message="server down")
        refused = make_client(opcua_face.url, timeout_s=1.0)
        with pytest.raises(ConnectionRefusedError):
            await refused.connect()
        await disconnect_quietly(refused)
        await restart
        assert time.monotonic() - started >= 0.5
        with pytest.raises(CONNECTION_LOST):
            await old_total.read_value()
    async with connected(opcua_face.url) as new:
        assert await new.get_namespace_index(uri) == 3 == opcua_face.namespace_index
        assert (await new.get_namespace_array())[2] == SHIFT_NAMESPACE_URI
        assert await node(new, 3, TOTAL).read_value() == opcua_rig.truth("part")[-1]["total"]
        with pytest.raises(ua.uaerrors.BadNodeIdUnknown):
            await node(new, 2, TOTAL).read_value()
    await opcua_face.restart()  # a plain restart un-shifts
    async with connected(opcua_face.url) as plain:
        assert await plain.get_namespace_index(uri) == 2


async def test_reset_counters_method_zeroes_counters_and_logs_command(
    opcua_rig: SimRig, opcua_face: OpcUaFace
) -> None:
    opcua_rig.advance(600)
    async with connected(opcua_face.url) as client:
        ns = opcua_face.namespace_index or 0
        assert await node(client, ns, TOTAL).read_value() > 0
        result = await node(client, ns, BASE).call_method(ua.NodeId(f"{BASE}.ResetCounters", ns))
        assert result is None  # no output arguments
        for name in ("TotalCount", "GoodCount", "ScrapCount"):
            assert await node(client, ns, f"{BASE}.{name}").read_value() == 0
    reset = opcua_rig.truth("counter_reset", MACHINE)[-1]
    assert reset["cause"] == "command"
    assert reset["ts"] == opcua_rig.clock.now()


async def test_busy_port_is_reported_with_a_fix(
    opcua_rig: SimRig, opcua_face: OpcUaFace, opcua_cert_dir: Path
) -> None:
    second = OpcUaFace(opcua_rig.sim, port=opcua_face.port, cert_dir=opcua_cert_dir)
    with pytest.raises(OpcUaFaceError, match="choose another OPC UA port"):
        await second.start()
    assert not second.running


# -- security ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "policy", [SecurityPolicyBasic256Sha256, SecurityPolicyAes256Sha256RsaPss], ids=lambda p: p.URI
)
async def test_encrypted_endpoint_with_user_login(
    policy: Any, opcua_rig: SimRig, opcua_faces: StartFace, tmp_path: Path
) -> None:
    cert_dir = tmp_path / "pki"
    face = await opcua_faces(
        opcua_rig, security=OpcUaSecurity(users={"operator": "s3cret"}), cert_dir=cert_dir
    )
    client_files = client_certificate(tmp_path)

    async def secure_client(user: str | None, password: str | None) -> Any:
        client = make_client(face.url)
        await client.set_security(
            policy,
            str(client_files.cert_path),
            str(client_files.key_path),
            server_certificate=str(cert_dir / "server_cert.der"),
            mode=ua.MessageSecurityMode.SignAndEncrypt,
        )
        if user is not None:
            client.set_user(user)
        if password is not None:
            client.set_password(password)
        return client

    client = await secure_client("operator", "s3cret")
    await client.connect()
    try:
        assert await node(client, face.namespace_index or 0, TOTAL).read_value() is not None
    finally:
        await disconnect_quietly(client)

    for user, password, error in [
        ("operator", "wrong", ua.uaerrors.BadUserAccessDenied),
        ("nobody", "s3cret", ua.uaerrors.BadUserAccessDenied),
        (None, None, ua.uaerrors.BadIdentityTokenRejected),  # anonymous
    ]:
        refused = await secure_client(user, password)
        with pytest.raises(error):
            await refused.connect()
        await disconnect_quietly(refused)


async def test_default_endpoints_and_persistent_certificate(
    opcua_rig: SimRig, opcua_faces: StartFace, tmp_path: Path
) -> None:
    cert_dir = tmp_path / "pki"
    face = await opcua_faces(opcua_rig, cert_dir=cert_dir)
    cert_file = cert_dir / "server_cert.der"
    first_cert = cert_file.read_bytes()
    assert certificate_uris(cert_file) == [face.application_uri]
    assert face.endpoints()[0].startswith(face.url)

    client = make_client(face.url)
    try:
        endpoints = await client.connect_and_get_server_endpoints()
    finally:
        await disconnect_quietly(client)
    offered = {(e.SecurityPolicyUri.rsplit("#", 1)[1], e.SecurityMode.name) for e in endpoints}
    assert offered == {
        ("None", "None_"),
        ("Basic256Sha256", "Sign"),
        ("Basic256Sha256", "SignAndEncrypt"),
        ("Aes256_Sha256_RsaPss", "Sign"),
        ("Aes256_Sha256_RsaPss", "SignAndEncrypt"),
    }
    assert all(e.ServerCertificate == first_cert for e in endpoints)
    tokens = {t.TokenType for e in endpoints for t in e.UserIdentityTokens}
    assert tokens == {ua.UserTokenType.Anonymous}

    await face.restart()
    assert cert_file.read_bytes() == first_cert  # reused, not regenerated


@pytest.mark.parametrize(
    ("names", "expected"),
    [
        (["none"], [SecurityPolicy.NONE]),
        (
            ["basic256sha256"],
            [SecurityPolicy.BASIC256SHA256_SIGN, SecurityPolicy.BASIC256SHA256_SIGN_AND_ENCRYPT],
        ),
        (["Aes256_Sha256_RsaPss_Sign"], [SecurityPolicy.AES256_SHA256_RSAPSS_SIGN]),
        (["None", "NONE"], [SecurityPolicy.NONE]),
    ],
)
def test_security_policy_names(names: list[str], expected: list[SecurityPolicy]) -> None:
    assert list(OpcUaSecurity(policies=names).endpoints) == expected


def test_unknown_security_policy_names_the_valid_ones() -> None:
    with pytest.raises(ValueError, match="use none, basic256sha256, aes256sha256rsapss"):
        OpcUaSecurity(policies=["basic128rsa15"])


# -- subscriptions ----------------------------------------------------------------------


async def test_subscription_gets_changes_with_source_timestamps(
    opcua_rig: SimRig, opcua_face: OpcUaFace
) -> None:
    async with connected(opcua_face.url) as client:
        ns = opcua_face.namespace_index or 0
        changes: asyncio.Queue[tuple[str, ua.DataValue]] = asyncio.Queue()

        class Handler:
            def datachange_notification(self, node: Any, val: Any, data: Any) -> None:
                changes.put_nowait((node.nodeid.Identifier, data.monitored_item.Value))

        subscription = await client.create_subscription(50, Handler())
        await subscription.subscribe_data_change(
            [node(client, ns, TOTAL), node(client, ns, STATE)], queuesize=1
        )
        seen: dict[str, ua.DataValue] = {}

        async def latest(node_id: str, predicate: Callable[[ua.DataValue], bool]) -> bool:
            while not changes.empty():
                key, value = changes.get_nowait()
                seen[key] = value
            return node_id in seen and predicate(seen[node_id])

        await wait_until(lambda: latest(STATE, lambda _: True), 5, message="initial values")
        opcua_rig.advance(2 * 3600 + 15 * 60)  # parts, then the 08:10 unplanned stop
        last_part = opcua_rig.truth("part", MACHINE)[-1]
        last_state = opcua_rig.truth("state", MACHINE)[-1]
        await wait_until(
            lambda: latest(TOTAL, lambda v: v.Value.Value == last_part["total"]),
            5,
            message="TotalCount notification",
        )
        await wait_until(
            lambda: latest(STATE, lambda v: v.Value.Value == last_state["code"]),
            5,
            message="State notification",
        )
        assert seen[TOTAL].SourceTimestamp == last_part["ts"]
        assert seen[STATE].SourceTimestamp == last_state["ts"]


# -- the fast node path -----------------------------------------------------------------


async def test_fast_variables_equal_asyncua_checked_variables() -> None:
    """VariableFactory must build what asyncua's AddNodes builds (guards upgrades)."""

    async def build(fast: bool) -> AddressSpace:
        server = SimulatorServer(FaultGate(FaultState, lambda: None))
        await server.init()
        ns = await server.register_namespace("urn:lineside:test")
        parent = await server.nodes.objects.add_folder(
            ua.NodeId("m", ns), ua.QualifiedName("m", ns)
        )

        def spec(name: str) -> VariableSpec:
            return VariableSpec(
                ua.NodeId(f"m.{name}", ns),
                ua.QualifiedName(name, ns),
                ua.LocalizedText(name),
                ua.LocalizedText(f"{name} [bar]"),
                ua.NodeId(ua.ObjectIds.Float),
                ua.Variant(1.5, ua.VariantType.Float),
                parent.nodeid,
            )

        add_checked(server.iserver.node_mgt_service, [variable_item(spec("prototype"))])
        if fast:
            VariableFactory(server.iserver.aspace, spec("prototype").node_id).add(spec("x"))
        else:
            add_checked(server.iserver.node_mgt_service, [variable_item(spec("x"))])
        return server.iserver.aspace

    checked, fast = await build(fast=False), await build(fast=True)
    node_id = ua.NodeId("m.x", 2)

    def attributes(aspace: AddressSpace) -> dict[Any, Any]:
        return {
            attr: (holder.value.Value, holder.value.StatusCode)
            for attr, holder in aspace[node_id].attributes.items()
            if holder.value is not None
        }

    assert attributes(fast) == attributes(checked)
    assert fast[node_id].references == checked[node_id].references
    parent = ua.NodeId("m", 2)
    assert fast[parent].references == checked[parent].references
