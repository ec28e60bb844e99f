"""YAML files that humans edit: load with positions, validate, report every problem.

Shared by the simulator scenarios and the edge agent configuration, so both report
``file:line:column: field.path: message`` the same way.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import UnionType
from typing import Annotated, Any, TypeVar, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError

M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class ConfigIssue:
    """One problem in a YAML file, located for a human."""

    file: str
    line: int | None
    column: int | None
    path: str
    message: str

    def render(self) -> str:
        where = self.file
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        field = f" {self.path}:" if self.path else ""
        return f"{where}:{field} {self.message}"


class ConfigFileError(Exception):
    """A YAML file could not be loaded; carries every issue found."""

    def __init__(self, issues: list[ConfigIssue]) -> None:
        self.issues = issues
        super().__init__("\n".join(issue.render() for issue in issues))

    def report(self, heading: str) -> str:
        """``heading: N problem(s)`` and one indented line per issue, for a CLI."""
        lines = [f"{heading}: {len(self.issues)} problem(s)"]
        return "\n".join(lines + [f"  {issue.render()}" for issue in self.issues])


UNKNOWN_KEY_HINT = "unknown key (check the spelling; see the documentation for valid keys)"

# ${NAME}, ${NAME:-default}, ${credential:NAME}
_REFERENCE = re.compile(r"\$\{(?:(credential):)?([A-Za-z_][A-Za-z0-9_.-]*)(?::-([^}]*))?\}")


def read_config_text(path: Path) -> str:
    """The text of a configuration file; ConfigFileError naming the file when unreadable."""
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigFileError(
            [ConfigIssue(str(path), None, None, "", f"cannot read: {exc.strerror}")]
        ) from None


def load_yaml(text: str, filename: str) -> Any:
    """Parse YAML keeping line/column information; raise ConfigFileError on syntax errors."""
    yaml = YAML(typ="rt")
    try:
        return yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        column = mark.column + 1 if mark else None
        problem = exc.problem or exc.context or "invalid YAML"
        raise ConfigFileError(
            [ConfigIssue(filename, line, column, "", f"YAML: {problem}")]
        ) from None


def load_yaml_fast(text: str) -> Any:
    """Parse YAML into plain dicts and lists with the C parser: no positions, 5x faster.

    Same YAML 1.2 rules as :func:`load_yaml` (both are ruamel). Callers validate this
    first and go back to :func:`load_yaml` only to locate problems: a 10,000-tag agent
    configuration took 22 s of CPU round-trip and under 5 s this way. Raises
    ``ruamel.yaml.YAMLError`` on a syntax error (locate it with ``load_yaml``).
    """
    return YAML(typ="safe", pure=False).load(text)


def validate_document(
    model: type[M],
    document: Any,
    filename: str,
    messages: dict[str, str] | None = None,
    resolve: Callable[[str], str] | None = None,
    union_tags: frozenset[str] = frozenset(),
) -> M:
    """Validate a loaded document against ``model``; every error becomes a located issue.

    ``resolve`` (optional) rewrites string scalars before validation (used for
    ``${VAR}`` references); its ValueErrors are reported at the scalar's position.
    ``union_tags`` are discriminated-union tags pydantic puts in error locations.
    """
    issues: list[ConfigIssue] = []
    plain = _plain(document, resolve, filename, issues, [])
    if issues:
        raise ConfigFileError(issues)
    try:
        return model.model_validate(plain)
    except ValidationError as exc:
        raise ConfigFileError(
            located_issues(exc, document, filename, messages, union_tags, model)
        ) from None


def located_issues(
    exc: ValidationError,
    document: Any,
    filename: str,
    messages: dict[str, str] | None = None,
    union_tags: frozenset[str] = frozenset(),
    model: type[BaseModel] | None = None,
) -> list[ConfigIssue]:
    """pydantic errors -> issues with the line/column of the offending key or item."""
    messages = {
        "extra_forbidden": UNKNOWN_KEY_HINT,
        "missing": "required key is missing",
        **(messages or {}),
    }
    issues = []
    for error in exc.errors(include_url=False):
        loc = [p for p in error["loc"] if not _is_union_tag(p)]
        line, column, path = locate(document, loc, union_tags)
        loc = [p for p in loc if p not in union_tags or _is_key_in(document, loc, p)]
        message = messages.get(error["type"]) or error["msg"]
        message = message.removeprefix("Value error, ").removeprefix("Assertion failed, ")
        if error["type"] == "extra_forbidden" and model is not None and loc:
            hint = _spelling_hint(str(loc[-1]), _fields_at(model, loc[:-1]))
            if hint:
                message = f"{message}; did you mean {hint!r}?"
        issues.append(ConfigIssue(filename, line, column, path, message))
    return sorted(issues, key=lambda issue: (issue.line or 0, issue.column or 0))


def locate(
    document: Any, loc: list[Any], union_tags: frozenset[str] = frozenset()
) -> tuple[int | None, int | None, str]:
    """Line, column (1-based) and dotted path of ``loc`` inside a ruamel document.

    Parts in ``union_tags`` that are not keys where they appear are skipped.
    """
    node = document
    line = column = None
    path_parts: list[str] = []
    if isinstance(node, CommentedMap | CommentedSeq):
        line, column = node.lc.line + 1, node.lc.col + 1
    for part in loc:
        if part in union_tags and not (isinstance(node, CommentedMap) and part in node):
            continue
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


def env_resolver(
    environ: dict[str, str] | None = None, credentials_dir: str | None = None
) -> Callable[[str], str]:
    """Resolve ``${VAR}``, ``${VAR:-default}`` and ``${credential:NAME}`` in a string.

    Credentials are files in ``credentials_dir`` (default: systemd's
    ``$CREDENTIALS_DIRECTORY`` from ``LoadCredential=``). Errors name the variable,
    never its value.
    """
    env = dict(os.environ if environ is None else environ)
    cred_dir = credentials_dir or env.get("CREDENTIALS_DIRECTORY")

    def resolve(text: str) -> str:
        def substitute(match: re.Match[str]) -> str:
            kind, name, default = match.group(1), match.group(2), match.group(3)
            if kind == "credential":
                if not cred_dir:
                    raise ValueError(
                        f"${{credential:{name}}} needs a credentials directory: set "
                        "LoadCredential= in the systemd unit (CREDENTIALS_DIRECTORY) or "
                        "agent.credentials_dir"
                    )
                path = os.path.join(cred_dir, name)
                try:
                    with open(path, encoding="utf-8") as handle:
                        return handle.read().rstrip("\n")
                except OSError as exc:
                    raise ValueError(
                        f"credential {name!r} cannot be read from {cred_dir}: {exc.strerror}"
                    ) from None
            if name in env:
                return env[name]
            if default is not None:
                return default
            raise ValueError(
                f"environment variable {name} is not set (use ${{{name}:-default}} for a default)"
            )

        return _REFERENCE.sub(substitute, text)

    return resolve


def _plain(
    node: Any,
    resolve: Callable[[str], str] | None,
    filename: str,
    issues: list[ConfigIssue],
    loc: list[Any],
    root: Any = None,
) -> Any:
    """ruamel containers -> plain dicts/lists, resolving references in strings."""
    root = node if root is None else root
    if isinstance(node, dict):
        return {
            str(k): _plain(v, resolve, filename, issues, [*loc, str(k)], root)
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_plain(v, resolve, filename, issues, [*loc, i], root) for i, v in enumerate(node)]
    if resolve is not None and isinstance(node, str) and "${" in node:
        try:
            return resolve(node)
        except ValueError as exc:
            line, column, path = locate(root, loc)
            issues.append(ConfigIssue(filename, line, column, path, str(exc)))
            return node
    return node


def _is_key_in(document: Any, loc: list[Any], part: Any) -> bool:
    """Whether ``part`` is a real key along ``loc`` (not a union tag)."""
    node = document
    for item in loc:
        if item == part:
            return isinstance(node, dict) and part in node
        try:
            node = node[item]
        except (KeyError, IndexError, TypeError):
            return False
    return False


def _spelling_hint(key: str, candidates: list[str]) -> str | None:
    matches = difflib.get_close_matches(key, candidates, n=1, cutoff=0.6)
    return matches[0] if matches else None


def _fields_at(model: type[BaseModel], loc: list[Any]) -> list[str]:
    """Field names of the model found at ``loc`` (through lists, optionals and unions)."""
    candidates: list[Any] = [model]
    for part in loc:
        nested: list[Any] = []
        for candidate in candidates:
            if isinstance(part, int):  # a list item: element types were unwrapped already
                nested.append(candidate)
            elif isinstance(candidate, type) and issubclass(candidate, BaseModel):
                field = candidate.model_fields.get(str(part))
                if field is not None:
                    nested += _unwrap(field.annotation)
        candidates = nested
    names: list[str] = []
    for candidate in candidates:
        for inner in _unwrap(candidate):
            if isinstance(inner, type) and issubclass(inner, BaseModel):
                names += list(inner.model_fields)
    return names


def _unwrap(annotation: Any) -> list[Any]:
    """Optional[X], list[X], Annotated[X, ...], X | Y -> the types inside."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _unwrap(get_args(annotation)[0])
    if origin in (list, tuple, set, frozenset, Union, UnionType):
        out: list[Any] = []
        for arg in get_args(annotation):
            out += _unwrap(arg)
        return out
    return [annotation]


def _is_union_tag(part: Any) -> bool:
    # pydantic adds the tried type (e.g. 'function-before[...]') to a location.
    return isinstance(part, str) and ("[" in part or part in {"str", "int", "float"})
