"""Load scenario YAML and report every problem with file:line:column and field path."""

from __future__ import annotations

from pathlib import Path

from lineside_common.yamlconfig import ConfigFileError, load_yaml, locate, validate_document
from simulators.errors import ConfigIssue, ScenarioError, ScenarioNotFoundError
from simulators.scenario.certificates import read_certificate_der
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
    return parse_scenario(text, str(path), path.parent)


def parse_scenario(
    text: str, filename: str = "<scenario>", base_dir: Path | None = None
) -> Scenario:
    """Validate scenario YAML; files it names are relative to ``base_dir`` (default: cwd)."""
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
        scenario = validate_document(Scenario, document, filename, {"extra_forbidden": UNKNOWN_KEY})
    except ConfigFileError as exc:
        raise ScenarioError(exc.issues) from None
    return _with_user_certificates(scenario, document, filename, base_dir or Path())


def _with_user_certificates(
    scenario: Scenario, document: object, filename: str, base_dir: Path
) -> Scenario:
    """Resolve ``opcua.user_certificates`` against ``base_dir`` and check each file."""
    resolved: list[Path] = []
    issues: list[ConfigIssue] = []
    for index, path in enumerate(scenario.opcua.user_certificates):
        full = path if path.is_absolute() else base_dir / path
        try:
            read_certificate_der(full)
        except ValueError as exc:
            line, column, where = locate(document, ["opcua", "user_certificates", index])
            issues.append(ConfigIssue(filename, line, column, where, str(exc)))
        resolved.append(full)
    if issues:
        raise ScenarioError(issues)
    if not resolved:
        return scenario
    opcua = scenario.opcua.model_copy(update={"user_certificates": resolved})
    return scenario.model_copy(update={"opcua": opcua})
