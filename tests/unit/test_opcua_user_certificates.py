"""Trusted OPC UA user certificates: scenario checks, face settings, the login decision."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from asyncua import ua
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID
from typer.testing import CliRunner

from lineside_common.opcua_certs import CertificateFiles, write_self_signed_certificate
from simulators.cli import app
from simulators.errors import ScenarioError
from simulators.faces.opcua import OpcUaSecurity
from simulators.faces.opcua.logins import UserManager, first_der_certificate
from simulators.scenario.certificates import read_certificate_der
from simulators.scenario.loader import load_scenario

SCENARIO_HEAD = """\
scenario: with-user-certificates
machines:
  - name: press-1
    location: {site: s1, area: a1, line: l1}
    products: [{id: A, ideal_cycle_time_s: 2}]
    timeline: ["06:00 run A"]
"""


def make_certificate(directory: Path, name: str) -> CertificateFiles:
    files = CertificateFiles(directory / f"{name}.der", directory / f"{name}_key.pem")
    write_self_signed_certificate(
        files, f"urn:test:{name}", [], ExtendedKeyUsageOID.CLIENT_AUTH, name
    )
    return files


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, CertificateFiles]:
    directory = tmp_path_factory.mktemp("certs")
    return {name: make_certificate(directory, name) for name in ("alice", "mallory")}


def test_pem_and_der_read_the_same_and_a_key_is_not_a_certificate(
    certs: dict[str, CertificateFiles], tmp_path: Path
) -> None:
    der = certs["alice"].cert_path.read_bytes()
    pem_path = tmp_path / "alice.pem"
    pem_path.write_bytes(
        x509.load_der_x509_certificate(der).public_bytes(serialization.Encoding.PEM)
    )
    assert read_certificate_der(certs["alice"].cert_path) == der
    assert read_certificate_der(pem_path) == der
    with pytest.raises(ValueError, match=r"is not an X\.509 certificate .* not its private key"):
        read_certificate_der(certs["alice"].key_path)


def test_scenario_paths_are_relative_to_the_scenario_file_and_errors_are_located(
    certs: dict[str, CertificateFiles], tmp_path: Path
) -> None:
    (tmp_path / "users").mkdir()
    (tmp_path / "users" / "alice.der").write_bytes(certs["alice"].cert_path.read_bytes())
    good = tmp_path / "good.yaml"
    good.write_text(SCENARIO_HEAD + "opcua: {user_certificates: [users/alice.der]}\n")
    assert load_scenario(good).opcua.user_certificates == [tmp_path / "users" / "alice.der"]

    bad = tmp_path / "bad.yaml"
    bad.write_text(
        SCENARIO_HEAD
        + "opcua:\n  user_certificates:\n    - users/alice.der\n"
        + f"    - {certs['alice'].key_path}\n    - users/missing.pem\n"
    )
    with pytest.raises(ScenarioError) as caught:
        load_scenario(bad)
    rendered = [issue.render() for issue in caught.value.issues]
    assert len(rendered) == 2, rendered
    assert rendered[0].startswith(
        f"{bad}:10:7: opcua.user_certificates[1]: {certs['alice'].key_path}"
    )
    assert rendered[1].startswith(f"{bad}:11:7: opcua.user_certificates[2]: cannot read ")


def test_user_certificates_need_a_secure_endpoint_and_replace_anonymous_login(
    certs: dict[str, CertificateFiles],
) -> None:
    der = certs["alice"].cert_path.read_bytes()
    with pytest.raises(ValueError, match="need a secure endpoint"):
        OpcUaSecurity(policies=["none"], user_certificates=[der])
    security = OpcUaSecurity(policies=["none", "basic256sha256"], user_certificates=[der])
    assert security.identity_tokens == [ua.X509IdentityToken]
    assert security.login == "user certificate"
    both = OpcUaSecurity(users={"u": "p"}, user_certificates=[der])
    assert both.identity_tokens == [ua.UserNameIdentityToken, ua.X509IdentityToken]
    assert OpcUaSecurity().identity_tokens == [ua.AnonymousIdentityToken]


def test_the_user_manager_accepts_trusted_certificates_only(
    certs: dict[str, CertificateFiles], caplog: pytest.LogCaptureFixture
) -> None:
    alice = certs["alice"].cert_path.read_bytes()
    mallory = certs["mallory"].cert_path.read_bytes()
    users = UserManager({"operator": "s3cret"}, [alice])
    user = users.get_user(None, certificate=alice + mallory)  # type: ignore[arg-type]  # a chain
    assert user is not None
    assert "CN=alice" in str(user.name)
    with caplog.at_level(logging.WARNING, logger="lineside.sim.opcua"):
        assert users.get_user(None, certificate=mallory) is None  # type: ignore[arg-type]
        # A password login is judged by its password, whatever the channel certificate.
        assert users.get_user(None, "operator", "wrong", alice) is None  # type: ignore[arg-type]
    assert users.get_user(None, "operator", "s3cret", mallory) is not None  # type: ignore[arg-type]
    (rejected_cert, rejected_password) = [r.getMessage() for r in caplog.records]
    assert "token=certificate" in rejected_cert
    assert "CN=mallory" in rejected_cert
    assert "untrusted_user_certificate" in rejected_cert
    assert "token=username user=operator" in rejected_password
    assert "wrong" not in rejected_password


def test_first_der_certificate_reads_long_form_lengths(
    certs: dict[str, CertificateFiles],
) -> None:
    alice = certs["alice"].cert_path.read_bytes()
    assert len(alice) > 255  # two length bytes: 0x30 0x82 HI LO
    assert first_der_certificate(alice + b"\x30\x03\x02\x01\x00") == alice
    assert first_der_certificate(b"\x30\x03\x02\x01\x00" + alice) == b"\x30\x03\x02\x01\x00"


def test_plc_sim_run_refuses_user_certificates_without_a_secure_endpoint(
    certs: dict[str, CertificateFiles], tmp_path: Path
) -> None:
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text(
        SCENARIO_HEAD + f"opcua: {{user_certificates: ['{certs['alice'].cert_path}']}}\n"
    )
    result = CliRunner().invoke(app, ["run", str(scenario), "--opcua-security", "none"])
    assert result.exit_code == 2, result.output
    assert "need a secure endpoint" in result.output
