"""Operator base classes.

Plain Python: this package never imports Prefect or the rest of recipeflow, so an operator can be
used and tested on its own.

A batch is a ``pyarrow.Table`` with at least the columns ``id`` and ``text`` (see
:mod:`recipeflow.operators.document`). Operators come in kinds:

* :class:`Mapper` changes text or fields, one document at a time (or vectorized);
* :class:`Filter` first computes named statistics per document, then decides from them
  (as Data-Juicer does), so ``analyze`` can show distributions without dropping anything;
* :class:`BarrierOperator` needs the whole dataset, run in three phases (per-shard signatures,
  one global resolve, per-shard apply): :class:`Selector` here, and the deduplicators' base
  ``Deduplicator`` in :mod:`recipeflow.operators.dedup.deduplicator`.
"""

from __future__ import annotations

import enum
import os
from contextvars import ContextVar
import inspect
from dataclasses import dataclass, field
from typing import Annotated, Any, Callable, ClassVar, Protocol, Sequence

import numpy as np
import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator
from pydantic_core import PydanticUndefined

from recipeflow.operators import document as doc
from recipeflow.operators.document import Rejection
from recipeflow.operators.drops import Drops



class Resource(str, enum.Enum):
    cpu = "cpu"
    gpu = "gpu"


class Kind(str, enum.Enum):
    mapper = "mapper"
    filter = "filter"
    deduplicator = "deduplicator"
    selector = "selector"
    generator = "generator"


# Kinds that work one document at a time and can be fused into one stage with their neighbours.
STREAMABLE_KINDS = frozenset({Kind.mapper, Kind.filter, Kind.generator})


# Threshold types: a nonsense threshold (a negative word count, a share above 1) is a validation
# error on its own line instead of a run that silently drops every document.
Count = Annotated[int, Field(ge=0)]  # a number of things: words, lines, sentences, characters
Ratio = Annotated[float, Field(ge=0, le=1)]  # a share of a whole
NonNegative = Annotated[float, Field(ge=0)]  # a measure with no upper bound (a max ratio above 1 = no bound)


class OperatorParams(BaseModel):
    """Base of every operator's parameter model: unknown parameters are errors, and every
    ``max_X`` must be at least its ``min_X`` (declare ``min_X`` first; null is no bound)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    # True where a threshold of 0 turns its rule off (DataTrove's ``if self.max_x and ...``),
    # so ``max_X: 0`` is not a bound below ``min_X``.
    zero_turns_off: ClassVar[bool] = False

    @field_validator("*", mode="after")
    @classmethod
    def _max_not_below_min(cls, value: Any, info: ValidationInfo) -> Any:
        name = info.field_name or ""
        if not name.startswith("max_") or not _is_number(value):
            return value
        low_name = "min_" + name[len("max_"):]
        low = info.data.get(low_name)
        if not _is_number(low) or value >= low or (cls.zero_turns_off and value == 0):
            return value
        raise ValueError(
            f"{value} is below {low_name} ({low}): no document could pass; "
            f"set {name} to at least {low_name}, or null for no upper bound")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


# Parameters naming a local file or folder (or any fsspec URL) are marked, so a relative local
# path in a recipe is resolved from the recipe file's folder, as inputs and outputs are.
PATH_MARKER = "x-recipeflow-path"
# The folder relative local paths are taken from while a recipe is validated (its file's
# folder; unset: the working directory). Validators that check a file exists use local_path.
recipe_folder: ContextVar[str | None] = ContextVar("recipe_folder", default=None)


def path_field(default: Any = PydanticUndefined, **kwargs: Any) -> Any:
    """A ``Field`` holding a path: resolved from the recipe's folder when relative."""
    return Field(default, json_schema_extra={PATH_MARKER: True}, **kwargs)


