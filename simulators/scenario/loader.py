"""Load scenario YAML and report every problem with file:line:column and field path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError

from simulators.errors import ConfigIssue, ScenarioError, ScenarioNotFoundError
from simulators.scenario.models import Scenario

SCENARIO_DIR = Path(__file__).resolve().parent.parent / "scenarios"


def builtin_scenarios() -> dict[str, Path]:
    """Scenario name -> file for the scenarios shipped in simulators/scenarios/."""
    found: dict[str, Path] = {}
    for path in sorted(SCENARIO_DIR.glob("*.yaml")):
        found[path.stem] = path
    return found


def resolve_scenario(name_or_path: str) -> Path:
    """A path to an existing file, or the name of a shipped scenario."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    builtins = builtin_scenarios()
    if name_or_path in builtins:
        return builtins[name_or_path]
    known = ", ".join(builtins) or "(none)"
    raise ScenarioNotFoundError(
        f"scenario {name_or_path!r} is neither a file nor a shipped scenario; shipped: {known}"
    )


def load_scenario(name_or_path: str | Path) -> Scenario:
    """Read and validate a scenario; raises ScenarioError listing every issue."""
    path = resolve_scenario(str(name_or_path))
    text = path.read_text(encoding="utf-8")
    return parse_scenario(text, str(path))


def parse_scenario(text: str, filename: str = "<scenario>") -> Scenario:
    yaml = YAML(typ="rt")
    try:
        document = yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        column = mark.column + 1 if mark else None
        problem = exc.problem or exc.context or "invalid YAML"
        raise ScenarioError([ConfigIssue(filename, line, column, "", f"YAML: {problem}")]) from None
    if not isinstance(document, dict):
        raise ScenarioError(
            [
                ConfigIssue(
                    filename, 1, 1, "", "a scenario is a mapping with 'scenario' and 'machines'"
                )
            ]
        )
    try:
        return Scenario.model_validate(_plain(document))
    except ValidationError as exc:
        raise ScenarioError(_issues(exc, document, filename)) from None


def _plain(node: Any) -> Any:
    """ruamel's commented containers -> plain dicts and lists (timestamps stay)."""
    if isinstance(node, dict):
        return {str(k): _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    return node


def _issues(exc: ValidationError, document: Any, filename: str) -> list[ConfigIssue]:
    issues = []
    for error in exc.errors(include_url=False):
        loc = [part for part in error["loc"] if not _is_union_tag(part)]
        line, column, path = _locate(document, loc)
        message = error["msg"].removeprefix("Value error, ").removeprefix("Assertion failed, ")
        if error["type"] == "extra_forbidden":
            message = "unknown key (check the spelling; see docs/simulators.md for valid keys)"
        elif error["type"] == "missing":
            message = "required key is missing"
        issues.append(ConfigIssue(filename, line, column, path, message))
    return sorted(issues, key=lambda issue: (issue.line or 0, issue.column or 0))


def _is_union_tag(part: Any) -> bool:
    # pydantic adds the tried type (e.g. 'function-before[...]') to a location.
    return isinstance(part, str) and ("[" in part or part in {"str", "int", "float"})


def _locate(document: Any, loc: list[Any]) -> tuple[int | None, int | None, str]:
    node = document
    line = column = None
    path_parts: list[str] = []
    if isinstance(node, CommentedMap | CommentedSeq):
        line, column = node.lc.line + 1, node.lc.col + 1
    for part in loc:
        if isinstance(part, int) and isinstance(node, CommentedSeq) and part < len(node):
            path_parts.append(f"[{part}]")
            line, column = (v + 1 for v in node.lc.item(part))
            node = node[part]
        elif isinstance(node, CommentedMap) and part in node:
            path_parts.append(f".{part}" if path_parts else str(part))
            key_line, key_col = node.lc.key(part)
            line, column = key_line + 1, key_col + 1
            node = node[part]
        else:
            # Missing key or a model-level error: point at the enclosing node.
            if isinstance(part, str) and part != "__root__":
                path_parts.append(f".{part}" if path_parts else part)
            break
    return line, column, "".join(path_parts)
