"""Load the master data file: every problem at once, as ``file:line:column: path: message``.

Two passes over one parsed document. The schema pass (pydantic) checks every value
where it is written. The cross-check pass looks at what needs several values (a break
inside its shift, a calendar named in ``assign``, duplicates) and builds the pure
calendar and settings objects. It validates each shift, exception, assignment and
product on its own, so its problems are reported even when a neighbour is wrong.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from datetime import time
from pathlib import Path
from typing import Annotated, Any, TypeVar, get_args, get_origin

from pydantic import BaseModel, ValidationError

from collector.masterdata.models import (
    STATE_NAMES,
    AssignModel,
    BreakModel,
    CalendarModel,
    ExceptionModel,
    MasterDataFile,
    OeeModel,
    ProductModel,
    ShiftModel,
)
from collector.masterdata.resolve import (
    MasterData,
    build_calendar,
    build_settings,
    resolve_masterdata,
)
from collector.oee.errors import CalendarError, OeeInputError
from collector.oee.inputs import OeeSettings, StateClass
from lineside_common.cli_parts import config_schema_text
from lineside_common.yamlconfig import (
    ConfigFileError,
    ConfigIssue,
    load_yaml,
    locate,
    located_issues,
    read_config_text,
)

UNKNOWN_KEY = "unknown key (check the spelling; see docs/masterdata.md for valid keys)"
SECTIONS = tuple(MasterDataFile.model_fields)
MESSAGES = {
    "extra_forbidden": UNKNOWN_KEY,
    # Only the state classes are enums in this schema.
    "enum": "not a state class: use planned, availability_loss or performance_loss "
    "(production is for running only)",
}

M = TypeVar("M", bound=BaseModel)
#: A cross-check problem: the location (keys and list indexes) and the message.
Problem = tuple[list[Any], str]
_DAY_S = 86_400
_CLASS_NAMES = tuple(StateClass)


def load_masterdata(path: str | Path) -> MasterData:
    """Load and check the master data file; ``ConfigFileError`` lists every problem."""
    path = Path(path)
    text = read_config_text(path)
    return parse_masterdata(text, str(path))


def parse_masterdata(text: str, filename: str) -> MasterData:
    """Check master data YAML ``text``; issues name ``filename`` as given."""
    document: Any = load_yaml(text, filename)
    if document is None:
        document = {}
    if not isinstance(document, dict):
        raise ConfigFileError(
            [ConfigIssue(filename, 1, 1, "", f"expected a mapping with {', '.join(SECTIONS)}")]
        )
    # An empty section (every entry commented out) reads as null: treat it as absent.
    plain = {key: value for key, value in _plain(document).items() if value is not None}
    issues: list[ConfigIssue] = []
    model: MasterDataFile | None = None
    try:
        model = MasterDataFile.model_validate(plain)
    except ValidationError as exc:
        issues += _schema_issues(exc, document, filename)
    for loc, message in _cross_check_problems(plain):
        line, column, field_path = locate(document, loc)
        issues.append(ConfigIssue(filename, line, column, field_path, message))
    if issues or model is None:
        raise ConfigFileError(sorted(issues, key=lambda i: (i.line or 0, i.column or 0)))
    try:
        return resolve_masterdata(model)
    except (CalendarError, OeeInputError) as exc:  # the cross-checks should have said so
        raise ConfigFileError([ConfigIssue(filename, None, None, "", str(exc))]) from None


def masterdata_schema_json() -> str:
    """The JSON Schema of the master data file, for editors and the documentation."""
    return config_schema_text(MasterDataFile, "Lineside OEE master data")


# -- cross-checks -------------------------------------------------------------------------


def _cross_check_problems(plain: dict[str, Any]) -> list[Problem]:
    """Problems spanning several values, in the parts of ``plain`` that pass the schema."""
    problems: list[Problem] = []
    calendars = plain.get("calendars")
    names: list[str] = []
    if isinstance(calendars, dict):
        names = list(calendars)
        for name, raw in calendars.items():
            problems += [(["calendars", name, *loc], m) for loc, m in _calendar_problems(raw)]
    problems += _assign_problems(plain.get("assign"), names)
    products = plain.get("products")
    if isinstance(products, dict):
        for product_id, raw in products.items():
            problems += [(["products", product_id, *loc], m) for loc, m in _override_problems(raw)]
    problems += [(["oee", *loc], m) for loc, m in _oee_problems(plain.get("oee", {}))]
    return problems


def _calendar_problems(raw: Any) -> Iterator[Problem]:
    if not isinstance(raw, dict):
        return
    found = False
    for i, shift in _valid_items(ShiftModel, raw.get("shifts")):
        for j, pause in enumerate(shift.breaks):
            message = _break_problem(shift, pause)
            if message:
                found = True
                yield ["shifts", i, "breaks", j], message
    for k, exception in _valid_items(ExceptionModel, raw.get("exceptions")):
        if exception.end <= exception.start:
            found = True
            yield (
                ["exceptions", k, "end"],
                (
                    f"end {exception.end.isoformat(timespec='minutes')} is not after start "
                    f"{exception.start.isoformat(timespec='minutes')}"
                ),
            )
    calendar = _valid(CalendarModel, raw)
    if calendar is not None and not found:
        try:
            build_calendar(calendar)
        except CalendarError as exc:
            yield [], str(exc)


def _break_problem(shift: ShiftModel, pause: BreakModel) -> str | None:
    # Offsets from the shift start, as the calendar places them: a break starting before
    # the shift start is on the next day, so everything is modulo one day.
    start_s = _seconds(shift.start)
    length_s = (_seconds(shift.end) - start_s) % _DAY_S or _DAY_S
    offset_s = (_seconds(pause.start) - start_s) % _DAY_S
    duration_s = (_seconds(pause.end) - _seconds(pause.start)) % _DAY_S
    span = f"{_hhmm(pause.start)}-{_hhmm(pause.end)}"
    if duration_s == 0:
        return f"break {span} is empty: end must differ from start"
    if offset_s + duration_s > length_s:
        return (
            f"break {span} is not inside the shift {shift.name!r} "
            f"{_hhmm(shift.start)}-{_hhmm(shift.end)}"
        )
    return None


def _assign_problems(raw: Any, calendar_names: list[str]) -> Iterator[Problem]:
    if not isinstance(raw, list):
        return
    first_at: dict[tuple[str | None, str | None], int] = {}
    for i, item in enumerate(raw):
        entry = _valid(AssignModel, item)
        if entry is None:
            continue
        if entry.calendar not in calendar_names:
            yield ["assign", i, "calendar"], _unknown_calendar(entry.calendar, calendar_names)
        key = (entry.site, entry.line)
        if key in first_at:
            yield (
                ["assign", i],
                (
                    f"{_scope(entry)} is assigned twice (first in assign[{first_at[key]}]); "
                    "keep one entry"
                ),
            )
        else:
            first_at[key] = i


def _unknown_calendar(name: str, known: list[str]) -> str:
    if not known:
        return f"unknown calendar {name!r}: no calendars are defined under calendars"
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"unknown calendar {name!r}{hint} (defined: {', '.join(sorted(known))})"


def _scope(entry: AssignModel) -> str:
    if entry.site is None:
        return "the default (no site, no line)"
    if entry.line is None:
        return f"site {entry.site!r}"
    return f"line {entry.line!r} of site {entry.site!r}"


def _override_problems(raw: Any) -> Iterator[Problem]:
    product = _valid(ProductModel, raw)
    if product is None:
        return
    first_at: dict[str, int] = {}
    for j, override in enumerate(product.overrides):
        if override.equipment in first_at:
            yield (
                ["overrides", j, "equipment"],
                (
                    f"{override.equipment} already has an override "
                    f"(overrides[{first_at[override.equipment]}]); keep one"
                ),
            )
        else:
            first_at[override.equipment] = j


def _oee_problems(raw: Any) -> Iterator[Problem]:
    states = raw.get("states") if isinstance(raw, dict) else None
    found = False
    for state, klass in states.items() if isinstance(states, dict) else ():
        # The engine's own rules (only running is production), one state at a time so
        # that the problem points at the state's line even if other states are wrong.
        if state not in STATE_NAMES or klass not in _CLASS_NAMES:
            continue
        try:
            OeeSettings(classification={state: StateClass(klass)})
        except OeeInputError as exc:
            found = True
            yield ["states", state], str(exc)
    oee = _valid(OeeModel, raw)
    if oee is not None and not found:
        try:
            build_settings(oee)
        except OeeInputError as exc:
            yield [], str(exc)


# -- helpers ------------------------------------------------------------------------------


def _valid(model: type[M], raw: Any) -> M | None:
    """``raw`` as ``model``, None when the schema pass already reports its problems."""
    try:
        return model.model_validate(raw)
    except ValidationError:
        return None


def _valid_items(model: type[M], raw: Any) -> Iterator[tuple[int, M]]:
    """The items of list ``raw`` that are valid ``model``s, with their indexes."""
    for index, item in enumerate(raw if isinstance(raw, list) else ()):
        valid = _valid(model, item)
        if valid is not None:
            yield index, valid


def _seconds(value: time) -> int:
    return value.hour * 3600 + value.minute * 60 + value.second


def _hhmm(value: time) -> str:
    return value.isoformat(timespec="seconds" if value.second else "minutes")


def _plain(node: Any) -> Any:
    """ruamel containers and scalars -> plain dicts, lists and builtin scalars."""
    if isinstance(node, dict):
        return {str(key): _plain(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_plain(value) for value in node]
    for kind in (bool, int, float, str):
        if isinstance(node, kind):
            return kind(node)
    return node  # dates and datetimes


def _schema_issues(exc: ValidationError, document: Any, filename: str) -> list[ConfigIssue]:
    """pydantic's errors located; unknown keys get a did-you-mean from the model."""
    issues = located_issues(exc, document, filename, MESSAGES)
    hints: dict[tuple[int | None, int | None, str], str] = {}
    for error in exc.errors(include_url=False):
        if error["type"] != "extra_forbidden":
            continue
        loc = [p for p in error["loc"] if not (isinstance(p, str) and "[" in p)]
        close = difflib.get_close_matches(str(loc[-1]), _keys_at(loc[:-1]), n=1, cutoff=0.6)
        if close:
            hints[locate(document, loc)] = close[0]
    return [
        ConfigIssue(i.file, i.line, i.column, i.path, f"{i.message}; did you mean {hint!r}?")
        if i.message == UNKNOWN_KEY and (hint := hints.get((i.line, i.column, i.path)))
        else i
        for i in issues
    ]


def _keys_at(loc: list[Any]) -> list[str]:
    """Keys the schema allows at ``loc`` (through lists and name -> model mappings)."""
    current: Any = MasterDataFile
    for part in loc:
        current = _strip(current)
        if get_origin(current) in (list, dict):
            current = get_args(current)[-1]
        elif isinstance(current, type) and issubclass(current, BaseModel):
            field = current.model_fields.get(str(part))
            if field is None:
                return []
            current = field.annotation
        else:
            return []
    current = _strip(current)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return []


def _strip(annotation: Any) -> Any:
    """Annotated[X, ...] and X | None -> X."""
    if get_origin(annotation) is Annotated:
        return _strip(get_args(annotation)[0])
    args = get_args(annotation)
    if type(None) in args:
        rest = [a for a in args if a is not type(None)]
        if len(rest) == 1:
            return _strip(rest[0])
    return annotation