def local_path(path: str) -> str:
    """``path`` as the run will see it: a relative local path joined to the recipe's folder."""
    folder = recipe_folder.get()
    if folder is None or "://" in path or os.path.isabs(os.path.expanduser(path)):
        return path
    return os.path.join(folder, path)


class Operator:
    """A named, registered, parametrised transformation of documents."""

    name: ClassVar[str]
    kind: ClassVar[Kind]
    resource: ClassVar[Resource] = Resource.cpu
    # Bump when behaviour changes: it is part of every cache key and manifest.
    version: ClassVar[str] = "1"
    Params: ClassVar[type[OperatorParams]] = OperatorParams
    # Writes text of its own (an LLM's) or repeats documents: past it, a corpus can hold more
    # text than its input files did (the token bound of engine.token_reach stops holding).
    adds_text: ClassVar[bool] = False

    def __init__(self, params: OperatorParams | dict[str, Any] | None = None):
        if params is None:
            params = {}
        if isinstance(params, dict):
            params = self.Params.model_validate(params)
        self.params = params

    @property
    def streamable(self) -> bool:
        """Per-document operators can be fused with their neighbours into one stage."""
        return self.kind in STREAMABLE_KINDS

    @classmethod
    def check_sources(cls, params: OperatorParams, sources: Sequence[str]) -> list[str]:
        """Problems between this operator's parameters and its node's ``from`` list (e.g. a
        ``mix`` weight naming no source), found when the recipe is validated."""
        return []

    def written_fields(self) -> tuple[str, ...]:
        """Fields (besides ``text`` and ``stat_*`` statistics) this operator writes into every
        document: one an input already has is overwritten, and the manifest says so."""
        return ()

    def provenance(self) -> dict[str, Any]:
        """Facts about what this operator used (a model's path and sha256...), recorded in the
        manifest beside its parameters."""
        return {}

    @classmethod
    def summary(cls) -> str:
        """The first paragraph of the docstring on one line: what ``recipeflow ops`` prints."""
        paragraph = inspect.cleandoc(cls.__doc__ or "").split("\n\n", 1)[0]
        return " ".join(paragraph.split())

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.params!r})"


@dataclass
class StepResult:
    """What a streamable operator made of one batch."""

    kept: pa.Table
    rejected: pa.Table | None = None  # input rows plus rejection columns
    added: int = 0  # new documents among ``kept`` (a generator's, beside their originals)


class StreamOperator(Operator):
    """An operator that sees one batch at a time and never needs the rest of the dataset."""

    def process(self, batch: pa.Table) -> StepResult:
        raise NotImplementedError


class Mapper(StreamOperator):
    """Changes text or fields. Override :meth:`map_text` (per document) or :meth:`map_batch`."""

    kind = Kind.mapper

    def map_text(self, text: str) -> str:
        raise NotImplementedError

    def map_batch(self, batch: pa.Table) -> pa.Table:
        texts = batch.column(doc.TEXT).to_pylist()
        return doc.set_column(batch, doc.TEXT, [self.map_text(t) for t in texts])

    def process(self, batch: pa.Table) -> StepResult:
        return StepResult(kept=self.map_batch(batch))


class Generator(StreamOperator):
    """Writes new text with a model (LLM rewriting): may add documents beside its input's.

    The engine gives it a folder for its own cache of generations (:meth:`use_cache`), so a
    re-run or a refresh never generates again what an earlier run already did.
    """

    kind = Kind.generator
    resource = Resource.gpu
    adds_text = True

    def use_cache(self, url: str | None) -> None:
        """Keep generations under ``url`` (any fsspec path); ``None``: no cache."""


