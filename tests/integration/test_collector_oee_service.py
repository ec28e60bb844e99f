"""``oee-collector run`` with the OEE parts switched on: it computes past days' OEE hours
in the background and serves the API in the same process (api.serve_with_ingest)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import _oee_dataset as dataset
import httpx
import psycopg
import pytest
from _collector_helpers import collector_config, running_collector, wait_until
from _mosquitto import Mosquitto
from _pg_helpers import free_port, migrated_database

from collector.api.auth import Role, create_token
from collector.api.auth_config import AuthConfig

pytestmark = pytest.mark.integration

SECRET = "s" * 40
LINE = f"{dataset.SITE}/{dataset.AREA}/line-1"


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    with Mosquitto(tmp_path / "mosquitto") as started:
        yield started


def test_run_computes_oee_hours_and_serves_the_api(broker: Mosquitto, tmp_path: Path) -> None:
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    masterdata = tmp_path / "masterdata.yaml"
    masterdata.write_text(dataset.MASTERDATA_YAML)
    port = free_port()
    with migrated_database("oee_service") as url:
        with psycopg.connect(url, autocommit=True) as conn:
            dataset.load(conn, 2, today - timedelta(days=2), today + timedelta(minutes=30))
        config = collector_config(
            broker.port,
            api={
                "listen": f"127.0.0.1:{port}",
                "serve_with_ingest": True,
                "auth": {"hs256_secret": SECRET},
            },
            oee_hours={"interval_s": 5},
        ).model_copy(update={"masterdata_file": masterdata})
        token = create_token(
            AuthConfig(hs256_secret=SECRET), subject="t", role=Role.VIEWER, sites=["*"], ttl_s=600
        )
        with running_collector(config, url), psycopg.connect(url, autocommit=True) as conn:

            def computed_days() -> int:
                return conn.execute("SELECT count(*) FROM lineside.oee_days").fetchone()[0]

            # two machines x the two past days (today is never stored)
            wait_until(lambda: computed_days() == 4, 30, "the collector to compute OEE hours")
            answer = httpx.get(
                f"http://127.0.0.1:{port}/api/v1/oee",
                params={
                    "scope": "line",
                    "id": LINE,
                    "start": (today - timedelta(days=2)).isoformat(),
                    "end": today.isoformat(),
                },
                headers={"Authorization": f"Bearer {token}"},
                timeout=10,
            )
            assert answer.status_code == 200, answer.text
            body = answer.json()
            assert body["equipment"] == [f"{LINE}/m-01", f"{LINE}/m-02"]
            assert 0 < body["total"]["oee"] < 1
            assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200
