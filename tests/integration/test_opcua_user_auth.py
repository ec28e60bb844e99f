"""User login of the agent's OpcUaSource against the simulator's OPC UA face.

X.509 user certificates (UserIdentityToken X509) are trusted by the scenario's
``opcua.user_certificates``; a refused login must reach the source's ConnectionChange
and log as a specific, secret-free error. (A successful user name/password login is
covered by test_opcua_source.py.)
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from _opcua_helpers import SimRig, StartFace, face_starter, make_rig, wait_until
from _opcua_source_helpers import (
    Collected,
    RunSource,
    connection,
    matches,
    source_runner,
    tag,
    user_certificate,
)
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from edge_agent.config.models import OpcUaAuth, OpcUaSecurity, SecurityMode, SecurityPolicy, Tag
from edge_agent.sources.opcua import fingerprint
from simulators.faces.opcua import OpcUaFace
from simulators.faces.opcua import OpcUaSecurity as FaceSecurity
from simulators.scenario.loader import load_scenario, resolve_scenario
from simulators.serve import ServeOptions, build_faces

pytestmark = pytest.mark.integration

SCENARIO = load_scenario("one-machine-shift")
URI = SCENARIO.namespace_uri
MACHINE = "press-1"
BASE = "plant1.stamping.line1.press-1"
POLLED = {"total": "TotalCount", "state": "State", "order": "Order"}


@pytest.fixture
async def faces(tmp_path: Path) -> AsyncIterator[StartFace]:
    async with face_starter(tmp_path / "server-pki") as start:
        yield start


@pytest.fixture
def rig(tmp_path: Path) -> SimRig:
    return make_rig(SCENARIO, tmp_path)


@pytest.fixture
async def run_source(tmp_path: Path) -> AsyncIterator[RunSource]:
    async with source_runner(tmp_path / "agent") as start:
        yield start


def polled_tags() -> list[tuple[str, Tag]]:
    return [(key, tag(key, f"nsu={URI};s={BASE}.{name}")) for key, name in POLLED.items()]


def secure_channel(tmp_path: Path) -> OpcUaSecurity:
    """Basic256Sha256 SignAndEncrypt, pinned to the face's server certificate."""
    server_der = (tmp_path / "server-pki" / "server_cert.der").read_bytes()
    return OpcUaSecurity(
        policy=SecurityPolicy.BASIC256SHA256,
        mode=SecurityMode.SIGN_AND_ENCRYPT,
        server_certificate_sha256=fingerprint(server_der),
    )


def key_body(key_path: Path) -> str:
    """A long run of the private key's base64 text: must never show up anywhere."""
    lines = key_path.read_text().splitlines()
    return "".join(line for line in lines if not line.startswith("-----"))[40:120]


def our_messages(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name.startswith("lineside.")]


async def refusal(out: Collected) -> str:
    """The detail of the source's first ConnectionChange, which must be a disconnect."""
    await wait_until(out.changes, 15, message="a ConnectionChange")
    first = out.changes()[0]
    assert first.connected is False
    return first.detail


# -- X.509 user certificates -------------------------------------------------------------


