"""Load scenario YAML and report every problem with file:line:column and field path."""

from __future__ import annotations

from pathlib import Path

from lineside_common.yamlconfig import ConfigFileError, load_yaml, validate_document
from simulators.errors import ConfigIssue, ScenarioError, ScenarioNotFoundError
from simulators.scenario.models import Scenario

UNKNOWN_KEY = "unknown key (check the spelling; see docs/simulators.md for valid keys)"
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
    try:
        document = load_yaml(text, filename)
        if not isinstance(document, dict):
            raise ConfigFileError(
                [
                    ConfigIssue(
                        filename, 1, 1, "", "a scenario is a mapping with 'scenario' and 'machines'"
                    )
                ]
            )
        return validate_document(Scenario, document, filename, {"extra_forbidden": UNKNOWN_KEY})
    except ConfigFileError as exc:
        raise ScenarioError(exc.issues) from None
