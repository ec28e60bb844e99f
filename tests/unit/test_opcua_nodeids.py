"""Pure parts of the OPC UA source: node ids, statuses, quarantine, trust, discovery YAML."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from asyncua import ua
from hypothesis import given
from hypothesis import strategies as st

from edge_agent.config import parse_config
from edge_agent.config.models import Role
from edge_agent.samples import Quality
from edge_agent.sources.opcua import (
    DiscoveredVariable,
    NamespaceUnknownError,
    NodeIdError,
    ServerTrustError,
    render_equipment_yaml,
)
from edge_agent.sources.opcua.nodeids import format_node_id, parse_node_id
from edge_agent.sources.opcua.pki import check_server_trust, ensure_client_certificate, fingerprint
from edge_agent.sources.opcua.quarantine import Quarantine
from edge_agent.sources.opcua.values import (
    is_quarantine_status,
    quality_of,
    sample_of,
    status_name,
)

NAMESPACES = ["http://opcfoundation.org/UA/", "urn:server", "urn:lineside:simulator"]
SHIFTED = [*NAMESPACES[:2], "urn:lineside:simulator:shift", "urn:lineside:simulator"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("i=85", ua.NodeId(85, 0)),
        ("ns=2;i=1001", ua.NodeId(1001, 2)),
        ("ns=2;s=Line1.Press;State", ua.NodeId("Line1.Press;State", 2)),
        ("nsu=urn:lineside:simulator;s=a.b", ua.NodeId("a.b", 2)),
        (
            "nsu=urn:lineside:simulator;g=72962b91-fa75-4ae6-8d28-b404dc7daf63",
            ua.NodeId(uuid.UUID("72962b91-fa75-4ae6-8d28-b404dc7daf63"), 2, ua.NodeIdType.Guid),
        ),
        ("ns=1;b=AQID", ua.NodeId(b"\x01\x02\x03", 1, ua.NodeIdType.ByteString)),
    ],
)
def test_node_ids_parse_and_resolve(text: str, expected: ua.NodeId) -> None:
    assert parse_node_id(text).resolve(NAMESPACES) == expected


def test_nsu_follows_the_namespace_to_its_new_index() -> None:
    ref = parse_node_id("nsu=urn:lineside:simulator;s=x")
    assert ref.resolve(NAMESPACES).NamespaceIndex == 2
    assert ref.resolve(SHIFTED).NamespaceIndex == 3
    assert parse_node_id("ns=2;s=x").resolve(SHIFTED).NamespaceIndex == 2  # fixed index


def test_unknown_namespace_uri_names_the_server_namespaces() -> None:
    with pytest.raises(NamespaceUnknownError, match=r"no namespace 'urn:nowhere'.*urn:server"):
        parse_node_id("nsu=urn:nowhere;s=x").resolve(NAMESPACES)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("nsu=;s=x", "nsu="),
        ("ns=x;s=y", "ns=<index>"),
        ("ns=2", "ns=<index>"),
        ("q=1", "i=<number>"),
        ("s=", "i=<number>"),
        ("i=abc", "malformed"),
        ("g=not-a-guid", "malformed"),
    ],
)
def test_bad_node_ids_explain_themselves(text: str, message: str) -> None:
    with pytest.raises(NodeIdError, match=message):
        parse_node_id(text)


@given(
    identifier=st.one_of(
        st.integers(min_value=0, max_value=2**32 - 1),
        st.text(min_size=1).filter(lambda s: "\x00" not in s),
        st.uuids(),
        st.binary(min_size=1, max_size=16),
    ),
    index=st.integers(min_value=0, max_value=3),
)
def test_formatted_node_ids_parse_back(identifier: object, index: int) -> None:
    node_id = ua.NodeId(identifier, index)
    text = format_node_id(node_id, SHIFTED)
    resolved = parse_node_id(text).resolve(SHIFTED)
    assert (resolved.Identifier, resolved.NamespaceIndex) == (identifier, index)


@pytest.mark.parametrize(
    ("code", "quality", "name"),
    [
        (ua.StatusCodes.Good, Quality.GOOD, "Good"),
        (ua.StatusCodes.UncertainLastUsableValue, Quality.UNCERTAIN, "UncertainLastUsableValue"),
        (ua.StatusCodes.BadSensorFailure, Quality.BAD, "BadSensorFailure"),
        (ua.StatusCodes.BadNodeIdUnknown, Quality.BAD, "BadNodeIdUnknown"),
    ],
)
def test_status_quality_and_name(code: int, quality: Quality, name: str) -> None:
    assert quality_of(code) is quality
    assert status_name(code) == name


def test_only_node_problems_quarantine() -> None:
    assert is_quarantine_status(ua.StatusCodes.BadNodeIdUnknown)
    assert is_quarantine_status(ua.StatusCodes.BadAttributeIdInvalid)
    assert not is_quarantine_status(ua.StatusCodes.BadSensorFailure)
    assert not is_quarantine_status(ua.StatusCodes.Good)


def test_samples_carry_timestamps_and_drop_values_when_bad() -> None:
    source = datetime(2026, 1, 5, 6, 0, tzinfo=UTC)
    received = datetime(2026, 1, 5, 6, 0, 1, tzinfo=UTC)
    good = ua.DataValue(ua.Variant(42, ua.VariantType.UInt32), SourceTimestamp=source)
    sample = sample_of("press-1.total", good, received)
    assert (sample.value, sample.quality, sample.status) == (42, Quality.GOOD, "Good")
    assert sample.event_time == source
    bad = ua.DataValue(ua.Variant(7), StatusCode=ua.StatusCode(ua.StatusCodes.BadSensorFailure))
    sample = sample_of("press-1.total", bad, received)
    assert (sample.value, sample.quality, sample.status) == (None, Quality.BAD, "BadSensorFailure")
    assert sample.event_time == received


def test_quarantine_reports_once_and_retries_on_schedule() -> None:
    now = [100.0]
    quarantine = Quarantine(60.0, clock=lambda: now[0])
    assert quarantine.add("a", "BadNodeIdUnknown")
    assert not quarantine.add("a", "BadNodeIdUnknown")
    assert quarantine.due() == []
    assert quarantine.due(all_=True) == ["a"]
    now[0] = 160.0
    assert quarantine.due() == ["a"]
    quarantine.postpone("a")
    assert quarantine.due() == []
    assert quarantine.seconds_to_next_retry() == 60.0
    quarantine.release("a")
    assert "a" not in quarantine
    assert quarantine.seconds_to_next_retry() is None


# -- trust --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server_der(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    pair = ensure_client_certificate(tmp_path_factory.mktemp("pki"), "urn:test:server")
    return pair.cert_path.read_bytes()


def test_pin_must_match(server_der: bytes, tmp_path: Path) -> None:
    remembered = tmp_path / "remembered.der"
    check_server_trust(
        server_der, pin_sha256=fingerprint(server_der), trust_dir=None, remembered_path=remembered
    )
    with pytest.raises(ServerTrustError, match="does not match the pinned"):
        check_server_trust(
            server_der, pin_sha256="0" * 64, trust_dir=None, remembered_path=remembered
        )
    assert not remembered.exists()


def test_trust_folder_holds_der_or_pem(server_der: bytes, tmp_path: Path) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    trust = tmp_path / "trusted"
    trust.mkdir()
    with pytest.raises(ServerTrustError, match="not in the trust folder"):
        check_server_trust(
            server_der, pin_sha256=None, trust_dir=trust, remembered_path=tmp_path / "r"
        )
    pem = x509.load_der_x509_certificate(server_der).public_bytes(Encoding.PEM)
    (trust / "plc.pem").write_bytes(pem)
    (trust / "notes.txt").write_text("not a certificate")
    check_server_trust(server_der, pin_sha256=None, trust_dir=trust, remembered_path=tmp_path / "r")


def test_without_pin_or_folder_the_first_certificate_is_remembered(
    server_der: bytes, tmp_path: Path
) -> None:
    remembered = tmp_path / "servers" / "plc.der"
    check_server_trust(server_der, pin_sha256=None, trust_dir=None, remembered_path=remembered)
    assert remembered.read_bytes() == server_der
    check_server_trust(server_der, pin_sha256=None, trust_dir=None, remembered_path=remembered)
    other = ensure_client_certificate(tmp_path / "other", "urn:test:other").cert_path.read_bytes()
    with pytest.raises(ServerTrustError, match="server certificate changed"):
        check_server_trust(other, pin_sha256=None, trust_dir=None, remembered_path=remembered)


def test_client_certificate_is_created_once(tmp_path: Path) -> None:
    first = ensure_client_certificate(tmp_path, "urn:lineside:edge-agent:a1")
    created = first.cert_path.read_bytes()
    assert ensure_client_certificate(tmp_path, "urn:lineside:edge-agent:a1") == first
    assert first.cert_path.read_bytes() == created
    ensure_client_certificate(tmp_path, "urn:lineside:edge-agent:a2")  # agent renamed
    assert first.cert_path.read_bytes() != created


# -- discovery YAML -------------------------------------------------------------------------


def variable(name: str, data_type: str, equipment: str = "press-1") -> DiscoveredVariable:
    return DiscoveredVariable(
        ("plant1", equipment, name), f"nsu=urn:x;s={equipment}.{name}", data_type, equipment
    )


def test_rendered_equipment_follows_the_config_rules() -> None:
    found = [
        variable("State", "Int32"),
        variable("TotalCount", "UInt32"),
        variable("GoodCount", "UInt32"),
        variable("ScrapCount", "UInt32"),  # a third counter: derived, so demoted
        variable("Order", "String"),
        variable("speed", "Double"),
        variable("State", "Int32", equipment="weld 1"),
        variable("GoodCount", "UInt16", equipment="weld 1"),  # a lone counter: demoted
    ]
    rendered = render_equipment_yaml(found, "plc")
    document = (
        "agent: {id: a1, location: {enterprise: e, site: s, area: a, line: l}}\n"
        "connections: [{id: plc, opcua: {endpoint: 'opc.tcp://127.0.0.1:4840'}}]\n"
        "equipment:\n" + "".join(f"  {line}\n" for line in rendered.splitlines())
    )
    config = parse_config(document, "rendered.yaml")
    press, weld = config.equipment
    assert (press.id, weld.id) == ("press-1", "weld_1")
    assert {t.id: t.role for t in press.tags} == {
        "state": Role.STATE,
        "total_count": Role.TOTAL_COUNT,
        "good_count": Role.GOOD_COUNT,
        "scrap_count": Role.PROCESS_VALUE,
        "order": Role.ORDER,
        "speed": Role.PROCESS_VALUE,
    }
    assert {t.id: t.role for t in weld.tags} == {
        "state": Role.STATE,
        "good_count": Role.PROCESS_VALUE,
    }
    assert press.tags[1].counter_width == 32
