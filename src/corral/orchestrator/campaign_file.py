"""Reading a campaign file: one clear line for any mistake, naming file, line and field.

Relative paths (repos, scripted models, policy files) are relative to the campaign file.
Policy files are read here, once: their text is kept in each task's spec (see
`policy/layers.py`), so what a task runs under is fixed when the campaign is created.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from corral.domain import CampaignSpec, ConfigError, TaskSpec
from corral.domain.tasks import PolicyFile, dag_problem
from corral.orchestrator.policy.layers import read_policy_file

M = TypeVar("M", bound=BaseModel)


def _line_of(node: yaml.Node | None, loc: tuple[int | str, ...]) -> int | None:
    """Follow a pydantic error location through the YAML node tree to a line number."""
    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            nxt = next((v for k, v in node.value if getattr(k, "value", None) == part), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            nxt = node.value[part] if 0 <= part < len(node.value) else None
        else:
            nxt = None
        if nxt is None:
            break
        node = nxt
        line = node.start_mark.line + 1
    return line


def _where(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def read_yaml(p: Path, what: str) -> tuple[str, yaml.Node | None, Any]:
    """A YAML file's text, node tree (for line numbers) and data; one line for any mistake."""
    try:
        text = p.read_text()
    except FileNotFoundError:
        raise ConfigError(f"{what} {p} does not exist") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{what} {p} cannot be read: {e.__class__.__name__}") from None
    try:
        node = yaml.compose(text)
        data: Any = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ConfigError(f"{p}{where}: invalid YAML: {problem}") from None
    return text, node, data


def validate(cls: type[M], data: Any, p: Path, node: yaml.Node | None) -> M:
    """`cls` from parsed YAML; the first mistake as `FILE:LINE: field: problem`."""
    try:
        return cls.model_validate(data)
    except ValidationError as e:
        err = e.errors()[0]
        loc = tuple(err["loc"])
        line = _line_of(node, loc)
        msg = err["msg"].replace("Value error, ", "")
        raise ConfigError(f"{p}:{line or '?'}: {_where(loc)}: {msg}") from None


def load_campaign(path: str | Path) -> tuple[CampaignSpec, str]:
    """Parse and validate a campaign file; returns the spec and its original text."""
    p = Path(path)
    text, node, data = read_yaml(p, "campaign file")
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: a campaign file must be a mapping with `name` and `tasks`")
    for i, t in enumerate(data.get("tasks") or []):
        if isinstance(t, dict) and "policy_files" in t:
            line = _line_of(node, ("tasks", i, "policy_files"))
            raise ConfigError(
                f"{p}:{line or '?'}: tasks[{i}].policy_files: filled in by corral; "
                "name a file with `policy:`"
            )
    spec = validate(CampaignSpec, data, p, node)
    check_dag(spec, p, node)
    return _resolve_paths(spec, p, node), text


def check_dag(spec: CampaignSpec, path: Path, node: yaml.Node | None = None) -> None:
    """Unknown dependencies and cycles are rejected before anything runs."""
    problem = dag_problem(spec.tasks)
    if problem is not None:
        i, message = problem
        if i < 0:
            raise ConfigError(f"{path}: {message}")
        line = _line_of(node, ("tasks", i, "depends_on"))
        raise ConfigError(f"{path}:{line or '?'}: {message}")


def _resolve_paths(spec: CampaignSpec, path: Path, node: yaml.Node | None) -> CampaignSpec:
    """Relative paths are relative to the campaign file, as a reader expects; policy
    files are read and checked (a bad one names itself and where the campaign names it)."""
    base = path.parent

    def snap(name: str, loc: tuple[int | str, ...], below: tuple[PolicyFile, ...]) -> PolicyFile:
        try:
            return read_policy_file((base / name).resolve(), base=below)
        except ConfigError as e:
            line = _line_of(node, loc)
            raise ConfigError(f"{path}:{line or '?'}: {_where(loc)}: {e}") from None

    shared = (snap(spec.policy, ("policy",), ()),) if spec.policy else ()

    def fix(i: int, t: TaskSpec) -> TaskSpec:
        repo = str((base / t.repo).resolve()) if not Path(t.repo).is_absolute() else t.repo
        model = t.model or spec.model
        if model and model.startswith("scripted:") and not Path(model[9:]).is_absolute():
            model = "scripted:" + str((base / model[9:]).resolve())
        own = (snap(t.policy, ("tasks", i, "policy"), shared),) if t.policy else ()
        return t.model_copy(update={"repo": repo, "model": model, "policy_files": shared + own})

    return spec.model_copy(update={"tasks": tuple(fix(i, t) for i, t in enumerate(spec.tasks))})
