"""The API's access rules over real HTTP: refused tokens, roles, sites, open health
endpoints, rate limits, and no secret or token in the server's log output."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
import jwt
import psycopg
import pytest
from _api_helpers import SECRET, ApiServer, local, machine, running_api, store_shift
from _pg_helpers import migrated_database

from collector.api.auth import Role
from collector.api.auth_config import AuthConfig

pytestmark = pytest.mark.integration

DAY = date(2026, 11, 17)
S1_LINE = "s1/assembly/line1"
S2_MACHINE = "s2/paint/line9/p1"
WINDOW = {"start": local(DAY, "06:00").isoformat(), "end": local(DAY, "14:00").isoformat()}
OEE_S1 = {"scope": "line", "id": S1_LINE, **WINDOW}


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A database with one machine in site s1 and one in s2, and empty master data."""
    masterdata = tmp_path_factory.mktemp("api-auth") / "masterdata.yaml"
    masterdata.write_text("products:\n  bracket-a: {ideal_cycle_time_s: 2.0}\n")
    with migrated_database("api_auth") as url, psycopg.connect(url, autocommit=True) as conn:
        store_shift(conn, machine(f"{S1_LINE}/m1"), DAY, states=[("06:00", "running")])
        store_shift(conn, machine(S2_MACHINE), DAY, states=[("06:00", "running")])
        yield url, masterdata


@pytest.fixture(scope="module")
def api(shop: tuple[str, Path]) -> Iterator[ApiServer]:
    """Rate limits off: this server checks tokens, roles and sites only."""
    url, masterdata = shop
    with running_api(url, masterdata, rate_limit={"enabled": False}) as server:
        yield server


def auth_config(**changes: str) -> AuthConfig:
    """The servers' auth settings (HS256 with SECRET) with some changed."""
    return AuthConfig.model_validate({"hs256_secret": SECRET, **changes})


def forged(api: ApiServer, how: str) -> str | None:
    """A token that must be refused, or None for no token at all."""
    if how == "none":
        return None
    if how == "expired":
        # issued 2 h ago for 1 h: an hour past exp, far beyond the 30 s leeway
        return api.token(ttl_s=3600, now=datetime.now(UTC) - timedelta(hours=2))
    if how == "wrong-issuer":
        return api.token(auth=auth_config(issuer="somebody-else"))
    if how == "wrong-audience":
        return api.token(auth=auth_config(audience="another-api"))
    if how == "wrong-signature":
        return api.token(auth=auth_config(hs256_secret="another-secret-" + "x" * 40))
    if how == "unsigned":
        claims = jwt.decode(api.token(), options={"verify_signature": False})
        return jwt.encode(claims, key=None, algorithm="none")  # type: ignore[arg-type]
    raise AssertionError(how)


@pytest.mark.parametrize(
    ("how", "detail"),
    [
        ("none", "no bearer token"),
        ("expired", "token expired"),
        ("wrong-issuer", "issuer 'somebody-else'"),
        ("wrong-audience", "audience 'another-api'"),
        ("wrong-signature", "signature is invalid"),
        ("unsigned", "algorithm 'none' is not accepted"),
    ],
)
def test_refused_tokens_get_401_with_a_bearer_challenge(
    api: ApiServer, how: str, detail: str
) -> None:
    with api.client(forged(api, how)) as client:
        answer = client.get("/api/v1/oee", params=OEE_S1)
    assert answer.status_code == 401, answer.text
    assert answer.headers["WWW-Authenticate"].startswith("Bearer")
    assert detail in answer.json()["detail"]
    assert SECRET not in answer.text


def test_a_header_that_is_not_bearer_gets_401(api: ApiServer) -> None:
    answer = httpx.get(
        f"{api.base_url}/api/v1/equipment", headers={"Authorization": f"Basic {api.token()}"}
    )
    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'
    assert answer.json()["detail"] == "Authorization header is not 'Bearer <token>'"


@pytest.mark.parametrize(
    ("role", "method", "path", "status"),
    [
        (Role.VIEWER, "GET", "/api/v1/equipment", 200),
        (Role.VIEWER, "GET", "/api/v1/oee", 200),
        (Role.VIEWER, "GET", "/api/v1/dead-letters", 403),
        (Role.VIEWER, "GET", "/api/v1/masterdata", 403),
        (Role.VIEWER, "POST", "/api/v1/masterdata/reload", 403),
        (Role.ENGINEER, "GET", "/api/v1/oee", 200),
        (Role.ENGINEER, "GET", "/api/v1/dead-letters", 200),
        (Role.ENGINEER, "GET", "/api/v1/masterdata", 200),
        (Role.ENGINEER, "POST", "/api/v1/masterdata/reload", 403),
        (Role.ADMIN, "GET", "/api/v1/oee", 200),
        (Role.ADMIN, "GET", "/api/v1/dead-letters", 200),
        (Role.ADMIN, "POST", "/api/v1/masterdata/reload", 200),
    ],
)
def test_each_role_reaches_its_endpoints_and_no_more(
    api: ApiServer, role: Role, method: str, path: str, status: int
) -> None:
    params = OEE_S1 if path == "/api/v1/oee" else None
    with api.client(api.token(role, ["s1"])) as client:
        answer = client.request(method, path, params=params)
    assert answer.status_code == status, answer.text
    if status == 403:
        assert answer.json()["detail"] == f"role {role} may not call this endpoint (needs " + (
            "admin)" if "reload" in path else "engineer)"
        )
        assert "WWW-Authenticate" not in answer.headers


