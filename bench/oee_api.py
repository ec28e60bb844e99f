"""Benchmark: OEE answers from a month of production of 20 machines (issue 6 targets).

1. Loads ``--machines`` machines x ``--days`` days (>= 1M events with the defaults)
   through the store's write path into a fresh database, then computes the OEE hours of
   the past days (what ``oee-collector run`` does in the background).
2. Uncached, in process: ``oee_report`` for random windows of 1 hour to ``--days`` days,
   one machine and one line (5 machines), buckets none/shift/day; p50/p95/max; with the
   stored hours and from the facts alone.
3. Over HTTP: ``oee-collector serve`` in its own process(es): uncached latency with the
   cache off; cached latency (sequential, from this process); ``wrk`` (another process)
   for requests/s against cached OEE URLs, with 1 and 2 API workers.

    ./lineside bench oee_api
    ./lineside bench oee_api --machines 4 --days 3 --samples 50   # a quick look
"""

from __future__ import annotations

import argparse
import os
import random
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "tests" / "integration"))

import _oee_dataset as dataset  # noqa: E402  (tests/integration)
import httpx  # noqa: E402
import psycopg  # noqa: E402
from _pg_helpers import migrated_database  # noqa: E402

from collector.api.auth import Role, create_token  # noqa: E402
from collector.api.auth_config import AuthConfig  # noqa: E402
from collector.masterdata import MasterData, parse_masterdata  # noqa: E402
from collector.queries import Bucket, OeeRequest, Scope, oee_report  # noqa: E402
from collector.queries.materialize import materialize_stale_days  # noqa: E402


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def summary(name: str, ms: list[float]) -> None:
    print(
        f"  {name:<34} n={len(ms):<4} p50={pct(ms, 0.5):7.1f} ms  p95={pct(ms, 0.95):7.1f} ms  "
        f"max={max(ms):7.1f} ms"
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def random_requests(
    rng: random.Random, n: int, start: datetime, end: datetime, machines: int, days: int
) -> list[OeeRequest]:
    lines = max(1, machines // 5)
    out = []
    for i in range(n):
        length = timedelta(seconds=rng.uniform(3600, days * 86400))
        w_start = start + timedelta(seconds=rng.uniform(0, (end - start - length).total_seconds()))
        w_start = w_start.replace(microsecond=0)
        line = rng.randrange(lines) + 1
        if i % 2:
            scope, ident = Scope.LINE, f"{dataset.SITE}/{dataset.AREA}/line-{line}"
        else:
            m = rng.randrange(min(5, machines)) + (line - 1) * 5 + 1
            scope, ident = Scope.EQUIPMENT, f"{dataset.SITE}/{dataset.AREA}/line-{line}/m-{m:02d}"
        bucket = (Bucket.NONE, Bucket.SHIFT, Bucket.DAY)[rng.randrange(3)]
        out.append(OeeRequest(scope, ident, w_start, w_start + length, bucket))
    return out


def url_of(base: str, r: OeeRequest) -> str:
    q = httpx.QueryParams(
        scope=r.scope.value,
        id=r.ident,
        start=r.start.isoformat(),
        end=r.end.isoformat(),
        bucket=r.bucket.value,
    )
    return f"{base}/api/v1/oee?{q}"


def start_api(dsn: str, workdir: Path, secret: str, workers: int, cache: str) -> tuple:
    port = free_port()
    config = workdir / f"collector-{workers}-{cache}.yaml"
    config.write_text(
        f"masterdata_file: masterdata.yaml\n"
        f"api:\n  listen: 127.0.0.1:{port}\n  workers: {workers}\n  pool_size: 4\n"
        f"  auth: {{hs256_secret: '${{BENCH_SECRET}}'}}\n"
        f"  rate_limit: {{enabled: false}}\n  cache: {{backend: {cache}}}\n"
    )
    env = {**os.environ, "BENCH_SECRET": secret, "LINESIDE_DATABASE_URL": dsn}
    proc = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "oee-collector"),
            "serve",
            str(config),
            "--log-level",
            "warning",
        ],
        env=env,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(base + "/readyz", timeout=1).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise SystemExit("the API did not become ready within 30 s")


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()


