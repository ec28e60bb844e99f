"""API tokens without HTTP: config checks, verification, creation, JWKS, the token CLI."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import ValidationError
from typer.testing import CliRunner

from collector import token_cli
from collector.api.auth import (
    AuthError,
    AuthSetupError,
    KeysUnavailableError,
    Principal,
    Role,
    TokenVerifier,
    create_token,
    key_id,
)
from collector.api.auth_config import AuthConfig

SECRET = "unit-test-secret-0123456789-abcdefghijklmnop"  # 44 bytes, never to be printed
HS = AuthConfig(hs256_secret=SECRET)  # type: ignore[arg-type]


def _claims(**overrides: Any) -> dict[str, Any]:
    now = int(datetime.now(UTC).timestamp())
    claims: dict[str, Any] = {
        "iss": "lineside",
        "aud": "lineside-api",
        "sub": "dash",
        "role": "viewer",
        "sites": ["s1"],
        "iat": now,
        "exp": now + 600,
        "jti": "abc",
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def _hs(claims: dict[str, Any], secret: str = SECRET, **headers: Any) -> str:
    return jwt.encode(claims, secret, algorithm="HS256", headers=headers or None)


def _refusal(verifier: TokenVerifier, token: str) -> AuthError:
    with pytest.raises(AuthError) as caught:
        verifier.verify(token)
    assert SECRET not in str(caught.value)
    return caught.value


# -- roles and principals ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "needed", "allowed"),
    [
        (Role.VIEWER, Role.VIEWER, True),
        (Role.VIEWER, Role.ENGINEER, False),
        (Role.VIEWER, Role.ADMIN, False),
        (Role.ENGINEER, Role.VIEWER, True),
        (Role.ENGINEER, Role.ENGINEER, True),
        (Role.ENGINEER, Role.ADMIN, False),
        (Role.ADMIN, Role.VIEWER, True),
        (Role.ADMIN, Role.ENGINEER, True),
        (Role.ADMIN, Role.ADMIN, True),
    ],
)
def test_roles_are_ordered_viewer_engineer_admin(role: Role, needed: Role, allowed: bool) -> None:
    assert role.allows(needed) is allowed


def test_principal_site_scope() -> None:
    scoped = Principal("a", Role.VIEWER, frozenset({"s1"}), None)
    everywhere = Principal("a", Role.VIEWER, None, None)
    assert scoped.can_access_site("s1")
    assert not scoped.can_access_site("s2")
    assert everywhere.can_access_site("s2")


# -- configuration ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({}, "algorithm HS256 needs hs256_secret"),
        ({"hs256_secret": "too-short-secret"}, "shorter than 32 bytes"),
        ({"algorithm": "RS256"}, "needs rs256_public_key_file or jwks_url"),
        (
            {"algorithm": "RS256", "rs256_public_key_file": "k.pem", "jwks_url": "http://x/j"},
            "set only one of",
        ),
        ({"hs256_secret": SECRET, "jwks_url": "file:///etc/passwd"}, "jwks_url"),
        ({"hs256_secret": SECRET, "max_ttl_s": 1}, "max_ttl_s"),
    ],
)
def test_bad_auth_config_is_refused_with_a_reason(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        AuthConfig.model_validate(fields)
    assert message in str(caught.value)


def test_the_secret_is_not_in_repr_or_errors() -> None:
    assert SECRET not in repr(HS)
    assert SECRET not in str(HS.model_dump())
    short = "shortsecret-zz9"
    with pytest.raises(ValidationError) as caught:
        AuthConfig.model_validate({"hs256_secret": short, "leeway_s": -1})
    assert short not in str(caught.value)
    assert SECRET not in repr(TokenVerifier(HS))


# -- HS256 verification -----------------------------------------------------------------


def test_created_token_verifies_to_its_principal() -> None:
    token = create_token(HS, subject="grafana", role=Role.ENGINEER, sites=["s2", "s1"], ttl_s=60)
    principal = TokenVerifier(HS).verify(token)
    assert principal.subject == "grafana"
    assert principal.role is Role.ENGINEER
    assert principal.sites == frozenset({"s1", "s2"})
    assert principal.token_id is not None
    assert len(principal.token_id) == 32
    every = create_token(HS, subject="ops", role=Role.ADMIN, sites=["*"], ttl_s=60)
    assert TokenVerifier(HS).verify(every).sites is None


def test_created_token_carries_the_registered_claims() -> None:
    now = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    token = create_token(HS, subject="a", role=Role.VIEWER, sites=["s1"], ttl_s=3600, now=now)
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["iss"] == "lineside"
    assert claims["aud"] == "lineside-api"
    assert claims["iat"] == claims["nbf"] == int(now.timestamp())
    assert claims["exp"] == int(now.timestamp()) + 3600
    assert jwt.get_unverified_header(token)["alg"] == "HS256"


HOUR = 3600


@pytest.mark.parametrize(
    ("token", "detail"),
    [
        (_hs(_claims(exp=int(datetime.now(UTC).timestamp()) - HOUR)), "token expired"),
        (_hs(_claims(nbf=int(datetime.now(UTC).timestamp()) + HOUR)), "token not yet valid"),
        (_hs(_claims(iat=int(datetime.now(UTC).timestamp()) + HOUR)), "token not yet valid"),
        (_hs(_claims(iss="someone-else")), "token issuer 'someone-else' is not the configured"),
        (_hs(_claims(aud="other-api")), "token audience 'other-api' does not include"),
        (_hs(_claims(aud=None)), "token has no 'aud' claim"),
        (_hs(_claims(exp=None)), "token has no 'exp' claim"),
        (_hs(_claims(iat=None)), "token has no 'iat' claim"),
        (_hs(_claims(sub=None)), "token has no 'sub' claim"),
        (_hs(_claims(sub=42)), "token 'sub' claim is not a string"),
        (_hs(_claims(sub="")), "token 'sub' claim is empty"),
        (_hs(_claims(jti=7)), "token 'jti' claim is not a string"),
        (_hs(_claims(iat="soon")), "token 'iat' claim is not a number"),
        (_hs(_claims(role="root")), "token role 'root' is not viewer, engineer or admin"),
        (_hs(_claims(role=None)), "token has no 'role' claim"),
        (_hs(_claims(sites=None)), "token has no 'sites' claim"),
        (_hs(_claims(sites="s1")), "'sites' claim must be a list"),
        (_hs(_claims(sites=["*", "s1"])), "mixes"),
        (_hs(_claims(), secret="another-secret-of-sufficient-length-0123"), "signature is invalid"),
        (_hs(_claims()) + "x", "signature is invalid"),
        ("not-a-jwt", "token is malformed"),
        ("a.b.c", "token is malformed"),
        (jwt.encode(_claims(), None, algorithm="none"), "token algorithm 'none' is not accepted"),
    ],
    ids=lambda value: value[:40] if isinstance(value, str) and "." not in value else None,
)
def test_hs256_refusals_say_what_is_wrong(token: str, detail: str) -> None:
    error = _refusal(TokenVerifier(HS), token)
    assert error.status_code == 401
    assert detail in error.detail


def test_leeway_accepts_a_token_just_expired() -> None:
    just_expired = _hs(_claims(exp=int(datetime.now(UTC).timestamp()) - 5))
    assert TokenVerifier(HS).verify(just_expired).subject == "dash"
    strict = AuthConfig(hs256_secret=SECRET, leeway_s=0)  # type: ignore[arg-type]
    assert _refusal(TokenVerifier(strict), just_expired).detail == "token expired"


def test_issuer_and_audience_come_from_the_config() -> None:
    custom = AuthConfig(hs256_secret=SECRET, issuer="plant-7", audience="oee")  # type: ignore[arg-type]
    token = create_token(custom, subject="a", role=Role.VIEWER, sites=["s1"], ttl_s=60)
    assert TokenVerifier(custom).verify(token).subject == "a"
    assert "issuer 'plant-7'" in _refusal(TokenVerifier(HS), token).detail


# -- token creation refusals ------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"ttl_s": 31 * 86_400}, "longer than max_ttl_s"),
        ({"ttl_s": 0}, "more than 0"),
        ({"sites": []}, "no site"),
        ({"sites": ["*", "s1"]}, "'*' already means every site"),
        ({"sites": ["line/1"]}, "'line/1' is not a site id"),
        ({"subject": " "}, "subject is empty"),
        ({"now": datetime(2030, 1, 1)}, "timezone-aware"),
    ],
)
def test_create_token_refuses_bad_requests(kwargs: dict[str, Any], message: str) -> None:
    request: dict[str, Any] = {"subject": "a", "role": Role.VIEWER, "sites": ["s1"], "ttl_s": 60}
    request.update(kwargs)
    with pytest.raises(AuthSetupError, match=message):
        create_token(HS, **request)


# -- RS256: key files and JWKS ----------------------------------------------------------


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def rs_files(rsa_key: rsa.RSAPrivateKey, tmp_path: Path) -> tuple[Path, Path]:
    private = tmp_path / "api.key"
    public = tmp_path / "api.pub"
    private.write_bytes(
        rsa_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    public.write_bytes(_public_pem(rsa_key))
    return private, public


def _public_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def test_rs256_with_key_files(rs_files: tuple[Path, Path], rsa_key: rsa.RSAPrivateKey) -> None:
    private, public = rs_files
    config = AuthConfig(
        algorithm="RS256", rs256_public_key_file=public, rs256_private_key_file=private
    )
    token = create_token(config, subject="mes", role=Role.ADMIN, sites=["*"], ttl_s=60)
    assert jwt.get_unverified_header(token)["kid"] == key_id(rsa_key.public_key())
    verifier = TokenVerifier(config)
    assert verifier.verify(token).role is Role.ADMIN
    # HS256 token signed with the public key as its secret: the classic confusion attack
    forged = jwt.encode(_claims(role="admin"), SECRET, algorithm="HS256")
    error = _refusal(verifier, forged)
    assert error.detail == "token algorithm 'HS256' is not accepted (this API takes RS256)"
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    wrong = jwt.encode(_claims(), other_key, algorithm="RS256")
    assert _refusal(verifier, wrong).detail == "token signature is invalid"


def test_rs256_key_file_problems_name_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "missing.pub"
    config = AuthConfig(algorithm="RS256", rs256_public_key_file=missing)
    with pytest.raises(AuthSetupError, match=r"missing\.pub: cannot read"):
        TokenVerifier(config)
    garbage = tmp_path / "garbage.pub"
    garbage.write_text("hello")
    with pytest.raises(AuthSetupError, match="not a PEM public key"):
        TokenVerifier(AuthConfig(algorithm="RS256", rs256_public_key_file=garbage))
    with pytest.raises(AuthSetupError, match="rs256_private_key_file"):
        create_token(config, subject="a", role=Role.VIEWER, sites=["s1"], ttl_s=60)


class _JwksServer:
    """A real HTTP server on loopback serving a JWKS document that tests can change."""

    def __init__(self) -> None:
        self.document: dict[str, Any] = {"keys": []}
        self.requests = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.requests += 1
                body = json.dumps(outer.document).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/jwks.json"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def jwks_server() -> Iterator[_JwksServer]:
    server = _JwksServer()
    yield server
    server.close()


def _jwk(key: rsa.RSAPrivateKey) -> dict[str, Any]:
    jwk = jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
    jwk.update({"kid": key_id(key.public_key()), "use": "sig", "alg": "RS256"})
    return jwk


def test_rs256_keys_from_a_jwks_endpoint(
    jwks_server: _JwksServer, rs_files: tuple[Path, Path], rsa_key: rsa.RSAPrivateKey
) -> None:
    jwks_server.document = {"keys": [_jwk(rsa_key)]}
    config = AuthConfig(
        algorithm="RS256", jwks_url=jwks_server.url, rs256_private_key_file=rs_files[0]
    )
    verifier = TokenVerifier(config)
    token = create_token(config, subject="mes", role=Role.ENGINEER, sites=["s1"], ttl_s=60)
    assert verifier.verify(token).role is Role.ENGINEER
    assert verifier.verify(token).subject == "mes"
    assert jwks_server.requests == 1  # the document is cached

    unknown = jwt.encode(_claims(), rsa_key, algorithm="RS256", headers={"kid": "nope"})
    assert _refusal(verifier, unknown).detail == "token key id 'nope' is not in the JWKS"
    no_kid = jwt.encode(_claims(), rsa_key, algorithm="RS256")
    assert "no 'kid'" in _refusal(verifier, no_kid).detail
    forged = _hs(_claims(), kid=key_id(rsa_key.public_key()))
    assert "'HS256' is not accepted" in _refusal(verifier, forged).detail


def test_unreachable_jwks_is_a_503_not_the_callers_fault(
    jwks_server: _JwksServer, rsa_key: rsa.RSAPrivateKey
) -> None:
    url = jwks_server.url
    jwks_server.close()  # nothing listens there any more
    verifier = TokenVerifier(AuthConfig(algorithm="RS256", jwks_url=url), jwks_timeout_s=2)
    token = jwt.encode(_claims(), rsa_key, algorithm="RS256", headers={"kid": "k1"})
    error = _refusal(verifier, token)
    assert isinstance(error, KeysUnavailableError)
    assert error.status_code == 503


def test_jwks_without_keys_is_a_503(jwks_server: _JwksServer, rsa_key: rsa.RSAPrivateKey) -> None:
    verifier = TokenVerifier(AuthConfig(algorithm="RS256", jwks_url=jwks_server.url))
    token = jwt.encode(_claims(), rsa_key, algorithm="RS256", headers={"kid": "k1"})
    assert _refusal(verifier, token).status_code == 503


# -- oee-collector token create ---------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("30m", 1800), ("8h", 28_800), ("7d", 604_800), (" 2h ", 7200)],
)
def test_parse_ttl(text: str, seconds: int) -> None:
    assert token_cli.parse_ttl(text) == seconds


@pytest.mark.parametrize("text", ["", "8", "8x", "1.5h", "-1h", "0m", "h"])
def test_parse_ttl_refuses_with_the_accepted_forms(text: str) -> None:
    with pytest.raises(AuthSetupError, match=r"--ttl"):
        token_cli.parse_ttl(text)


def test_mint_returns_a_token_and_a_summary_without_the_secret() -> None:
    now = datetime(2031, 5, 6, 7, 0, 0, tzinfo=UTC)
    token, summary = token_cli.mint(HS, Role.VIEWER, ["s1", "s2"], "8h", "grafana", now=now)
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["exp"] == int((now + timedelta(hours=8)).timestamp())
    assert summary.startswith("token for 'grafana': role viewer, sites s1, s2, ")
    assert "expires 2031-05-06T15:00:00Z" in summary
    assert claims["jti"] in summary
    assert SECRET not in summary


def test_mint_refuses_a_ttl_above_the_maximum() -> None:
    with pytest.raises(AuthSetupError, match="max_ttl_s"):
        token_cli.mint(HS, Role.VIEWER, ["s1"], "31d", "a")


def test_token_create_prints_only_the_token_on_stdout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(token_cli, "_auth_config", lambda loaded: HS)
    result = CliRunner().invoke(
        token_cli.app,
        ["create", "--role", "engineer", "--site", "s1", "--ttl", "30m", "--subject", "ci"],
    )
    assert result.exit_code == 0, result.output
    token = result.stdout.strip()
    assert result.stdout == token + "\n"
    principal = TokenVerifier(HS).verify(token)
    assert (principal.subject, principal.role, principal.sites) == (
        "ci",
        Role.ENGINEER,
        frozenset({"s1"}),
    )
    assert "role engineer, sites s1" in result.stderr
    assert SECRET not in result.output

    bad = CliRunner().invoke(
        token_cli.app, ["create", "--role", "viewer", "--site", "s1", "--ttl", "9w"]
    )
    assert bad.exit_code == 2
    assert "--ttl '9w'" in bad.stderr
    assert bad.stdout == ""
    assert SECRET not in bad.output