S2_READS = [
    ("/api/v1/oee", {"scope": "equipment", "id": S2_MACHINE, **WINDOW}),
    ("/api/v1/oee", {"scope": "site", "id": "s2", **WINDOW}),
    ("/api/v1/pareto", {"scope": "equipment", "id": S2_MACHINE, **WINDOW}),
    (f"/api/v1/equipment/{S2_MACHINE}/timeline", WINDOW),
    (f"/api/v1/equipment/{S2_MACHINE}/history", {"tag": "pressure", **WINDOW}),
]


@pytest.mark.parametrize(("path", "params"), S2_READS, ids=lambda v: str(v)[:40])
def test_another_sites_data_is_403_and_its_own_200(
    api: ApiServer, path: str, params: dict[str, str]
) -> None:
    with api.client(api.token(Role.ADMIN, ["s1"])) as s1_admin:
        refused = s1_admin.get(path, params=params)
    assert refused.status_code == 403, refused.text
    assert refused.json()["detail"] == "no access to site 's2'"
    with api.client(api.token(Role.VIEWER, ["s2"])) as s2_viewer:
        assert s2_viewer.get(path, params=params).status_code == 200
    with api.client(api.token(Role.VIEWER, ["*"])) as everywhere:
        assert everywhere.get(path, params=params).status_code == 200


def test_lists_show_only_the_tokens_sites(api: ApiServer) -> None:
    with api.client(api.token(Role.VIEWER, ["s2"])) as s2_viewer:
        tree = s2_viewer.get("/api/v1/equipment").json()
        states = s2_viewer.get("/api/v1/states/current").json()
    assert [site["id"] for site in tree["sites"]] == ["s2"]
    assert [row["id"] for row in states["equipment"]] == [S2_MACHINE]


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics"])
def test_health_endpoints_need_no_token(api: ApiServer, path: str) -> None:
    answer = httpx.get(api.base_url + path)
    assert answer.status_code == 200
    if path == "/metrics":
        assert "lineside_api_cache_lookups_total" in answer.text
    else:
        assert answer.json() == {"status": "ok"}


# ---- rate limits -----------------------------------------------------------------------


def retry_after(answer: httpx.Response) -> int:
    assert answer.status_code == 429, answer.text
    value = answer.headers["Retry-After"]
    assert value.isdigit(), value  # whole seconds (RFC 9110), not a float or a date
    return int(value)


def test_the_sixth_request_of_a_token_in_a_minute_gets_429(shop: tuple[str, Path]) -> None:
    url, masterdata = shop
    limits = {"per_token": "5/minute", "per_client": "1000/minute"}
    with running_api(url, masterdata, rate_limit=limits) as api:
        token = api.token()
        with api.client(token) as client:
            assert [client.get("/api/v1/equipment").status_code for _ in range(5)] == [200] * 5
            refused = client.get("/api/v1/equipment")
        assert 1 <= retry_after(refused) <= 60
        assert refused.json()["detail"].startswith("too many requests for this token")
        # per token: another token of the same client is still served
        with api.client(api.token()) as other:
            assert other.get("/api/v1/equipment").status_code == 200
        # health endpoints are not limited
        assert httpx.get(api.base_url + "/healthz").status_code == 200


def test_the_client_limit_counts_requests_without_a_token_too(shop: tuple[str, Path]) -> None:
    url, masterdata = shop
    limits = {"per_token": "1000/minute", "per_client": "5/minute"}
    with running_api(url, masterdata, rate_limit=limits) as api:
        with api.client() as anonymous:
            assert [anonymous.get("/api/v1/equipment").status_code for _ in range(5)] == [401] * 5
            refused = anonymous.get("/api/v1/equipment")
        assert 1 <= retry_after(refused) <= 60
        assert refused.json()["detail"].startswith("too many requests from this client address")
        # counted before the token is looked at: a valid token from the address waits too
        with api.client(api.token()) as client:
            retry_after(client.get("/api/v1/equipment"))


# ---- logs ------------------------------------------------------------------------------


def test_secret_and_tokens_never_reach_the_logs(
    shop: tuple[str, Path], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    # an earlier test in this process may have left uvicorn's loggers at its log level
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        caplog.set_level(logging.DEBUG, logger=name)
    url, masterdata = shop
    limits = {"per_token": "2/minute"}
    with running_api(url, masterdata, rate_limit=limits) as api:
        tokens = {
            "valid": api.token(Role.ADMIN, ["*"]),
            "expired": forged(api, "expired"),
            "bad-signature": forged(api, "wrong-signature"),
        }
        with api.client(tokens["valid"]) as client:
            for _ in range(3):  # the third is refused (429)
                client.get("/api/v1/oee", params=OEE_S1)
            client.post("/api/v1/masterdata/reload")
        for name in ("expired", "bad-signature"):
            with api.client(tokens[name]) as client:
                assert client.get("/api/v1/equipment").status_code == 401
    # the server's records (this process also holds the test's HTTP client: not ours)
    server = [r for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))]
    text = "\n".join(f"{r.name} {r.getMessage()} {r.args!r} {r.exc_text}" for r in server)
    # the capture works: uvicorn's start and stop are in it
    assert any(r.name.startswith("uvicorn") for r in server), text
    assert SECRET not in text
    for name, token in tokens.items():
        assert token is not None
        assert token not in text, name
        assert token.split(".")[2] not in text, name  # not even the signature part
