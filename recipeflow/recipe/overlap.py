"""Outputs that overlap inputs: a dataset root inside an input (or an input inside a dataset
root) makes the next run read its own versions and cache as input, commit junk, and let
``keep_last`` delete the only good version. Refused before any work, naming both fields.

The check is lexical (no filesystem access), so ``validate`` can run it on the paths as
written and the run's preflight on the absolute ones."""

from __future__ import annotations

import fnmatch
import os
import posixpath
from dataclasses import dataclass
from typing import Literal

from recipeflow.io import storage
from recipeflow.io.readers.formats import GLOB_CHARS
from recipeflow.recipe.models import Recipe


Relation = Literal["same folder", "output inside input", "input inside output"]
SAME: Relation = "same folder"
OUTPUT_INSIDE: Relation = "output inside input"
INPUT_INSIDE: Relation = "input inside output"


@dataclass(frozen=True)
class Overlap:
    """One input and one output whose paths overlap; fields as written in the recipe."""

    input_field: str
    input_path: str
    output_field: str
    output_path: str
    relation: Relation

    def __str__(self) -> str:
        if self.relation == SAME:
            how = ("they are the same folder, so the next run would read the dataset's own "
                   "versions and cache as input documents")
        elif self.relation == OUTPUT_INSIDE:
            how = ("the output root is inside the input, so the next run would read the "
                   "dataset's own versions and cache as input documents")
        else:
            how = ("the input is inside the output root, so the run would read files of the "
                   "dataset it writes (and keep_last may delete them)")
        return (f"{self.input_field} ({self.input_path}) and {self.output_field} "
                f"({self.output_path}) overlap: {how}; write the output to a folder that is "
                "neither inside an input nor holds one")


def output_fields(recipe: Recipe, *, chain: bool) -> list[tuple[tuple[str, ...], str]]:
    """(field location, root) of every dataset the recipe writes."""
    found = [(("output", "path") if chain and node == "main" else ("outputs", node, "path"), spec.path)
             for node, spec in recipe.outputs.items()]
    found += [(("train", name, "output", "path"), spec.output.path) for name, spec in recipe.train.items()]
    return found


def overlapping_paths(
    recipe: Recipe, *, chain: bool = True, lexical_only: bool = False
) -> list[tuple[tuple[str, ...], Overlap]]:
    """Every (input, output) pair of ``recipe`` whose paths overlap, located at the output's
    field. ``lexical_only`` (validation, paths as written): pairs of a relative and an absolute
    path are skipped, as their overlap depends on the directory the run starts from."""
    found = []
    for loc, out_path in output_fields(recipe, chain=chain):
        for name, spec in recipe.inputs.items():
            if lexical_only and _is_relative(spec.path) != _is_relative(out_path):
                continue
            relation = _relation(spec.path, out_path)
            if relation is not None:
                field = ".".join(loc)
                found.append((loc, Overlap(f"inputs.{name}.path", spec.path, field, out_path, relation)))
    return found


def first_overlap(recipe: Recipe) -> Overlap | None:
    """The first overlapping (input, output) pair of a recipe whose local paths are absolute."""
    found = overlapping_paths(recipe)
    return found[0][1] if found else None


def _relation(input_path: str, output_root: str) -> Relation | None:
    """How the output root lies to what the input reads; None when they are apart."""
    in_scheme, in_parts = _split(_without_version(input_path))
    out_scheme, out_parts = _split(output_root)
    if in_scheme != out_scheme:
        return None
    first_glob = next((i for i, p in enumerate(in_parts) if any(c in p for c in GLOB_CHARS)), None)
    static = in_parts if first_glob is None else in_parts[:first_glob]
    if out_parts == static:
        return SAME
    if out_parts[:len(static)] == static:  # output below the input's folder
        if first_glob is None:
            return OUTPUT_INSIDE
        pattern, below = in_parts[first_glob:], out_parts[len(static):]
        # A glob reads what lies beneath the output root only if it descends through it.
        descends = "**" in pattern or len(below) < len(pattern) and all(
            fnmatch.fnmatchcase(part, glob) for part, glob in zip(below, pattern))
        return OUTPUT_INSIDE if descends else None
    if static[:len(out_parts)] == out_parts:
        return INPUT_INSIDE
    return None


def _split(path: str) -> tuple[str, list[str]]:
    """(scheme, normalised path segments) of a local path or URL."""
    if storage.is_local(path):
        path = path[len("file://"):] if path.startswith("file://") else path
        path = os.path.normpath(os.path.expanduser(path))
        prefix = "/" if path.startswith("/") else ""
        return "file", [prefix] + [p for p in path.split("/") if p and p != "."]
    scheme, _, rest = path.partition("://")
    return scheme, [p for p in posixpath.normpath("/" + rest).split("/") if p]


def _without_version(path: str) -> str:
    """A dataset input ``ROOT@VERSION`` reads under ROOT."""
    head, sep, tail = path.rpartition("@")
    return head if sep and head and tail and "/" not in tail else path


def _is_relative(path: str) -> bool:
    return storage.is_local(path) and not os.path.isabs(os.path.expanduser(path.removeprefix("file://")))
