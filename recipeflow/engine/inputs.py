"""What an input path names: files (a path, folder or glob) or a recipeflow dataset
(``ROOT`` for its latest version, ``ROOT@VERSION`` for one version)."""

from __future__ import annotations

from dataclasses import dataclass

from recipeflow.io import readers
from recipeflow.datasets import versions
from recipeflow.recipe.models import InputSpec


@dataclass(frozen=True)
class ResolvedInput:
    urls: list[str]
    format: str
    root: str  # base for the relative paths in derived ids
    dataset: versions.DatasetInput | None = None


def resolve_input(spec: InputSpec) -> ResolvedInput:
    """The files to read and their format; raises InputNotFound or FileNotFoundError."""
    dataset = versions.dataset_input(spec.path)
    if dataset is not None:
        # Relative to the dataset's root: a snapshot's files live in several version folders.
        return ResolvedInput(dataset.files, spec.format or dataset.format, dataset.root, dataset)
    urls = readers.expand_input(spec.path)
    return ResolvedInput(urls, spec.format or readers.infer_format(urls[0]), readers.input_root(spec.path))