@pytest.mark.parametrize("channel", ["none", "basic256sha256_signandencrypt"])
async def test_user_certificate_login_from_the_scenario_reads_values(
    channel: str,
    tmp_path: Path,
    faces: StartFace,
    run_source: RunSource,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="lineside")
    alice = user_certificate(tmp_path / "users", "alice")
    # The scenario names the certificate as PEM, relative to the scenario file.
    der = alice.cert_path.read_bytes()
    pem = x509.load_der_x509_certificate(der).public_bytes(serialization.Encoding.PEM)
    (tmp_path / "users" / "alice.pem").write_bytes(pem)
    scenario_file = tmp_path / "scenario.yaml"
    scenario_file.write_text(
        resolve_scenario("one-machine-shift").read_text()
        + "opcua:\n  user_certificates: [users/alice.pem]\n"
    )
    scenario = load_scenario(scenario_file)
    assert scenario.opcua.user_certificates == [tmp_path / "users" / "alice.pem"]
    rig = make_rig(scenario, tmp_path)
    options = ServeOptions(opcua_port=0, modbus_port=None, control_port=None, data_dir=tmp_path)
    (built,) = build_faces(rig.sim, options)
    assert isinstance(built, OpcUaFace)
    assert built.security.user_certificates == (der,)
    face = await faces(rig, security=built.security)
    assert "login: user certificate" in face.endpoints()[0]

    rig.advance(3600)
    auth = OpcUaAuth(type="certificate", user_certificate=alice.cert_path, user_key=alice.key_path)
    security = secure_channel(tmp_path) if channel != "none" else OpcUaSecurity()
    out = await run_source(connection(face.url, auth=auth, security=security), polled_tags())

    def all_match() -> bool:
        return all(matches(out.latest(key), rig, MACHINE, name) for key, name in POLLED.items())

    await wait_until(all_match, 15, message="every polled tag equals the simulator")
    rig.advance(600)
    await wait_until(all_match, 10, message="every polled tag follows the simulator")
    assert [c.connected for c in out.changes()] == [True]
    assert not [m for m in our_messages(caplog) if "opcua_login_rejected" in m]
    assert any("auth=certificate" in m for m in our_messages(caplog))


@pytest.mark.parametrize(
    ("case", "status", "fix"),
    [
        ("untrusted", "BadUserAccessDenied", "the server must trust this user certificate"),
        (
            "trusted certificate, other key",
            "BadIdentityTokenInvalid",
            "check that user_key is the private key of user_certificate",
        ),
    ],
)
async def test_refused_user_certificate_is_reported_without_secrets(
    case: str,
    status: str,
    fix: str,
    rig: SimRig,
    tmp_path: Path,
    faces: StartFace,
    run_source: RunSource,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="lineside")
    alice = user_certificate(tmp_path / "users", "alice")
    mallory = user_certificate(tmp_path / "users", "mallory")
    trusted = FaceSecurity(user_certificates=[alice.cert_path.read_bytes()])
    face = await faces(rig, security=trusted)
    # A copy of a trusted (public) certificate is not enough: the token is signed.
    cert = mallory.cert_path if case == "untrusted" else alice.cert_path
    auth = OpcUaAuth(type="certificate", user_certificate=cert, user_key=mallory.key_path)
    out = await run_source(connection(face.url, auth=auth), polled_tags())

    detail = await refusal(out)
    assert "refused the login with user certificate" in detail, detail
    assert str(cert) in detail
    assert fingerprint(cert.read_bytes()) in detail
    assert f"with {status}; {fix}" in detail
    failed = [r for r in caplog.records if "event=opcua_connect_failed" in r.getMessage()]
    assert failed
    assert "refused the login" in failed[0].getMessage()
    assert failed[0].levelno == logging.ERROR  # a person must act: not a network hiccup
    messages = [*our_messages(caplog), detail]
    if case == "untrusted":
        rejected = [m for m in messages if "event=opcua_login_rejected token=certificate" in m]
        assert rejected
        assert fingerprint(cert.read_bytes()) in rejected[0]
    secret = key_body(mallory.key_path)
    assert not [m for m in messages if secret in m or "PRIVATE KEY" in m]
    assert not out.samples("total")


# -- user name and password --------------------------------------------------------------


async def test_wrong_password_is_refused_without_showing_any_password(
    rig: SimRig,
    faces: StartFace,
    run_source: RunSource,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="lineside")
    face = await faces(rig, security=FaceSecurity(users={"agent": "right-pa55"}))
    auth = OpcUaAuth(type="username", username="agent", password="wrong-pa55")
    out = await run_source(connection(face.url, auth=auth), polled_tags())

    detail = await refusal(out)
    assert "refused the login of user 'agent' with BadUserAccessDenied" in detail, detail
    assert "check the user name and password" in detail
    messages = [*our_messages(caplog), detail]
    assert any("event=opcua_login_rejected token=username user=agent" in m for m in messages)
    assert not [m for m in messages if "pa55" in m]
    assert not out.samples("total")