def wrk(base: str, urls: list[str], token: str, workdir: Path, seconds: int) -> str:
    script = workdir / "urls.lua"
    paths = [u[len(base) :] for u in urls]
    script.write_text(
        "paths = {" + ",".join(f'"{p}"' for p in paths) + "}\n"
        "i = 0\n"
        "request = function()\n  i = i + 1\n"
        "  return wrk.format('GET', paths[(i % #paths) + 1])\nend\n"
    )
    out = subprocess.run(
        [
            "wrk",
            "-t2",
            "-c32",
            f"-d{seconds}s",
            "--latency",
            "-s",
            str(script),
            "-H",
            f"Authorization: Bearer {token}",
            base,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    keep = ("Requests/sec", "50%", "99%", "Non-2xx", "requests in", "Socket errors")
    return "\n".join(
        "    " + line.strip()
        for line in out.splitlines()
        if line.strip().startswith(keep) or any(k in line for k in keep[3:])
    )


def time_reports(
    conn: psycopg.Connection,
    md: MasterData,
    requests: list[OeeRequest],
    start: datetime,
    end: datetime,
    days: int,
) -> dict[str, list[float]]:
    """Milliseconds of oee_report per request kind (no answer cache anywhere)."""
    oee_report(conn, md, requests[0])  # warm up
    timings: dict[str, list[float]] = {}
    for r in requests:
        t = time.perf_counter()
        oee_report(conn, md, r)
        ms = (time.perf_counter() - t) * 1000
        timings.setdefault(f"{r.scope.value} (all)", []).append(ms)
        timings.setdefault(f"{r.scope.value} bucket={r.bucket.value}", []).append(ms)
    for scope in ("equipment", "line"):
        for r in [r for r in requests if r.scope.value == scope][:10]:
            for bucket in (Bucket.NONE, Bucket.SHIFT, Bucket.DAY):
                whole = OeeRequest(r.scope, r.ident, start, end, bucket)
                t = time.perf_counter()
                oee_report(conn, md, whole)
                timings.setdefault(f"{scope} last {days} d bucket={bucket}", []).append(
                    (time.perf_counter() - t) * 1000
                )
    return timings


def in_process(dsn: str, args: argparse.Namespace, start: datetime, end: datetime) -> list:
    """Load the dataset, compute the OEE hours of the past days (what `oee-collector
    run` does in the background), then time oee_report (SQL + engine) without any
    answer cache: with the stored hours, and from the facts alone."""
    rng = random.Random(7)
    with psycopg.connect(dsn, autocommit=True) as conn:
        t0 = time.perf_counter()
        events = dataset.load(conn, args.machines, start, end)
        load_s = time.perf_counter() - t0
        conn.execute("VACUUM ANALYZE")
        conn.execute("SET jit = off")  # as the API's pool does
        print(
            f"dataset: {events:,} events, {args.machines} machines x {args.days} days "
            f"(to {end.isoformat()}), written in {load_s:.0f} s"
        )
        md = parse_masterdata(dataset.MASTERDATA_YAML, "masterdata.yaml")
        t0 = time.perf_counter()
        days = materialize_stale_days(conn, md, days_back=args.days + 2, limit=1_000_000)
        print(f"OEE hours computed for {days} equipment-days in {time.perf_counter() - t0:.1f} s")
        conn.execute("VACUUM ANALYZE")
        requests = random_requests(rng, args.samples, start, end, args.machines, args.days)
        for label, masterdata in (
            ("with the stored OEE hours (as served)", md),
            ("from the facts alone (no stored hours)", replace(md, fingerprint="facts-only")),
        ):
            timings = time_reports(conn, masterdata, requests, start, end, args.days)
            print(f"uncached oee_report {label}; random windows 1 h..{args.days} d:")
            for name in sorted(timings):
                summary(name, timings[name])
    return requests


def over_http(dsn: str, requests: list, workdir: Path, args: argparse.Namespace) -> None:
    """`oee-collector serve` in its own process(es): uncached latency (cache off),
    cached latency (sequential, this process) and wrk throughput over cached URLs."""
    secret = secrets.token_urlsafe(48)
    auth = AuthConfig(hs256_secret=secret)
    token = create_token(auth, subject="bench", role=Role.VIEWER, sites=["*"], ttl_s=3600)
    headers = {"Authorization": f"Bearer {token}"}
    proc, base = start_api(dsn, workdir, secret, 1, "off")
    try:
        with httpx.Client(headers=headers, timeout=30) as client:
            uncached = []
            for r in requests:
                t = time.perf_counter()
                resp = client.get(url_of(base, r))
                uncached.append((time.perf_counter() - t) * 1000)
                assert resp.status_code == 200, resp.text
        print("API, 1 worker, cache off (every answer computed, stored OEE hours used):")
        summary("uncached GET /api/v1/oee (sequential)", uncached)
    finally:
        stop(proc)
    for workers in (1, 2):
        proc, base = start_api(dsn, workdir, secret, workers, "memory")
        try:
            urls = [url_of(base, r) for r in requests[:50]]
            with httpx.Client(headers=headers, timeout=30) as client:
                for u in urls:  # fill the cache (of every worker)
                    for _ in range(workers * 3):
                        assert client.get(u).status_code == 200
                cached = []
                for i in range(500):
                    t = time.perf_counter()
                    resp = client.get(urls[i % len(urls)])
                    cached.append((time.perf_counter() - t) * 1000)
                    assert resp.status_code == 200
                    assert resp.headers["x-cache"] == "hit"
            print(f"API, {workers} worker(s), memory cache:")
            summary("cached GET /api/v1/oee (sequential)", cached)
            print(f"  wrk -t2 -c32 -d{args.wrk_seconds}s over 50 cached OEE URLs:")
            print(wrk(base, urls, token, workdir, args.wrk_seconds))
        finally:
            stop(proc)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--machines", type=int, default=20)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--wrk-seconds", type=int, default=15)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is needed for the throughput part: apt-get install wrk")
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    start = end - timedelta(days=args.days)
    print(f"machine: {os.cpu_count()} cores; {datetime.now(UTC).isoformat(timespec='seconds')}")
    with migrated_database("lineside_bench_oee") as dsn, tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        (workdir / "masterdata.yaml").write_text(dataset.MASTERDATA_YAML)
        requests = in_process(dsn, args, start, end)
        over_http(dsn, requests, workdir, args)


if __name__ == "__main__":
    main()
