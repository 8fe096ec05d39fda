"""Recipe errors for people: each :class:`RecipeIssue` names the file, line, field path, what
was wrong, what was expected and the nearest valid name; :class:`IssueCollector` gathers them
from pydantic errors and from the checks of :mod:`recipeflow.recipe.validate`."""


import inspect
import re
import types
from dataclasses import dataclass, field
from collections.abc import Hashable, Sequence
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import Tag

from pydantic import (
    BaseModel,
    ValidationError,
)
from pydantic.fields import FieldInfo

from recipeflow.recipe.yaml_source import PathKey
from recipeflow.operators import registry
from recipeflow.recipe.models import RECIPE_NAME_PATTERN, STREAM_NAME_PATTERN

# ---------------------------------------------------------------------------------------------
# Issues


_PATTERN_WORDS = {
    RECIPE_NAME_PATTERN: "letters, digits, '_', '.' and '-' only",
    STREAM_NAME_PATTERN: "a name of letters, digits, '_' and '-' only (no dots)",
}
# Top-level keys of other tools' recipes, and where the same thing goes here.
_FOREIGN_FIELDS = {
    "dataset_path": "inputs",
    "export_path": "output",
    "project_name": "name",
    "np": "run",
}

@dataclass
class RecipeIssue:
    """One problem in a recipe, located as precisely as the YAML allows."""

    file: str
    line: int | None
    path: str  # dotted, with list indices in brackets: "process[2].text_length_filter.min_length"
    message: str
    expected: str | None = None
    suggestion: str | None = None

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        text = f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"
        if self.expected:
            text += f"; expected {self.expected}"
        if self.suggestion:
            text += f'; did you mean "{self.suggestion}"?'
        return text


class RecipeInvalid(ValueError):
    """A recipe that cannot be run; ``issues`` lists every problem found."""

    def __init__(self, issues: Sequence[RecipeIssue], source: str | None = None):
        self.issues = list(issues)
        self.source = source or (self.issues[0].file if self.issues else "<recipe>")
        # args mirror __init__ so the exception survives pickling (process pools, Prefect).
        super().__init__(self.issues, self.source)

    def __str__(self) -> str:
        count = len(self.issues)
        header = f"recipe {self.source} is invalid ({count} error{'' if count == 1 else 's'}):"
        return "\n".join([header] + [f"  {issue}" for issue in self.issues])


def format_path(loc: PathKey) -> str:
    """``("process", 2, "x")`` -> ``"process[2].x"``."""
    text = ""
    for segment in loc:
        if isinstance(segment, int) and not isinstance(segment, bool):
            text += f"[{segment}]"
        else:
            text += f".{segment}" if text else str(segment)
    return text



# ---------------------------------------------------------------------------------------------
# Collecting issues


@dataclass
class IssueCollector:
    """Issues found so far, and what is needed to locate them."""

    source: str
    lines: dict[PathKey, int] = field(default_factory=dict)
    overridden: dict[PathKey, str] = field(default_factory=dict)  # path -> the --set that wrote it
    found: list[RecipeIssue] = field(default_factory=list)

    def add(
        self,
        loc: PathKey,
        message: str,
        *,
        expected: str | None = None,
        suggestion: str | None = None,
    ) -> None:
        line = self.line_of(loc)
        override = self.override_of(loc)
        if override is not None:  # the file's line would point at a value that is not used
            line = None
            message += f" (value from --set {override})"
        path = format_path(loc)
        self.found.append(RecipeIssue(self.source, line, path, message, expected, suggestion))

    def line_of(self, loc: PathKey) -> int | None:
        """The line of ``loc`` or, for a field that is not written, of its enclosing mapping."""
        for end in range(len(loc), -1, -1):
            line = self.lines.get(loc[:end])
            if line is not None:
                return line
        return None

    def override_of(self, loc: PathKey) -> str | None:
        for path, override in self.overridden.items():
            if loc[: len(path)] == path:
                return override
        return None

    def sorted(self) -> list[RecipeIssue]:
        """In file order: issues without a line (from --set) last."""
        return sorted(self.found, key=lambda issue: (issue.line is None, issue.line or 0))


