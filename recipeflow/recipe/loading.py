"""Loading a recipe file: read it (local or fsspec URL), parse YAML with line numbers, apply
``--set`` overrides, recognise Data-Juicer recipes, validate."""


import copy
from collections.abc import Sequence
from typing import Any

import yaml

from recipeflow.recipe.yaml_source import PathKey, YamlSyntaxError, load_yaml
from recipeflow.recipe.errors import IssueCollector, RecipeInvalid, RecipeIssue, describe_value, format_path, plural

from recipeflow.recipe.models import Recipe

from recipeflow.operators.base import recipe_folder
from recipeflow.recipe import datajuicer, paths
from recipeflow.recipe.validate import recipe_or_raise

def load_recipe(path: str, overrides: Sequence[str] = ()) -> Recipe:
    """Read, override (``--set a.b=c``) and validate a recipe file.

    Raises :class:`RecipeInvalid` for a missing or unreadable file, YAML syntax errors, bad
    overrides and every validation problem, each with its line where there is one.
    """
    source = str(path)
    text = _read_text(source)
    try:
        document = load_yaml(text)
    except YamlSyntaxError as error:
        column = f" (column {error.column})" if error.column is not None else ""
        issue = RecipeIssue(source, error.line, "", f"not valid YAML{column}: {error.problem}")
        raise RecipeInvalid([issue], source) from None
    issues = IssueCollector(source, document.lines)
    for loc, line in document.duplicate_keys:
        message = "written twice in the same mapping; YAML would silently keep only the last"
        issues.found.append(RecipeIssue(source, line, format_path(loc), message))
    data = _apply_overrides(document.data, overrides, issues)

    # Parameters that name files are checked from the recipe's folder, as the run reads them.
    token = recipe_folder.set(paths.recipe_folder(source))
    try:
        if datajuicer.is_datajuicer_recipe(data):
            return datajuicer.parse_datajuicer_recipe(data, issues)
        return recipe_or_raise(data, issues)
    finally:
        recipe_folder.reset(token)


def issues_in_file(source: str) -> IssueCollector:
    """A collector for problems found after loading (checks that read the inputs), placing each
    field at its line in the recipe file."""
    try:
        lines = load_yaml(_read_text(source)).lines
    except (RecipeInvalid, YamlSyntaxError):  # the file changed since it was loaded
        lines = {}
    return IssueCollector(source, dict(lines))


def _read_text(source: str) -> str:
    """The recipe file's text, or :class:`RecipeInvalid` saying why it cannot be read."""
    try:
        with open(source, "rb") as handle:
            return handle.read().decode("utf-8-sig")
    except FileNotFoundError:
        problem = "file not found; check the path (relative paths start from the current directory)"
    except IsADirectoryError:
        problem = "is a directory; expected a recipe file (.yaml)"
    except PermissionError:
        problem = "cannot be read: permission denied"
    except UnicodeDecodeError as error:
        problem = f"is not UTF-8 text (byte {error.start}); save the recipe as UTF-8"
    raise RecipeInvalid([RecipeIssue(source, None, "", problem)], source)


# ---------------------------------------------------------------------------------------------
# Overrides


class _BadOverride(Exception):
    pass


def apply_overrides(
    data: dict[str, Any], overrides: Sequence[str], *, source: str = "--set"
) -> dict[str, Any]:
    """A copy of ``data`` with each ``dotted.path=value`` applied, in order.

    Integer segments index lists (``process.1.text_length_filter.min_length=50``); the value is
    parsed as YAML (``4`` is an int, ``true`` a bool, ``[a, b]`` a list); missing mapping keys
    are created. Raises :class:`RecipeInvalid` naming every override that cannot be applied.
    """
    issues = IssueCollector(source)
    result = _apply_overrides(data, overrides, issues)
    if issues.found:
        raise RecipeInvalid(issues.found, source)
    return result


def _apply_overrides(data: Any, overrides: Sequence[str], issues: IssueCollector) -> Any:
    """Apply what can be applied; record an issue for each override that cannot."""
    result = copy.deepcopy(data)
    for override in overrides:
        dotted, separator, value_text = override.partition("=")
        dotted = dotted.strip()
        try:
            if not separator or not dotted:
                raise _BadOverride("expected PATH=VALUE, e.g. run.workers=4")
            value = _parse_override_value(value_text)
            loc = _set_path(result, dotted.split("."), value)
            issues.overridden[loc] = override
        except _BadOverride as problem:
            message = f"--set {override}: {problem}"
            issues.found.append(RecipeIssue(issues.source, None, dotted, message))
    return result


def _parse_override_value(text: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        problem = getattr(error, "problem", None) or error
        raise _BadOverride(f"the value is not valid YAML ({problem})") from None


def _set_path(root: Any, segments: list[str], value: Any) -> PathKey:
    """Set ``value`` at ``segments`` inside ``root``; returns the path as a location tuple."""
    if any(not segment for segment in segments):
        raise _BadOverride("empty segment in the path")
    container, loc = root, ()
    for position, segment in enumerate(segments):
        last = position == len(segments) - 1
        key = _container_key(container, segment, loc)
        if isinstance(container, list) and not segment.isdigit():
            # A step named by its operator: what follows is in its parameters.
            loc, container, key = loc + (key,), container[key], segment.partition("#")[0]
        loc = loc + (key,)
        if last:
            container[key] = value
            break
        child = container[key] if isinstance(container, list) else container.get(key)
        if child is None:  # a missing key, or null params (`- html_extract:`), becomes a mapping
            child = container[key] = {}
        container = child
    return loc


def _container_key(container: Any, segment: str, loc: PathKey) -> str | int:
    """The key or list index that ``segment`` names in ``container``."""
    where = format_path(loc) or "the recipe"
    if isinstance(container, dict):
        return segment
    if isinstance(container, list):
        if not segment.isdigit():
            return _step_by_operator(container, segment, where)
        index = int(segment)
        if index >= len(container):
            raise _BadOverride(
                f"{where} has {plural(len(container), 'item')}; index {index} is out of range "
                f"(items are numbered from 0)"
            )
        return index
    raise _BadOverride(f"{where} is {describe_value(container)}, not a mapping or a list")


def _step_by_operator(steps: list[Any], segment: str, where: str) -> int:
    """A step of a ``process`` list named by its operator, so an override does not depend on
    the recipe's order: ``text_length_filter`` (the only one), or ``text_length_filter#2`` (the
    second of several)."""
    name, _, nth = segment.partition("#")
    matches = [i for i, step in enumerate(steps) if isinstance(step, dict) and name in step]
    if not nth and len(matches) > 1:
        raise _BadOverride(
            f"{where} has {len(matches)} {name!r} steps: name one as {name}#1 ... {name}#{len(matches)}"
        )
    number = int(nth) if nth.isdigit() else 1
    if not matches or number < 1 or number > len(matches):
        names = ", ".join(next(iter(s)) for s in steps if isinstance(s, dict) and s) or "none"
        raise _BadOverride(
            f"{where} is a list: expected an item number or an operator name (steps: {names}), got {segment!r}"
        )
    return matches[number - 1]
