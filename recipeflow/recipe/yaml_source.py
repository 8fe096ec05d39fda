"""YAML loading that remembers where every value came from.

Recipe errors must name the line of the offending field, so a recipe is loaded in two steps:
PyYAML's composer builds the node tree (every node carries its position), the safe
constructor turns it into plain Python data, and a walk over the node tree records the 1-based
line of every field path::

    ("process", 2, "text_length_filter", "min_length") -> 14

A mapping entry's line is the line of its key; a list item's line is where the item starts.
The walk also notices keys that appear twice in one mapping, which PyYAML silently resolves
to the last value.

Hostile YAML is refused before it costs time or memory: aliases can make a few lines stand for
billions of values ("billion laughs"), and deep nesting exhausts Python's stack, so the
composer bounds nesting depth and the expanded size of the node tree is counted (each node
once) before anything walks or constructs it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from collections.abc import Hashable
from typing import Any

import yaml

PathKey = tuple[Hashable, ...]

# A recipe is a few hundred values; these bounds are far above any real one.
MAX_DEPTH = 100  # mappings and lists inside each other
MAX_EXPANDED_VALUES = 100_000  # values the document holds once every alias is expanded


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
    loader = _BoundedLoader(text)
    try:
        root = loader.get_single_node()
        if root is None:  # empty file, or only comments
            return YamlDocument(data=None)
        _check_expanded_size(root)
        data = loader.construct_document(root)
        document = YamlDocument(data=data)
        # After construction, merge keys (<<) are already flattened into the node tree.
        _walk(loader, root, (), document, on_path=set())
        return document
    except yaml.YAMLError as error:
        raise _syntax_error(error) from None
    finally:
        loader.dispose()


class _BoundedLoader(yaml.SafeLoader):
    """The safe loader, refusing nesting deeper than :data:`MAX_DEPTH` while composing (the
    composer is recursive: 20,000 nested ``[`` would end in a raw ``RecursionError``)."""

    def __init__(self, text: str):
        super().__init__(text)
        self._depth = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise yaml.composer.ComposerError(
                    None, None,
                    f"values are nested more than {MAX_DEPTH} levels deep; a recipe needs a few",
                    self.peek_event().start_mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _check_expanded_size(root: yaml.Node) -> None:
    """Refuse a document whose aliases expand to more than :data:`MAX_EXPANDED_VALUES` values.

    An alias is the same node object as its anchor, so sizes are memoised per node: the count
    costs one visit per distinct node however large the expansion, and the first node found
    too large is named by its line.
    """
    sizes: dict[int, int] = {}
    on_path: set[int] = set()

    def size(node: yaml.Node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in on_path:  # a recursive alias (&a [*a]): the walk stops there as well
            return 1
        on_path.add(key)
        total = 1
        if isinstance(node, yaml.MappingNode):
            total += sum(size(k) + size(v) for k, v in node.value)
        elif isinstance(node, yaml.SequenceNode):
            total += sum(size(item) for item in node.value)
        on_path.discard(key)
        if total > MAX_EXPANDED_VALUES:
            raise yaml.composer.ComposerError(
                None, None,
                f"YAML aliases (*name) expand this value to more than {MAX_EXPANDED_VALUES:,} "
                "values; a recipe is far smaller, so write it out or use fewer aliases",
                node.start_mark)
        sizes[key] = total
        return total

    size(root)


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