def describe_value(value: Any) -> str:
    """A value as a person would name it in an error message."""
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a mapping" if value else "an empty mapping"
    if isinstance(value, (list, tuple)):
        return "a list" if value else "an empty list"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _expected_for(error: dict[str, Any]) -> str | None:
    """What pydantic's error type says the value should have been, in words."""
    kind, ctx = error["type"], error.get("ctx") or {}
    simple = {
        "string_type": "a string",
        "int_type": "an integer",
        "int_parsing": "an integer",
        "int_from_float": "a whole number",
        "float_type": "a number",
        "float_parsing": "a number",
        "bool_type": "true or false",
        "bool_parsing": "true or false",
        "dict_type": "a mapping",
        "model_type": "a mapping",
        "model_attributes_type": "a mapping",
        "list_type": "a list",
    }
    if kind in simple:
        return simple[kind]
    if kind in ("literal_error", "enum"):
        return f"one of {ctx.get('expected')}"
    bounds = {
        "greater_than_equal": ">=",
        "greater_than": ">",
        "less_than_equal": "<=",
        "less_than": "<",
    }
    if kind in bounds:
        limit = next(iter(ctx.values()), None)
        return f"a value {bounds[kind]} {limit}"
    if kind == "string_pattern_mismatch":
        pattern = ctx.get("pattern", "")
        return _PATTERN_WORDS.get(pattern, f"text matching {pattern}")
    if kind == "too_short":
        return f"at least {plural(ctx.get('min_length', 1), 'item')}"
    if kind == "too_long":
        return f"at most {plural(ctx.get('max_length', 0), 'item')}"
    if kind == "string_too_short":
        return f"at least {plural(ctx.get('min_length', 1), 'character')}"
    return None


def add_validation_errors(
    issues: IssueCollector, error: ValidationError, model: type[BaseModel], prefix: PathKey = ()
) -> None:
    """One issue per pydantic error, located under ``prefix``; ``model`` is what was validated."""
    for detail in error.errors():
        loc = tuple(detail["loc"])
        sink: Any = issues
        if (shown := _without_union_tags(model, loc)) != loc:  # located where the user wrote it
            sink = _Relocated(issues, prefix + loc, prefix + shown)
        if loc and loc[-1] == "[key]":  # the mapping key itself is wrong (e.g. a bad input name)
            loc = loc[:-1]
            expected = _expected_for(detail)
            sink.add(prefix + loc, f"invalid name {describe_value(loc[-1])}", expected=expected)
        elif detail["type"] == "extra_forbidden":
            _add_unknown_field(sink, model, prefix, loc)
        elif detail["type"] == "missing":
            expected = _described_field(model, loc)
            sink.add(prefix + loc, "missing required field", expected=expected)
        else:
            expected = _expected_for(detail)
            if detail["type"] == "too_short":  # "at least one input" says more than "1 item"
                expected = _described_field(model, loc) or expected
            if expected is not None:
                message = f"got {describe_value(detail.get('input'))}"
            else:  # a validator's own message (e.g. "min_length must not exceed max_length")
                message = re.sub(r"^(Value error|Assertion failed), ", "", detail["msg"])
            sink.add(prefix + loc, message, expected=expected)


class _Relocated:
    """An issue collector that reports one location under another name."""

    def __init__(self, issues: "IssueCollector", loc: PathKey, shown: PathKey):
        self._issues, self._loc, self._shown = issues, loc, shown

    def add(self, loc: PathKey, *args: Any, **kwargs: Any) -> None:
        if tuple(loc[: len(self._loc)]) == self._loc:
            loc = self._shown + tuple(loc[len(self._loc):])
        self._issues.add(loc, *args, **kwargs)


