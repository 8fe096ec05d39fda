"""YAML loading that remembers where every value came from.

Recipe errors must name the line of the offending field, so a recipe is loaded in two steps:
PyYAML's composer builds the node tree (every node carries its position), the safe
constructor turns it into plain Python data, and a walk over the node tree records the 1-based
line of every field path::

    ("process", 2, "text_length_filter", "min_length") -> 14

A mapping entry's line is the line of its key; a list item's line is where the item starts.
The walk also notices keys that appear twice in one mapping, which PyYAML silently resolves
to the last value.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from collections.abc import Hashable
from typing import Any

import yaml

PathKey = tuple[Hashable, ...]


@dataclass
class YamlDocument:
    """Plain data loaded from YAML, plus where each part of it was written."""

    data: Any
    lines: dict[PathKey, int] = field(default_factory=dict)
    # (path, line) of every key that repeats an earlier key of the same mapping.
    duplicate_keys: list[tuple[PathKey, int]] = field(default_factory=list)


class YamlSyntaxError(ValueError):
    """The text is not valid YAML; ``line`` and ``column`` are 1-based when known."""

    def __init__(self, problem: str, line: int | None, column: int | None):
        self.problem = problem
        self.line = line
        self.column = column
        where = f"line {line}, column {column}: " if line is not None else ""
        super().__init__(f"{where}{problem}")


def load_yaml(text: str) -> YamlDocument:
    """Parse one YAML document (safe tags only) and map its field paths to lines.

    Raises :class:`YamlSyntaxError` for text that is not YAML, holds more than one document,
    or uses a tag the safe loader refuses.
    """
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
        if root is None:  # empty file, or only comments
            return YamlDocument(data=None)
        data = loader.construct_document(root)
        document = YamlDocument(data=data)
        # After construction, merge keys (<<) are already flattened into the node tree.
        _walk(loader, root, (), document, on_path=set())
        return document
    except yaml.YAMLError as error:
        raise _syntax_error(error) from None
    finally:
        loader.dispose()


def _walk(
    loader: yaml.SafeLoader,
    node: yaml.Node,
    path: PathKey,
    document: YamlDocument,
    on_path: set[int],
) -> None:
    """Record the line of every child of ``node`` and descend into it."""
    if id(node) in on_path:  # a recursive alias (&a [*a]): nothing new below
        return
    on_path.add(id(node))
    if isinstance(node, yaml.MappingNode):
        seen: set[Any] = set()
        for key_node, value_node in node.value:
            key = _key_of(loader, key_node)
            child = path + (key,)
            line = key_node.start_mark.line + 1
            if key in seen:
                document.duplicate_keys.append((child, line))
            seen.add(key)
            document.lines[child] = line
            _walk(loader, value_node, child, document, on_path)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            child = path + (index,)
            document.lines[child] = item.start_mark.line + 1
            _walk(loader, item, child, document, on_path)
    if path == ():
        document.lines.setdefault((), node.start_mark.line + 1)
    on_path.discard(id(node))


def _key_of(loader: yaml.SafeLoader, key_node: yaml.Node) -> Any:
    """The Python value of a mapping key, as the constructor made it (``1`` stays an int)."""
    if isinstance(key_node, yaml.ScalarNode):
        return loader.construct_object(key_node)
    # Complex keys cannot be hashed by the safe constructor, which has already refused them.
    return repr(key_node.value)


def _syntax_error(error: yaml.YAMLError) -> YamlSyntaxError:
    """Turn PyYAML's error into a one-line problem with its position."""
    mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
    problem = getattr(error, "problem", None) or str(error)
    context = getattr(error, "context", None)
    if context:  # PyYAML's own order: "while parsing X" / "expected Y", then the problem
        problem = f"{context}, {problem}"
    if "'\\t'" in problem:
        problem += "; indent YAML with spaces, not tabs"
    if mark is None:
        return YamlSyntaxError(problem, None, None)
    return YamlSyntaxError(problem, mark.line + 1, mark.column + 1)
