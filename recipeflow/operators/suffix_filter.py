"""``suffix_filter`` (Data-Juicer): keep documents that came from files with given suffixes."""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any, Sequence

import pyarrow as pa
from pydantic import Field

from recipeflow.operators import document as doc
from recipeflow.operators.text.datajuicer_text import DataJuicerFilterParams
from recipeflow.operators.base import Filter, Rejection
from recipeflow.operators.registry import register

# Data-Juicer's formatter records each document's file suffix in this field.
DATAJUICER_SUFFIX_FIELD = "__dj__suffix__"
# Compressed files take their last two suffixes, as in Data-Juicer (".jsonl.gz").
COMPRESSION_SUFFIXES = frozenset({".gz", ".zst", ".zstd", ".bz2", ".xz", ".lz4", ".zip", ".7z"})


class SuffixFilterParams(DataJuicerFilterParams):
    suffixes: str | list[str] | None = Field(
        [],
        description="Suffixes to keep, compared as written with the file's suffix, which has "
        "its dot ('.txt', '.jsonl.gz'); empty: keep everything.",
    )

    def suffix_list(self) -> list[str]:
        if self.suffixes is None:
            return []
        return [self.suffixes] if isinstance(self.suffixes, str) else list(self.suffixes)


def file_suffix(path: str | None) -> str | None:
    """A file's suffix as Data-Juicer records it: lower case, the last two for compressed
    files (``.jsonl.gz``)."""
    if not path:
        return None
    suffixes = [s.lower() for s in PurePosixPath(path.rstrip("/")).suffixes]
    if not suffixes:
        return ""
    if suffixes[-1] in COMPRESSION_SUFFIXES:
        return "".join(suffixes[-2:])
    return suffixes[-1]


def document_suffixes(batch: pa.Table) -> list[str | None]:
    """Each document's suffix: Data-Juicer's own field when the data has it, else from the
    lineage column naming the input file."""
    if DATAJUICER_SUFFIX_FIELD in batch.column_names:
        return batch.column(DATAJUICER_SUFFIX_FIELD).to_pylist()
    if doc.INPUT_FILE in batch.column_names:
        return [file_suffix(p) for p in batch.column(doc.INPUT_FILE).to_pylist()]
    raise KeyError(
        f"suffix_filter needs each document's file: documents have neither "
        f"{doc.INPUT_FILE!r} (written by recipeflow's readers) nor {DATAJUICER_SUFFIX_FIELD!r} "
        "(Data-Juicer's)"
    )


@register
class SuffixFilter(Filter):
    """Keep documents read from files whose suffix is one of ``suffixes`` (all documents when
    it is empty) (Data-Juicer's ``suffix_filter``).

    The suffix is compared as written: '.txt' matches a .txt file, 'txt' matches nothing, as in
    Data-Juicer. Statistic ``suffix``.
    """

    name = "suffix_filter"
    version = "1"
    Params = SuffixFilterParams

    def compute_stats(self, batch: pa.Table) -> dict[str, Sequence[Any]]:
        return {"suffix": document_suffixes(batch)}

    def decide(self, stats: dict[str, Sequence[Any]]) -> list[Rejection | None]:
        allowed = self.params.suffix_list()
        if not allowed:
            return [None] * len(stats["suffix"])
        out: list[Rejection | None] = []
        for suffix in stats["suffix"]:
            keep = (suffix in allowed) != self.params.reversed_range
            reason = "suffix_in_suffixes" if self.params.reversed_range else "suffix_not_in_suffixes"
            rejection = Rejection(reason, "suffix", None, f"suffix={suffix}")
            out.append(None if keep else rejection)
        return out