def _described_field(model: type[BaseModel], loc: PathKey) -> str | None:
    """The description of the field at ``loc``, phrased to follow "expected"."""
    info = _field_at(model, loc)
    if info is None or not info.description:
        return None
    return info.description[0].lower() + info.description[1:]


def _add_unknown_field(
    issues: IssueCollector, model: type[BaseModel], prefix: PathKey, loc: PathKey
) -> None:
    """An unknown key: suggest the nearest field, or list the valid ones."""
    name = str(loc[-1])
    valid = field_names(_annotation_at(model, loc[:-1]))
    if prefix == () and len(loc) == 1 and name in _FOREIGN_FIELDS:
        message = "unknown field (a Data-Juicer recipe? recipeflow names this differently)"
        issues.add(loc, message, suggestion=_FOREIGN_FIELDS[name])
        return
    suggestion = registry.suggest(name, valid)
    expected = None if suggestion or not valid else "one of " + ", ".join(valid)
    issues.add(prefix + loc, "unknown field", expected=expected, suggestion=suggestion)


# --- walking pydantic models along an error's location, to find the valid field names there ---


def _strip_optional(annotation: Any) -> Any:
    if get_origin(annotation) in (Union, types.UnionType):
        members = [a for a in get_args(annotation) if a is not type(None)]
        if len(members) == 1:
            return members[0]
    return annotation


def _is_model(annotation: Any) -> bool:
    return inspect.isclass(annotation) and issubclass(annotation, BaseModel)


def _model_field(model: type[BaseModel], key: Hashable) -> FieldInfo | None:
    for name, info in model.model_fields.items():
        if key in (name, info.alias):
            return info
    return None


def _tagged_member(annotation: Any, tag: Hashable) -> Any:
    """The member of a tagged union (``Annotated[A | B, Discriminator(...)]``, members
    ``Annotated[A, Tag(...)]``) whose tag is ``tag``; None when ``annotation`` is no such union."""
    if get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    if get_origin(annotation) not in (Union, types.UnionType):
        return None
    for member in get_args(annotation):
        if get_origin(member) is Annotated and any(
            isinstance(m, Tag) and m.tag == tag for m in get_args(member)[1:]
        ):
            return get_args(member)[0]
    return None


def _without_union_tags(model: type[BaseModel], loc: PathKey) -> PathKey:
    """``loc`` without the tags pydantic inserts for a tagged union (`train.NAME.head.x` is
    `train.NAME.x` in the recipe), so paths name what the user wrote."""
    return tuple(
        segment for index, segment in enumerate(loc)
        if index == len(loc) - 1 or _tagged_member(_annotation_at(model, loc[:index]), segment) is None
    )


def _annotation_at(model: type[BaseModel], loc: PathKey) -> Any:
    """The type expected at ``loc`` inside ``model`` (``None`` when it cannot be told); a
    tagged union is followed through the tag segment pydantic puts in its error locations."""
    current: Any = model
    for segment in loc:
        current = _strip_optional(current)
        if (member := _tagged_member(current, segment)) is not None:
            current = member  # a tag segment (only present in pydantic's own locations)
            continue
        if _is_model(current):
            info = _model_field(current, segment)
            if info is None:
                return None
            current = info.annotation
        elif get_origin(current) is dict:
            current = get_args(current)[1]
        elif get_origin(current) is list:
            current = get_args(current)[0]
        else:
            return None
    return _strip_optional(current)


def _field_at(model: type[BaseModel], loc: PathKey) -> FieldInfo | None:
    parent = _annotation_at(model, loc[:-1])
    return _model_field(parent, loc[-1]) if loc and _is_model(parent) else None


def field_names(annotation: Any) -> list[str]:
    if not _is_model(annotation):
        return []
    return [info.alias or name for name, info in annotation.model_fields.items()]
