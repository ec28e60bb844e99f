"""``edge-agent status``: ask the running agent's health endpoint how it is doing.

Exit codes: 0 ready, 1 running but not ready, 2 no agent answering at ``--url``.
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

if TYPE_CHECKING:
    import httpx

DEFAULT_URL = "http://127.0.0.1:9108"
EXIT_READY, EXIT_NOT_READY, EXIT_UNREACHABLE = 0, 1, 2

app = typer.Typer(add_completion=False)


class _Unreachable(Exception):
    """No edge-agent health endpoint answers at the URL (the message says what to check)."""


@app.command()
def status(
    url: Annotated[
        str, typer.Option(help="The agent's health endpoint (config key health.listen)")
    ] = DEFAULT_URL,
    as_json: Annotated[bool, typer.Option("--json", help="Print the raw /status JSON")] = False,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for an answer")] = 5.0,
) -> None:
    """Show the running agent's devices, buffer and forwarder; exit 0 when ready."""
    out = Console(soft_wrap=True)
    err = Console(stderr=True, soft_wrap=True)
    import httpx  # here, not at import: `edge-agent run` shares this module's CLI

    base = url.rstrip("/")
    try:
        with httpx.Client(base_url=base, timeout=timeout) as client:
            agent_status = _get_json(client, "/status", base)
            verdict = _get_json(client, "/readyz", base)
    except _Unreachable as exc:
        err.print(str(exc), markup=False, highlight=False)
        raise typer.Exit(EXIT_UNREACHABLE) from None
    ready = bool(verdict.get("ready"))
    if as_json:
        sys.stdout.write(json.dumps(agent_status, indent=2) + "\n")
    else:
        print_status(out, agent_status, verdict)
    raise typer.Exit(EXIT_READY if ready else EXIT_NOT_READY)


def print_status(out: Console, status: dict[str, Any], verdict: dict[str, Any]) -> None:
    """Print the agent line, then device, buffer and forwarder tables, then readiness."""
    if "agent_id" in status:
        out.print(
            f"agent {status['agent_id']}  version {status.get('version', '-')}  "
            f"config {status.get('config_hash', '-')}  started {status.get('started_at', '-')}",
            markup=False,
            highlight=False,
        )
        out.print(_devices_table(status.get("devices") or []))
        if status.get("buffer"):
            out.print(_buffer_table(status["buffer"]))
        if status.get("forwarder"):
            out.print(_forwarder_table(status["forwarder"]))
    elif "error" in status:
        out.print(f"status: {status['error']}", markup=False, highlight=False)
    if verdict.get("ready"):
        out.print("[green]ready[/green]")
    else:
        out.print("[red]not ready[/red]")
        for reason in verdict.get("reasons") or []:
            out.print(f"  - {reason}", markup=False, highlight=False)


def _get_json(client: httpx.Client, path: str, base: str) -> dict[str, Any]:
    import httpx

    where = base.split("://", 1)[-1]
    try:
        response = client.get(path)
    except httpx.TransportError as exc:
        raise _Unreachable(
            f"no agent answering on {where}: is edge-agent running? "
            f"systemctl status edge-agent ({type(exc).__name__})"
        ) from None
    try:
        body = response.json()
    except ValueError:
        body = None
    # /status answers 503 and /readyz 503 with JSON bodies; anything else is not ours.
    if response.status_code not in (200, 503) or not isinstance(body, dict):
        raise _Unreachable(
            f"{where}{path} answered HTTP {response.status_code} without agent JSON: "
            "is --url the edge-agent's health.listen address?"
        )
    return body


def _devices_table(devices: list[dict[str, Any]]) -> Table:
    table = Table(title="devices", title_justify="left")
    for column in ("connection", "device", "protocol", "link", "breaker"):
        table.add_column(column)
    for column in ("rtt ms", "errors", "values"):
        table.add_column(column, justify="right")
    table.add_column("last error")
    for device in devices:
        rtt = device.get("last_round_trip_s")
        table.add_row(
            str(device.get("connection")),
            str(device.get("device")),
            str(device.get("protocol")),
            "[green]up[/green]" if device.get("connected") else "[red]down[/red]",
            _breaker(device.get("breaker")),
            "-" if rtt is None else f"{rtt * 1000:.1f}",
            str(device.get("read_errors_total", 0)),
            str(device.get("values_total", 0)),
            _plain(device.get("last_error")),
        )
    return table


def _buffer_table(buffer: dict[str, Any]) -> Table:
    dropped = buffer.get("dropped_events_total") or {}
    max_bytes = buffer.get("max_bytes") or 0
    used = f" ({100 * buffer.get('bytes', 0) / max_bytes:.0f}%)" if max_bytes else ""
    return _pairs(
        "buffer",
        [
            ("path", _plain(buffer.get("path"))),
            ("durability", buffer.get("durability")),
            ("accepting", "yes" if buffer.get("accepting") else "[red]NO[/red]"),
            ("depth", f"{buffer.get('depth_events', 0)} events"),
            ("size", f"{_mib(buffer.get('bytes'))} of {_mib(max_bytes)}{used}"),
            ("oldest", _age(buffer.get("oldest_age_s"))),
            ("captured", buffer.get("captured_events_total")),
            ("dropped", ", ".join(f"{k} {v}" for k, v in sorted(dropped.items()) if v) or "0"),
            ("commits", buffer.get("commits_total")),
            ("quarantined files", buffer.get("quarantined_files_total")),
        ],
    )


def _forwarder_table(forwarder: dict[str, Any]) -> Table:
    return _pairs(
        "forwarder",
        [
            ("broker", _plain(forwarder.get("broker"))),
            ("connected", "yes" if forwarder.get("connected") else "[red]no[/red]"),
            ("breaker", _breaker(forwarder.get("breaker"))),
            ("ack mode", forwarder.get("ack_mode")),
            ("published", f"{forwarder.get('published_events_total', 0)} events"),
            ("confirmed", f"{forwarder.get('confirmed_events_total', 0)} events"),
            (
                "resent / rejected",
                f"{forwarder.get('resent_batches_total', 0)} / "
                f"{forwarder.get('rejected_batches_total', 0)} batches",
            ),
            ("inflight", f"{forwarder.get('inflight_batches', 0)} batches"),
            ("backlog", f"{forwarder.get('backlog_events', 0)} events"),
            ("last confirmation", _age(forwarder.get("last_confirmation_age_s"), " ago")),
            ("last error", _plain(forwarder.get("last_error"))),
        ],
    )


def _pairs(title: str, rows: list[tuple[str, Any]]) -> Table:
    table = Table(title=title, title_justify="left", show_header=False)
    table.add_column("key")
    table.add_column("value")
    for key, value in rows:
        table.add_row(key, "-" if value is None else str(value))
    return table


def _breaker(state: object) -> str:
    return {"open": "[red]open[/red]", "half-open": "[yellow]half-open[/yellow]"}.get(
        str(state), str(state)
    )


def _plain(text: object) -> str:
    """Text from the agent, escaped so that rich does not read [brackets] as markup."""
    return "-" if text is None else escape(str(text))


def _age(seconds: object, suffix: str = "") -> str:
    if not isinstance(seconds, int | float):
        return "-"
    if seconds < 120:
        return f"{seconds:.1f} s{suffix}"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min{suffix}"
    return f"{seconds / 3600:.1f} h{suffix}"


def _mib(size: object) -> str:
    return f"{size / 2**20:.1f} MiB" if isinstance(size, int | float) else "-"
