"""The API's security over HTTP: a tiny FastAPI app answering the whole auth matrix."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from collector.api.auth import Principal, Role, TokenVerifier, create_token
from collector.api.auth_config import AuthConfig, RateLimitConfig
from collector.api.ratelimit import RateLimiter
from collector.api.security import ApiSecurity, ensure_site

SECRET = "security-test-secret-0123456789-abcdefghij"
HS = AuthConfig(hs256_secret=SECRET)  # type: ignore[arg-type]
NO_LIMITS = RateLimitConfig(enabled=False)


def _app(security: ApiSecurity) -> FastAPI:
    app = FastAPI()

    @app.get("/healthz")
    def healthz() -> dict[str, bool]:
        return {"ok": True}

    @app.get("/sites/{site}/oee")
    def oee(site: str, who: Principal = Depends(security.requires(Role.VIEWER))) -> dict[str, str]:
        ensure_site(who, site)
        return {"site": site, "subject": who.subject}

    @app.post("/sites/{site}/downtime-reasons")
    def reasons(
        site: str, who: Principal = Depends(security.requires(Role.ENGINEER))
    ) -> dict[str, str]:
        ensure_site(who, site)
        return {"site": site}

    @app.delete("/admin/cache")
    def flush(who: Principal = Depends(security.requires(Role.ADMIN))) -> dict[str, str]:
        return {"by": who.subject}

    return app


def _client(
    auth: AuthConfig = HS,
    rate_limit: RateLimitConfig = NO_LIMITS,
    registry: CollectorRegistry | None = None,
    client: tuple[str, int] = ("10.1.2.3", 50000),
) -> TestClient:
    security = ApiSecurity.from_config(auth, rate_limit, registry=registry or CollectorRegistry())
    return TestClient(_app(security), client=client)


def _token(role: str = "viewer", sites: list[str] | None = None, **overrides: Any) -> str:
    now = int(datetime.now(UTC).timestamp())
    claims: dict[str, Any] = {
        "iss": "lineside",
        "aud": "lineside-api",
        "sub": "dash",
        "role": role,
        "sites": sites or ["s1"],
        "iat": now,
        "exp": now + 600,
        "jti": "j1",
    }
    claims.update(overrides)
    return jwt.encode({k: v for k, v in claims.items() if v is not None}, SECRET, algorithm="HS256")


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


NOW = int(datetime.now(UTC).timestamp())
MATRIX: list[tuple[str, dict[str, str], str, str, int, str]] = [
    ("no token", {}, "GET", "/sites/s1/oee", 401, "no bearer token"),
    ("basic auth", {"Authorization": "Basic YTpi"}, "GET", "/sites/s1/oee", 401, "not 'Bearer"),
    ("empty bearer", {"Authorization": "Bearer "}, "GET", "/sites/s1/oee", 401, "not 'Bearer"),
    ("garbage", _bearer("garbage"), "GET", "/sites/s1/oee", 401, "token is malformed"),
    (
        "bad signature",
        _bearer(_token()[:-4] + "AAAA"),
        "GET",
        "/sites/s1/oee",
        401,
        "signature is invalid",
    ),
    ("expired", _bearer(_token(exp=NOW - 3600)), "GET", "/sites/s1/oee", 401, "token expired"),
    ("not yet", _bearer(_token(nbf=NOW + 3600)), "GET", "/sites/s1/oee", 401, "not yet valid"),
    (
        "issuer",
        _bearer(_token(iss="x")),
        "GET",
        "/sites/s1/oee",
        401,
        "token issuer 'x' is not the configured issuer",
    ),
    ("audience", _bearer(_token(aud="y")), "GET", "/sites/s1/oee", 401, "token audience 'y'"),
    (
        "alg none",
        _bearer(jwt.encode({"sub": "dash", "role": "admin"}, None, algorithm="none")),
        "GET",
        "/sites/s1/oee",
        401,
        "token algorithm 'none' is not accepted",
    ),
    (
        "unknown role",
        _bearer(_token(role="superuser")),
        "GET",
        "/sites/s1/oee",
        401,
        "token role 'superuser' is not viewer, engineer or admin",
    ),
    (
        "viewer posts",
        _bearer(_token()),
        "POST",
        "/sites/s1/downtime-reasons",
        403,
        "role viewer may not call this endpoint (needs engineer)",
    ),
    (
        "engineer flushes",
        _bearer(_token("engineer")),
        "DELETE",
        "/admin/cache",
        403,
        "role engineer may not call this endpoint (needs admin)",
    ),
    ("other site", _bearer(_token()), "GET", "/sites/s2/oee", 403, "no access to site 's2'"),
    ("viewer reads", _bearer(_token()), "GET", "/sites/s1/oee", 200, ""),
    ("engineer posts", _bearer(_token("engineer")), "POST", "/sites/s1/downtime-reasons", 200, ""),
    ("admin reads", _bearer(_token("admin")), "GET", "/sites/s1/oee", 200, ""),
    ("every site", _bearer(_token(sites=["*"])), "GET", "/sites/s9/oee", 200, ""),
    ("admin flushes", _bearer(_token("admin")), "DELETE", "/admin/cache", 200, ""),
]


@pytest.mark.parametrize(
    ("headers", "method", "path", "status", "detail"),
    [case[1:] for case in MATRIX],
    ids=[case[0] for case in MATRIX],
)
def test_auth_matrix(
    headers: dict[str, str], method: str, path: str, status: int, detail: str
) -> None:
    response = _client().request(method, path, headers=headers)
    assert response.status_code == status, response.text
    assert SECRET not in response.text
    if status == 200:
        return
    assert detail in response.json()["detail"]
    challenge = response.headers.get("WWW-Authenticate")
    if status == 401:
        assert challenge is not None
        assert challenge.startswith("Bearer")
    else:
        assert challenge is None


def test_a_missing_token_gets_a_plain_challenge_and_a_bad_one_invalid_token() -> None:
    client = _client()
    assert client.get("/sites/s1/oee").headers["WWW-Authenticate"] == "Bearer"
    bad = client.get("/sites/s1/oee", headers=_bearer(_token(exp=NOW - 3600)))
    assert bad.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'


def test_health_is_open_and_openapi_documents_the_bearer_scheme() -> None:
    client = _client()
    assert client.get("/healthz").status_code == 200
    schemes = client.get("/openapi.json").json()["components"]["securitySchemes"]
    assert schemes["bearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "JWT from `oee-collector token create` (or your identity provider)",
    }


def test_created_tokens_are_accepted() -> None:
    token = create_token(HS, subject="grafana", role=Role.VIEWER, sites=["s1"], ttl_s=60)
    response = _client().get("/sites/s1/oee", headers=_bearer(token))
    assert response.json() == {"site": "s1", "subject": "grafana"}


# -- RS256 ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def rs256(rsa_key: rsa.RSAPrivateKey, tmp_path: Path) -> AuthConfig:
    public = tmp_path / "api.pub"
    public.write_bytes(
        rsa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return AuthConfig(algorithm="RS256", rs256_public_key_file=public)


def test_rs256_accepts_its_key_and_refuses_hs256_and_none(
    rs256: AuthConfig, rsa_key: rsa.RSAPrivateKey
) -> None:
    client = _client(rs256)
    claims = jwt.decode(_token(), options={"verify_signature": False})
    good = jwt.encode(claims, rsa_key, algorithm="RS256")
    assert client.get("/sites/s1/oee", headers=_bearer(good)).status_code == 200
    public_pem = rs256.rs256_public_key_file.read_bytes()  # type: ignore[union-attr]
    for forged, alg in [
        (_token(), "HS256"),
        (jwt.encode(claims, None, algorithm="none"), "none"),
        # HS256 keyed with the public key: PyJWT refuses to encode that, so hand-roll it
        (_hs256_with_raw_key(claims, public_pem), "HS256"),
    ]:
        response = client.get("/sites/s1/oee", headers=_bearer(forged))
        assert response.status_code == 401
        assert response.json()["detail"] == (
            f"token algorithm '{alg}' is not accepted (this API takes RS256)"
        )


def _hs256_with_raw_key(claims: dict[str, Any], key: bytes) -> str:
    import base64
    import hashlib
    import hmac
    import json

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    signing_input = b64(b'{"alg":"HS256","typ":"JWT"}') + "." + b64(json.dumps(claims).encode())
    signature = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + b64(signature)


def test_unreachable_jwks_answers_503_without_a_challenge(rsa_key: rsa.RSAPrivateKey) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    auth = AuthConfig(algorithm="RS256", jwks_url=f"http://127.0.0.1:{port}/jwks.json")
    claims = jwt.decode(_token(), options={"verify_signature": False})
    token = jwt.encode(claims, rsa_key, algorithm="RS256", headers={"kid": "k1"})
    response = _client(auth).get("/sites/s1/oee", headers=_bearer(token))
    assert response.status_code == 503
    assert "signing keys are unavailable" in response.json()["detail"]
    assert "WWW-Authenticate" not in response.headers


# -- rate limits ------------------------------------------------------------------------


def _limited(per_token: str = "100/second", per_client: str = "100/second") -> RateLimitConfig:
    return RateLimitConfig(per_token=per_token, per_client=per_client)


def _assert_429(response: Any, who: str) -> int:
    assert response.status_code == 429, response.text
    retry_after = response.headers["Retry-After"]
    assert retry_after.isdigit()
    assert int(retry_after) >= 1
    assert response.json()["detail"] == f"too many requests {who}; retry after {retry_after} s"
    return int(retry_after)


def test_the_request_after_the_per_token_limit_gets_429() -> None:
    client = _client(rate_limit=_limited(per_token="3/minute"))
    headers = _bearer(_token(jti="t1"))
    for _ in range(3):
        assert client.get("/sites/s1/oee", headers=headers).status_code == 200
    seconds = _assert_429(client.get("/sites/s1/oee", headers=headers), "for this token")
    assert 55 <= seconds <= 60
    other_token = _bearer(_token(jti="t2"))
    assert client.get("/sites/s1/oee", headers=other_token).status_code == 200
    assert client.get("/healthz").status_code == 200  # health is never limited


def test_tokens_without_jti_are_limited_by_subject() -> None:
    client = _client(rate_limit=_limited(per_token="1/minute"))
    assert client.get("/sites/s1/oee", headers=_bearer(_token(jti=None))).status_code == 200
    again = client.get("/sites/s1/oee", headers=_bearer(_token(jti=None, iat=NOW - 1)))
    _assert_429(again, "for this token")


def test_the_per_client_limit_counts_requests_that_fail_auth() -> None:
    registry = CollectorRegistry()
    security = ApiSecurity.from_config(HS, _limited(per_client="3/minute"), registry=registry)
    app = _app(security)
    guesser = TestClient(app, client=("10.9.9.9", 40000))
    for guess in ("a.b.c", "x", "y"):
        assert guesser.get("/sites/s1/oee", headers=_bearer(guess)).status_code == 401
    # even a valid token is refused now: the address is over its limit
    _assert_429(guesser.get("/sites/s1/oee", headers=_bearer(_token())), "from this client address")
    neighbour = TestClient(app, client=("10.9.9.10", 40000))
    assert neighbour.get("/sites/s1/oee", headers=_bearer(_token())).status_code == 200


def test_a_failing_storage_lets_requests_through_and_counts_them() -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    registry = CollectorRegistry()
    config = RateLimitConfig(per_token="1/minute", storage_url=f"redis://127.0.0.1:{port}/0")  # type: ignore[arg-type]
    client = _client(rate_limit=config, registry=registry)
    for _ in range(3):
        assert client.get("/sites/s1/oee", headers=_bearer(_token())).status_code == 200

    def errors(kind: str) -> float | None:
        return registry.get_sample_value("lineside_api_ratelimit_errors_total", {"kind": kind})

    assert errors("client") == 3
    assert errors("token") == 3


def test_security_can_be_built_from_parts() -> None:
    limiter = RateLimiter(_limited(per_token="1/minute"), registry=CollectorRegistry())
    security = ApiSecurity(TokenVerifier(HS), limiter)
    client = TestClient(_app(security))
    headers = _bearer(_token())
    assert client.get("/sites/s1/oee", headers=headers).status_code == 200
    _assert_429(client.get("/sites/s1/oee", headers=headers), "for this token")


def test_no_response_ever_contains_the_secret() -> None:
    client = _client(rate_limit=_limited(per_client="5/minute"))
    requests: list[Callable[[], Any]] = [
        lambda: client.get("/sites/s1/oee", headers=_bearer(SECRET)),
        lambda: client.get("/sites/s1/oee", headers={"Authorization": f"Basic {SECRET}"}),
        lambda: client.get("/sites/s2/oee", headers=_bearer(_token())),
        lambda: client.get("/sites/s1/oee", headers=_bearer(_token(exp=NOW - 99_999))),
        lambda: client.get("/sites/s1/oee", headers=_bearer(_token(role="x"))),
        lambda: client.get("/sites/s1/oee", headers=_bearer(_token())),
    ]
    for request in requests:
        response = request()
        assert response.status_code in (401, 403, 429)
        assert SECRET not in response.text
        assert SECRET not in str(response.headers)


def test_expiry_is_checked_at_request_time() -> None:
    short = create_token(
        HS,
        subject="a",
        role=Role.VIEWER,
        sites=["s1"],
        ttl_s=60,
        now=datetime.now(UTC) - timedelta(seconds=120),
    )
    response = _client().get("/sites/s1/oee", headers=_bearer(short))
    assert response.status_code == 401
    assert response.json()["detail"] == "token expired"