class Filter(StreamOperator):
    """Keeps or drops documents: statistics first (:meth:`compute_stats`), then :meth:`decide`.

    Statistics are named: the rejected output and ``analyze`` show them under that name.
    """

    kind = Kind.filter

    def compute_stats(self, batch: pa.Table) -> dict[str, Sequence[Any]]:
        raise NotImplementedError

    def decide(self, stats: dict[str, Sequence[Any]]) -> list[Rejection | None]:
        """One entry per document: ``None`` keeps it, a :class:`Rejection` drops it."""
        raise NotImplementedError

    def thresholds(self) -> dict[str, dict[str, float]]:
        """statistic -> {parameter: bound} deciding on it, for ``analyze`` to draw. Empty means
        "derive from the ``min_*``/``max_*`` parameters"; filters whose parameter names do not
        match their statistics (DataTrove's ``line_punct_thr``...) say it here."""
        return {}

    def annotate(self, batch: pa.Table) -> tuple[pa.Table, list[Rejection | None]]:
        """Statistics written into the batch (``stat_<name>`` columns) and the decisions,
        without dropping anything: what ``analyze`` uses."""
        stats = self.compute_stats(batch)
        for statistic, values in stats.items():
            batch = doc.set_column(batch, doc.stat_column(statistic), values)
        return batch, self.decide(stats)

    def process(self, batch: pa.Table) -> StepResult:
        annotated, decisions = self.annotate(batch)
        return split_by_decisions(annotated, decisions, self.name)


class DocumentStatsFilter(Filter):
    """A filter whose statistics are computed one document at a time: state ``statistics`` (their
    names, in order) and :meth:`document_stats`; the base owns the loop over the batch."""

    statistics: ClassVar[tuple[str, ...]] = ()

    def statistic_names(self) -> Sequence[str]:
        """The statistics :meth:`document_stats` returns, in order (``statistics`` unless they
        depend on the parameters)."""
        return self.statistics

    def start_batch(self) -> None:
        """Set-up shared by every document of a batch (e.g. the word splitter for a language)."""

    def document_stats(self, text: str) -> Sequence[Any]:
        """One value per statistic, in :meth:`statistic_names` order, for one document's text."""
        raise NotImplementedError

    def compute_stats(self, batch: pa.Table) -> dict[str, Sequence[Any]]:
        names = list(self.statistic_names())
        columns: dict[str, list[Any]] = {name: [] for name in names}
        appenders = [columns[name].append for name in names]
        self.start_batch()
        for text in batch.column(doc.TEXT).to_pylist():
            for append, value in zip(appenders, self.document_stats(text or "")):
                append(value)
        return columns


@dataclass(frozen=True)
class Rule:
    """One row of a rule table: drop a document (with ``reason``) when its ``statistic`` is below
    ``bound`` (``minimum``) or above it. A rule whose bound is null or 0 is off, as DataTrove's
    ``if self.threshold and ...``; ``fails`` replaces the comparison for rules of their own shape
    (they are always on). ``param`` names the parameter holding the bound, for ``analyze``."""

    reason: str
    statistic: str
    bound: float | None = None
    minimum: bool = False
    param: str | None = None
    fails: Callable[[Any], bool] | None = None

    @property
    def active(self) -> bool:
        return self.fails is not None or bool(self.bound)

    def failed(self, value: Any) -> bool:
        if self.fails is not None:
            return self.fails(value)
        return value < self.bound if self.minimum else value > self.bound  # type: ignore[operator]


class RuleTableFilter(Filter):
    """A filter deciding by an ordered table of rules: the first rule a document fails is its
    reason (DataTrove's filters). State :meth:`rules`; ``analyze`` draws their bounds."""

    def rules(self) -> list[Rule]:
        raise NotImplementedError

    def decide(self, stats: dict[str, Sequence[Any]]) -> list[Rejection | None]:
        rules = [rule for rule in self.rules() if rule.active]
        size = len(next(iter(stats.values()))) if stats else 0
        decisions: list[Rejection | None] = []
        for i in range(size):
            decision = None
            for rule in rules:
                value = stats[rule.statistic][i]
                if rule.failed(value):
                    decision = Rejection(rule.reason, rule.statistic, None if value is None else float(value))
                    break
            decisions.append(decision)
        return decisions

    def thresholds(self) -> dict[str, dict[str, float]]:
        found: dict[str, dict[str, float]] = {}
        for rule in self.rules():
            if rule.param is not None and rule.bound is not None:
                found.setdefault(rule.statistic, {})[rule.param] = float(rule.bound)
        return found


