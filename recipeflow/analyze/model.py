"""The analysis data model: what ``recipeflow analyze`` found per node, step and statistic,
and the per-shard pieces it is made of."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any


from recipeflow.engine.shard_input import ShardInput


DEFAULT_SAMPLE = 10_000
PERCENTILES = (1, 5, 10, 25, 50, 75, 90, 95, 99)
HISTOGRAM_BINS = 40
TOP_VALUES = 20
THRESHOLD_PREFIXES = ("min_", "max_")
NO_LIMIT = sys.maxsize  # a bound this large means "no bound"
# Analysis shards: small enough that a sample of 10,000 keeps every worker busy, big enough
# that Prefect's per-task cost (about a second) stays small beside the work.
MIN_ANALYSIS_SHARD = 1000

# Columns of a shard's per-document table (one row per sampled document, in input order).
ROW_COLUMN = "__analyze_row"  # the document's position in the shard; carried through the steps
DROPPED_AT = "dropped_at"  # index of the mapper step that dropped the document
FIRST_REJECTED_AT = "first_rejected_at"  # index of the first step that rejected it


class AnalyzeError(ValueError):
    """The recipe is valid but cannot be analysed (an input matches nothing, a filter lacks
    statistics, the report cannot be written)."""


# ---------------------------------------------------------------------------------------------
# What an analysis finds (JSON-able dataclasses)


@dataclass
class Histogram:
    """Counts of values in ``len(edges) - 1`` bins; ``edges`` ascending."""

    edges: list[float]
    counts: list[int]


@dataclass
class StatisticAnalysis:
    """One statistic of one filter over the documents that reached it."""

    name: str
    kind: str  # "numeric" or "categorical"
    values: int  # documents with a value
    missing: int  # documents that reached the filter with no (or a non-finite) value
    summary: dict[str, float] = field(default_factory=dict)  # p1 ... p99, min, max, mean
    histogram: Histogram | None = None
    top_values: list[tuple[str, int]] = field(default_factory=list)  # categorical
    thresholds: dict[str, float] = field(default_factory=dict)  # parameter -> value
    dropped_alone: int = 0  # rejections that name this statistic
    dropped_in_sequence: int = 0


@dataclass
class StepAnalysis:
    """One operator of a node, in recipe order."""

    step: str  # "main.process[2]"
    index: int
    operator: str
    kind: str  # filter | mapper | generator | deduplicator | selector
    params: dict[str, Any]
    analysed: bool = True  # False for barriers
    docs_in: int = 0  # documents that reached the step (alone)
    docs_in_sequence: int = 0  # of those, the ones every earlier step kept
    dropped_alone: int = 0
    dropped_in_sequence: int = 0
    reasons: dict[str, int] = field(default_factory=dict)  # reason -> count (alone)
    statistics: list[StatisticAnalysis] = field(default_factory=list)
    thresholds: dict[str, float] = field(default_factory=dict)  # every min_/max_ parameter
    unmatched_thresholds: dict[str, float] = field(default_factory=dict)

    @property
    def note(self) -> str:
        return "" if self.analysed else "not analysed (barrier)"


@dataclass
class NodeAnalysis:
    """One node of the recipe: its sample and its steps."""

    name: str
    sources: list[str]
    documents: int  # sampled documents
    unreadable: int  # unreadable records met while reading the sample
    kept_in_sequence: int  # documents every analysed step kept
    steps: list[StepAnalysis]
    has_filters: bool


@dataclass
class Analysis:
    """The whole analysis of a recipe."""

    recipe: str
    sample: int  # 0: all documents
    nodes: list[NodeAnalysis]
    skipped_nodes: list[str] = field(default_factory=list)  # nodes with nothing to analyse
    flow_run_id: str | None = None


# ---------------------------------------------------------------------------------------------
# What one task does: annotate one shard


@dataclass(frozen=True)
class SampleInput:
    """A shard to annotate, with an upper bound of the documents it holds."""

    shard: ShardInput
    records: int


@dataclass(frozen=True)
class ShardAnalysis:
    """One shard's annotate result: file references and counts, never the data itself."""

    key: str
    limit: int | None
    docs: int  # documents annotated (at most ``limit``)
    truncated: bool  # more documents were there beyond ``limit``
    unreadable: int
    table: str  # Parquet: one row per document (statistics and decisions per step)
    kept: str | None = None  # documents every step kept (when a later node reads them)
    kept_rows: int = 0
    rejected: str | None = None  # documents rejected in sequence, as a real run would
    rejected_rows: int = 0

    def covers(self, need: int) -> bool:
        """Whether this result is exactly the shard's first ``need`` documents (or all of them,
        when it holds fewer)."""
        if self.truncated:
            return self.limit == need
        return self.docs <= need
