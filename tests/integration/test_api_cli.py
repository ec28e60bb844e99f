"""``oee-collector token create``, ``serve`` and ``oee`` as real subprocesses of the
virtualenv's ``oee-collector``, against real PostgreSQL and the API over HTTP."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import httpx
import jwt
import psycopg
import pytest
from _api_helpers import SECRET, local, machine, poll, running_api, store_shift
from _pg_helpers import free_port, migrated_database

from collector.api.auth import Role, create_token
from collector.api.auth_config import AuthConfig

pytestmark = pytest.mark.integration

CLI = str(Path(sys.executable).parent / "oee-collector")
DAY = date(2026, 11, 17)
LINE = "s1/assembly/line1"
MASTERDATA = """\
calendars:
  early-only:
    timezone: Europe/Berlin
    shifts:
      - {name: early, days: mon-fri, start: "06:00", end: "14:00",
         breaks: [{start: "10:00", end: "10:30"}]}
assign:
  - {calendar: early-only}
products:
  bracket-a: {ideal_cycle_time_s: 2.0}
"""


@dataclass
class Setup:
    database_url: str
    config: Path
    """api.auth with the HS256 secret from a credential file."""
    no_auth_config: Path
    masterdata: Path
    port: int


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    root = tmp_path_factory.mktemp("api-cli")
    credentials = root / "credentials"
    credentials.mkdir()
    (credentials / "api-hs256-secret").write_text(SECRET)
    (root / "masterdata.yaml").write_text(MASTERDATA)
    port = free_port()
    config = root / "collector.yaml"
    config.write_text(
        f"credentials_dir: {credentials}\n"
        "masterdata_file: masterdata.yaml\n"
        "api:\n"
        f"  listen: 127.0.0.1:{port}\n"
        "  auth:\n"
        "    hs256_secret: ${credential:api-hs256-secret}\n"
    )
    no_auth = root / "no-auth.yaml"
    no_auth.write_text(f"api:\n  listen: 127.0.0.1:{port}\n")
    with migrated_database("api_cli") as url, psycopg.connect(url, autocommit=True) as conn:
        store_shift(
            conn,
            machine(f"{LINE}/m1"),
            DAY,
            run_start="05:40",
            states=[("06:00", "running"), ("08:00", "unplanned_stop", 3), ("08:40", "running")],
            counts=[("09:00", 1200, 30), ("14:00", 9000, 270)],
        )
        store_shift(
            conn,
            machine(f"{LINE}/m2"),
            DAY,
            run_start="05:40",
            states=[("06:00", "running"), ("11:00", "blocked"), ("12:30", "running")],
            counts=[("14:00", 10000, 800)],
        )
        yield Setup(url, config, no_auth, root / "masterdata.yaml", port)


def cli(*args: str | Path, timeout_s: float = 30) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}  # rich: one table row per line, nothing cut
    return subprocess.run(
        [CLI, *map(str, args)], capture_output=True, text=True, timeout=timeout_s, env=env
    )


def test_token_create_prints_a_token_the_api_accepts(setup: Setup) -> None:
    done = cli("token", "create", setup.config, "--role", "viewer", "--site", "s1", "--ttl", "1h")
    assert done.returncode == 0, done.stderr
    token = done.stdout.strip()
    assert done.stdout == token + "\n"  # the token alone: TOKEN=$(oee-collector token create)
    assert "role viewer, sites s1" in done.stderr
    assert SECRET not in done.stdout + done.stderr
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == 3600
    assert (claims["role"], claims["sites"]) == ("viewer", ["s1"])

    with running_api(setup.database_url, setup.masterdata) as api, api.client(token) as client:
        tree = client.get("/api/v1/equipment")
        assert tree.status_code == 200, tree.text
        assert [s["id"] for s in tree.json()["sites"]] == ["s1"]
        assert client.get("/api/v1/dead-letters").status_code == 403  # a viewer's token


def test_serve_answers_and_exits_cleanly_on_sigterm(setup: Setup) -> None:
    base = f"http://127.0.0.1:{setup.port}"
    process = subprocess.Popen(
        [CLI, "serve", str(setup.config), "--dsn", setup.database_url, "--log-level", "debug"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:

        def ready() -> httpx.Response | None:
            if process.poll() is not None:
                raise AssertionError(f"serve exited with {process.returncode}")
            try:
                answer = httpx.get(base + "/readyz", timeout=2)
            except httpx.TransportError:
                return None
            return answer

        answer = poll(ready, 20, "oee-collector serve to answer /readyz")
        assert answer.status_code == 200
        assert answer.json() == {"status": "ok"}
        # the secret came from the credential file: tokens signed with it are accepted
        auth = AuthConfig.model_validate({"hs256_secret": SECRET})
        token = create_token(auth, subject="cli-test", role=Role.VIEWER, sites=["s1"], ttl_s=600)
        equipment = httpx.get(
            base + "/api/v1/equipment", headers={"Authorization": f"Bearer {token}"}
        )
        assert equipment.status_code == 200, equipment.text

        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert "Application shutdown complete" in stderr  # drained, lifespan closed the pool
    assert SECRET not in stderr
    assert token not in stderr
    assert process.returncode == 0, stderr[-2000:]


def test_oee_command_prints_the_same_oee_as_the_api(setup: Setup) -> None:
    start, end = local(DAY, "06:00").isoformat(), local(DAY, "14:00").isoformat()
    with running_api(setup.database_url, setup.masterdata) as api, api.client(api.token()) as c:
        answer = c.get(
            "/api/v1/oee", params={"scope": "line", "id": LINE, "start": start, "end": end}
        )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    expected = {f"line {LINE}": body["total"]["oee"]} | {
        e["id"]: e["oee"] for e in body["by_equipment"]
    }

    done = cli(
        "oee", setup.config, "--dsn", setup.database_url, "--line", LINE, "--start", start,
        "--end", end,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    rows = {}
    for line in done.stdout.splitlines():
        cells = [cell.strip() for cell in line.split("│")]
        if len(cells) > 5 and cells[1] in expected:
            rows[cells[1]] = cells[5]  # scope, A, P, Q, OEE
    assert rows == {scope: f"{oee:.1%}" for scope, oee in expected.items()}, done.stdout
    assert len(set(rows.values())) == 3, "the two machines and the line should differ"


def test_serve_without_api_auth_exits_non_zero_naming_it(setup: Setup) -> None:
    done = cli("serve", setup.no_auth_config, "--dsn", setup.database_url)
    assert done.returncode != 0
    assert "api.auth" in done.stderr
    with pytest.raises(httpx.TransportError):  # it never listened
        httpx.get(f"http://127.0.0.1:{setup.port}/healthz", timeout=1)
