"""``oee-collector oee``: the API's OEE numbers as a table in the terminal."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from collector.cli_common import ConfigArg, DsnOption, connect_or_exit, load_or_exit
from collector.masterdata import MasterData, load_masterdata
from collector.oee import OeeResult, Ratio
from collector.queries import OeeReport, OeeRequest, QueryError, Scope, oee_report
from collector.queries.oee import Bucket
from collector.queries.scope import equipment_in_scope
from collector.queries.shifts import shift_window
from lineside_common.yamlconfig import ConfigFileError

err = Console(stderr=True, soft_wrap=True)
EXIT_USAGE = 2


def _pct(ratio: Ratio) -> str:
    return "—" if ratio.value is None else f"{float(ratio.value):.1%}"


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:.2f} h"


def _row(table: Table, name: str, result: OeeResult, style: str | None = None) -> None:
    t = result.to_dict()["times_s"]
    c = result.components
    table.add_row(
        name,
        _pct(result.availability),
        _pct(result.performance),
        _pct(result.quality),
        _pct(result.oee),
        f"{c.good}",
        f"{c.scrap}",
        _hours(t["planned_busy_time"]),
        _hours(t["downtime"]),
        ", ".join(sorted(result.flag_codes())) or "",
        style=style,
    )


def render_report(report: OeeReport, title: str) -> Table:
    """One row per equipment and a bold total row."""
    table = Table(title=title, title_justify="left")
    for column in ("scope", "A", "P", "Q", "OEE", "good", "scrap", "PBT", "down", "flags"):
        table.add_column(column, justify="left" if column in ("scope", "flags") else "right")
    for ref, result in report.by_equipment:
        _row(table, ref.key, result)
    if len(report.by_equipment) > 1 or report.request.scope is not Scope.EQUIPMENT:
        _row(table, f"{report.request.scope.value} {report.request.ident}", report.total, "bold")
    return table


def oee_command(
    config: ConfigArg = None,
    dsn: DsnOption = None,
    line: Annotated[str | None, typer.Option(help="site/area/line")] = None,
    equipment: Annotated[str | None, typer.Option(help="site/area/line/equipment")] = None,
    area: Annotated[str | None, typer.Option(help="site/area")] = None,
    site: Annotated[str | None, typer.Option(help="site")] = None,
    shift: Annotated[
        str | None, typer.Option(help="current or previous (the scope's shift calendar)")
    ] = None,
    start: Annotated[datetime | None, typer.Option(help="window start (ISO 8601)")] = None,
    end: Annotated[datetime | None, typer.Option(help="window end (default now)")] = None,
) -> None:
    """OEE of a scope for the current or previous shift or a window, as a table (the
    same numbers as GET /api/v1/oee)."""
    chosen = [
        (s, v)
        for s, v in (
            (Scope.LINE, line),
            (Scope.EQUIPMENT, equipment),
            (Scope.AREA, area),
            (Scope.SITE, site),
        )
        if v
    ]
    if len(chosen) != 1:
        err.print("oee-collector oee: give exactly one of --line, --equipment, --area, --site")
        raise typer.Exit(EXIT_USAGE)
    scope, ident = chosen[0]
    if (shift is None) == (start is None):
        err.print("oee-collector oee: give either --shift current|previous or --start")
        raise typer.Exit(EXIT_USAGE)
    if shift is not None and shift not in ("current", "previous"):
        err.print(f"oee-collector oee: --shift is current or previous, not {shift!r}")
        raise typer.Exit(EXIT_USAGE)
    loaded = load_or_exit(config)
    try:
        masterdata = (
            MasterData.empty()
            if loaded.masterdata_file is None
            else load_masterdata(loaded.masterdata_file)
        )
    except ConfigFileError as exc:
        err.print(exc.report(str(loaded.masterdata_file)), highlight=False, markup=False)
        raise typer.Exit(EXIT_USAGE) from None
    now = datetime.now(UTC).replace(microsecond=0)
    with connect_or_exit(loaded, dsn) as conn:
        conn.execute("SET jit = off")  # short window queries (see collector.api.app)
        try:
            if shift is not None:
                refs = equipment_in_scope(conn, scope, ident)
                w_start, w_end, label = shift_window(masterdata, refs, shift, now)
            else:
                assert start is not None
                w_start = start if start.tzinfo else start.astimezone()
                w_end = (end if end is None or end.tzinfo else end.astimezone()) or now
                label = "window"
            report = oee_report(
                conn, masterdata, OeeRequest(scope, ident, w_start, w_end, Bucket.NONE), now
            )
        except QueryError as exc:
            err.print(f"oee-collector oee: {exc}", highlight=False, markup=False)
            raise typer.Exit(EXIT_USAGE) from None
    title = (
        f"OEE {scope.value} {ident} — {label}: {report.request.start.isoformat()} .. "
        f"{report.end.isoformat()} (as of {report.as_of.isoformat()})"
    )
    # made here, not at import: the width comes from the terminal (or $COLUMNS) of this call
    Console(soft_wrap=True).print(render_report(report, title))