class RangeFilter(Filter):
    """A filter over one named statistic, keeping documents whose value lies in ``bounds()``
    (``min_*``/``max_*`` parameters): state ``statistic``, :meth:`measure` and :meth:`bounds`."""

    statistic: ClassVar[str]

    def measure(self, texts: list[str]) -> list[Any]:
        """The statistic of each text."""
        raise NotImplementedError

    def bounds(self) -> tuple[float | None, float | None]:
        """``(minimum, maximum)`` of the kept range; ``None`` is unbounded."""
        raise NotImplementedError

    def compute_stats(self, batch: pa.Table) -> dict[str, Sequence[Any]]:
        texts = [t or "" for t in batch.column(doc.TEXT).to_pylist()]
        return {self.statistic: self.measure(texts)}

    def decide(self, stats: dict[str, Sequence[Any]]) -> list[Rejection | None]:
        minimum, maximum = self.bounds()
        return threshold_decisions(stats[self.statistic], self.statistic, minimum, maximum)


def threshold_decisions(
    values: Sequence[float], statistic: str, minimum: float | None, maximum: float | None
) -> list[Rejection | None]:
    """The common decision: drop below ``minimum`` (reason ``<statistic>_below_min``) or above
    ``maximum`` (``<statistic>_above_max``); bounds are inclusive, as in Data-Juicer."""
    out: list[Rejection | None] = []
    for v in values:
        if minimum is not None and v < minimum:
            out.append(Rejection(f"{statistic}_below_min", statistic, float(v)))
        elif maximum is not None and v > maximum:
            out.append(Rejection(f"{statistic}_above_max", statistic, float(v)))
        else:
            out.append(None)
    return out


def split_by_decisions(
    batch: pa.Table, decisions: Sequence[Rejection | None], operator: str
) -> StepResult:
    """Split a batch into kept rows and rejected rows (with the rejection columns)."""
    if all(d is None for d in decisions):
        return StepResult(kept=batch)
    kept_rows = [i for i, d in enumerate(decisions) if d is None]
    rejected_rows = [i for i, d in enumerate(decisions) if d is not None]
    # One take, then two slices: half the Arrow calls of a filter and a take (small shards).
    both = batch.take(pa.array(kept_rows + rejected_rows, type=pa.int64()))
    rejected = doc.with_rejection(
        both.slice(len(kept_rows)),
        operator,
        [decisions[i] for i in rejected_rows],  # type: ignore[misc]
    )
    return StepResult(kept=both.slice(0, len(kept_rows)), rejected=rejected)


@dataclass
class BarrierDecision:
    """A barrier's verdict for one shard: rows to drop and fields to add to kept rows."""

    drop: Drops = field(default_factory=Drops)  # a dict of rejections is made a Drops
    fields: dict[str, list[Any]] | None = None  # full-length columns, one value per input row
    # Upsampling: row -> how many times it appears in the output (>= 2; absent means once).
    # Copies after the first get the id "<id>#<copy>" (copy = 2, 3, ...).
    repeats: dict[int, int] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.drop, Drops):
            self.drop = Drops(self.drop)


class SignatureSource(Protocol):
    """Every shard's stored signatures, read on demand (the engine provides it)."""

    def read(self, columns: list[str] | None) -> list[pa.Table]:
        """These columns (None: all) of every shard, in input order."""
        ...

    def take(self, column: str, positions: np.ndarray) -> pa.Array:
        """One column's values at global positions (row numbers across the shards in input
        order), in the order given, reading a shard at a time."""
        ...

    def shard_sizes(self) -> list[int]:
        """Documents per shard, in input order."""
        ...


class BarrierOperator(Operator):
    """Needs the whole dataset. Run in three phases so no step holds the whole corpus's text:

    1. :meth:`signatures` per shard (small: hashes, scores), in parallel;
    2. :meth:`resolve` once, over every shard's signatures in input order — or, when
       :meth:`partitions` is more than 1, :meth:`resolve_partition` in parallel over slices of
       the signatures (e.g. band buckets), then :meth:`merge` of the partial results;
    3. the engine drops rows / adds fields per shard from the :class:`BarrierDecision`.
    """

    # What the global step found (per-source counts, a cutoff...): set by resolve/merge and
    # recorded in the manifest beside the operator's counts.
    last_summary: dict[str, Any] | None = None

    def signatures(self, batch: pa.Table) -> pa.Table:
        raise NotImplementedError

    def resolve(self, signatures: list[pa.Table]) -> list[BarrierDecision]:
        raise NotImplementedError

    def resolve_from(self, source: SignatureSource) -> list[BarrierDecision]:
        """:meth:`resolve`, reading the signatures itself (see :meth:`resolve_partition_from`)."""
        return self.resolve(source.read(None))

    def partitions(self) -> int:
        """How many tasks share phase 2; 1 means a single :meth:`resolve`. The result must not
        depend on this number."""
        return 1

    def partition_columns(self, partition: int, partitions: int) -> list[str] | None:
        """The signature columns partition ``partition`` reads (``None``: all of them)."""
        return None

    def resolve_partition(
        self, signatures: list[pa.Table], partition: int, partitions: int
    ) -> pa.Table:
        """Phase 2a: the partial result of one partition (e.g. duplicate pairs), from every
        shard's signatures (only :meth:`partition_columns`), in input order."""
        raise NotImplementedError

    def resolve_partition_from(self, source: SignatureSource, partition: int, partitions: int) -> pa.Table:
        """:meth:`resolve_partition`, reading the signatures itself: an operator that needs a
        column at a time (a band, then the ids of the few documents found) overrides this to
        hold less than every signature column at once."""
        return self.resolve_partition(source.read(self.partition_columns(partition, partitions)), partition, partitions)

    def merge(self, partials: list[pa.Table], shard_sizes: list[int]) -> list[BarrierDecision]:
        """Phase 2b: one decision per shard from every partition's partial result."""
        raise NotImplementedError

    def apply(self, batch: pa.Table, decision: BarrierDecision) -> StepResult:
        if decision.fields:
            for name, values in decision.fields.items():
                batch = doc.set_column(batch, name, values)
        decisions = decision.drop.decisions(len(batch))
        result = split_by_decisions(batch, decisions, self.name)
        if decision.repeats:
            result.kept = repeat_rows(batch, decisions, decision.repeats, result.kept)
        return result


def repeat_rows(
    batch: pa.Table,
    decisions: Sequence[Rejection | None],
    repeats: dict[int, int],
    kept: pa.Table,
) -> pa.Table:
    """The kept rows, each repeated as ``repeats`` says, copies right after their original."""
    indices: list[int] = []
    copy_numbers: list[int] = []
    for row, decision in enumerate(decisions):
        if decision is None:
            for copy in range(1, repeats.get(row, 1) + 1):
                indices.append(row)
                copy_numbers.append(copy)
    if len(indices) == len(kept):
        return kept
    out = batch.take(pa.array(indices, type=pa.int64()))
    ids = [
        doc_id if copy == 1 else f"{doc_id}#{copy}"
        for doc_id, copy in zip(out.column(doc.ID).to_pylist(), copy_numbers)
    ]
    return doc.set_column(out, doc.ID, pa.array(ids, type=pa.string()))


class Selector(BarrierOperator):
    """Chooses documents with global knowledge: sample, top-k, mix."""

    kind = Kind.selector
