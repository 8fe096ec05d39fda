"""``mix``: combine the documents of a node's sources in given proportions.

A node ``{from: [web, books], process: [{mix: {weights: {web: 3, books: 1}}}]}`` keeps
documents so that ``web`` makes 3/4 and ``books`` 1/4 of the result, counted in documents or
in characters. The engine marks every document with the ``from`` entry it came through
(``document.ORIGIN``); that is what ``weights`` is keyed by.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Literal, Mapping, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field, ValidationInfo, field_validator, model_validator

from recipeflow.operators import document as doc
from recipeflow.operators.base import BarrierDecision, OperatorParams, Selector, StepResult
from recipeflow.operators.drops import Drops
from recipeflow.operators.mixing import by_tokens
from recipeflow.operators.mixing.by_tokens import PHASE, TOKENS  # noqa: F401 (the field names)
from recipeflow.operators.mixing.origins import origin_codes
from recipeflow.operators.registry import register
from recipeflow.operators.sample import MAX_SEED, ORDER, by_seeded_order, seeded_order
from recipeflow.operators.top_k import concat_column, shard_decisions

CHARS = "chars"
N_TOKENS = "n_tokens"  # what `tokenize` writes
Unit = Literal["documents", "characters", "tokens"]
DEFAULT_MAX_EPOCHS = 4.0  # "Scaling Data-Constrained Language Models": repeats pay off up to ~4


def token_amount(value: Any) -> Any:
    """``1.2e12`` as YAML 1.1 reads it (a string) or ``"1.2T"``/``"500M"`` -> a number."""
    if isinstance(value, str):
        text = value.strip().replace("_", "").replace(",", "")
        scale = {"K": 1e3, "M": 1e6, "B": 1e9, "G": 1e9, "T": 1e12}.get(text[-1:].upper())
        try:
            return float(text[:-1]) * scale if scale else float(text)
        except ValueError:
            raise ValueError(f"{value!r} is not a number of tokens (e.g. 1.2e12, 500M, 2B)") from None
    return value


class PhaseParams(OperatorParams):
    """One training phase: its share of the token budget and its own weights."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$", description="Phase name (written to the `phase` field)")
    tokens: float | str = Field(
        description="Token budget: a number (1e9, 500M) or a percentage of the mix's target_tokens (`10%`)",
    )
    weights: dict[str, float] | None = Field(
        None, description="Weights of this phase (sources left out get 0); default: the mix's weights"
    )

    @field_validator("tokens", mode="before")
    @classmethod
    def _amount(cls, value: Any) -> Any:
        if isinstance(value, str) and value.strip().endswith("%"):
            try:
                percent = float(value.strip()[:-1])
            except ValueError:
                raise ValueError(f"{value!r} is not a percentage (e.g. 10%)") from None
            if not 0 < percent <= 100:
                raise ValueError(f"a phase's percentage must be in (0, 100]; got {value}")
            return value.strip()
        amount = token_amount(value)
        if not isinstance(amount, (int, float)) or amount <= 0:
            raise ValueError(f"a phase's tokens must be a number above 0 or a percentage; got {value!r}")
        return float(amount)

    @field_validator("weights")
    @classmethod
    def _weights(cls, weights: dict[str, float] | None) -> dict[str, float] | None:
        return None if weights is None else MixParams._usable_weights(weights)

    def budget(self, total: float | None) -> float | None:
        if isinstance(self.tokens, str):
            return None if total is None else total * float(self.tokens[:-1]) / 100
        return float(self.tokens)


class MixError(ValueError):
    """The weights do not fit the node's sources, or a share cannot be met."""


class MixParams(OperatorParams):
    weights: dict[str, float] = Field(
        min_length=1,
        description="Weight of each of the node's `from` entries (an input, a node or "
        "`<node>.rejected`); normalised to shares. Every source needs one.",
    )
    by: Unit = Field(
        "documents",
        description="Count shares in documents, characters or tokens (`n_tokens`: needs a "
        "tokenize step before the mix).",
    )
    target_tokens: float | None = Field(
        None,
        gt=0,
        description="by: tokens: the tokens of the result (e.g. 1.2e12, 500M); each source gives "
        "weight x target, repeating whole documents up to max_epochs when it is too small.",
    )
    max_epochs: float | dict[str, float] = Field(
        DEFAULT_MAX_EPOCHS,
        description="by: tokens: how many times a source's tokens may be used at most (one number, "
        "or per source).",
    )
    on_short: Literal["error", "rescale"] = Field(
        "error",
        description="by: tokens: a source that cannot give its share within max_epochs is an error, "
        "or (rescale) gives max_epochs of its tokens and the others fill the rest by their weights.",
    )
    phases: list[PhaseParams] = Field(
        default_factory=list,
        description="by: tokens: ordered training phases, each `{name, tokens: N or P%, weights}`; "
        "every document gets a `phase` field.",
    )
    total: float | None = Field(
        None,
        gt=0,
        description="Target amount of the result, in the `by` unit. Default: the largest total "
        "that no source has to be upsampled for.",
    )
    upsample: bool = Field(
        False,
        description="Let a source repeat documents to reach its share (copies get ids "
        "`<id>#2`, `<id>#3`...); otherwise a share larger than the source is an error.",
    )
    seed: int = Field(0, ge=0, le=MAX_SEED, description="Which documents a source contributes.")

    @field_validator("target_tokens", mode="before")
    @classmethod
    def _tokens_amount(cls, value: Any) -> Any:
        return token_amount(value)

    @model_validator(mode="after")
    def _token_options(self) -> "MixParams":
        token_only = [n for n in ("target_tokens", "phases") if getattr(self, n)]
        if self.by != "tokens" and token_only:
            raise ValueError(f"{token_only[0]} needs by: tokens")
        if self.by == "tokens" and self.total is not None:
            raise ValueError("by: tokens takes target_tokens, not total")
        epochs = self.max_epochs.values() if isinstance(self.max_epochs, dict) else [self.max_epochs]
        if any(not (e > 0) for e in epochs):
            raise ValueError("max_epochs must be above 0")
        names = [p.name for p in self.phases]
        if len(set(names)) != len(names):
            raise ValueError(f"phase names must differ; got {names}")
        if any(isinstance(p.tokens, str) for p in self.phases) and self.target_tokens is None:
            raise ValueError("a phase budget in % needs target_tokens")
        return self

    @field_validator("phases")
    @classmethod
    def _phases_within_target(cls, phases: list[PhaseParams], info: ValidationInfo) -> list[PhaseParams]:
        target = info.data.get("target_tokens")
        if phases and target is not None:
            asked = sum(p.budget(target) or 0 for p in phases)
            if asked > target * (1 + 1e-9):
                raise ValueError(
                    f"the phases ask {asked:,.0f} tokens, over target_tokens {target:,.0f}; "
                    "lower a phase's tokens or raise target_tokens"
                )
        return phases

    def stated_total_tokens(self) -> float | None:
        """by: tokens: the result's tokens as the recipe states them (target_tokens, or the sum
        of the phases' budgets); None when the data decides (the largest mix repeating nothing)."""
        if self.target_tokens is not None:
            return float(self.target_tokens)
        if self.phases:
            return float(sum(phase.budget(None) for phase in self.phases))  # type: ignore[misc]
        return None

    def token_mix_spec(self, total: float) -> by_tokens.TokenMixSpec:
        """What the resolve of ``by: tokens`` needs, for a result of ``total`` tokens."""
        phases = [
            by_tokens.Phase(ph.name, float(ph.budget(total)), ph.weights or self.weights)  # type: ignore[arg-type]
            for ph in self.phases
        ] or [by_tokens.Phase("all", total, self.weights)]
        return by_tokens.TokenMixSpec(
            weights=self.weights, phases=phases, with_phases=bool(self.phases), target=total,
            target_given=self.target_tokens is not None, max_epochs={n: self.epochs_of(n) for n in self.weights},
            on_short=self.on_short, seed=self.seed,
        )

    def epochs_of(self, source: str) -> float:
        if isinstance(self.max_epochs, dict):
            return float(self.max_epochs.get(source, DEFAULT_MAX_EPOCHS))
        return float(self.max_epochs)

    @field_validator("weights")
    @classmethod
    def _usable_weights(cls, weights: dict[str, float]) -> dict[str, float]:
        for origin, weight in weights.items():
            if not math.isfinite(weight) or weight < 0:
                raise ValueError(f"the weight of {origin!r} must be a number >= 0; got {weight}")
        if not any(w > 0 for w in weights.values()):
            raise ValueError("at least one weight must be above 0")
        return weights


def weight_problems(weights: Mapping[str, float], sources: Sequence[str]) -> list[str]:
    """What is wrong between ``weights`` and a node's ``from`` list, as messages (empty: fine).

    For recipe validation, before any work: at run time an empty source and a misspelt one look
    the same.
    """
    problems = [
        f"weights name {name!r}, which is not a source of this node (from: {', '.join(sources)})"
        for name in weights if name not in sources
    ]
    problems += [
        f"source {source!r} has no weight; give every source of the node a weight (0 leaves it out)"
        for source in sources if source not in weights
    ]
    return problems


@dataclass
class _Source:
    """One origin's documents, in seeded order, and what the mix takes of them."""

    name: str
    share: Fraction
    rows: np.ndarray  # global row numbers, in seeded order
    chars: np.ndarray  # characters of each of those rows
    target: Fraction = Fraction(0)  # in the `by` unit
    copies: np.ndarray | None = None  # output copies of each row (0 = not selected)

    def available(self, by: Unit) -> int:
        return len(self.rows) if by == "documents" else int(self.chars.sum())


@register
class Mix(Selector):
    """Mix a node's sources by weights, counted in documents or characters.

    ``weights`` are keyed by the node's ``from`` entries and normalised to shares. Without
    ``total``, the result is as large as it can be without repeating any document; with it,
    each source must supply its share of ``total`` — by repeating documents when ``upsample``
    is true, else it is an error. A source contributes its documents in the order of a hash of
    (seed, id), so the choice is deterministic, whatever the shards, workers or executor.

    Counting: by documents, the total (rounded half up) is apportioned to sources by largest
    remainder, so the counts add up exactly; by characters, a source takes documents in seeded
    order whenever that brings it closer to its target (within half a document). Dropped
    documents get ``mix_not_selected`` with their source's numbers as detail.

    After :meth:`resolve`, :attr:`last_summary` holds per origin: weight, share, target,
    available/selected/output documents and characters, and the copies added by upsampling.
    """

    name = "mix"
    version = "1"
    Params = MixParams
    adds_text = True  # upsampling repeats documents

    last_summary: dict[str, Any] | None = None

    @classmethod
    def check_sources(cls, params: MixParams, sources: Sequence[str]) -> list[str]:  # type: ignore[override]
        problems = weight_problems(params.weights, sources)
        for phase in params.phases:
            problems += [
                f"phase {phase.name!r}: weights name {name!r}, which is not a source of this node "
                f"(from: {', '.join(sources)})"
                for name in (phase.weights or {}) if name not in sources
            ]
        if isinstance(params.max_epochs, dict):
            problems += [
                f"max_epochs names {name!r}, which is not a source of this node (from: {', '.join(sources)})"
                for name in params.max_epochs if name not in sources
            ]
        return problems

    def signatures(self, batch: pa.Table) -> pa.Table:
        if len(batch) and doc.ORIGIN not in batch.column_names:
            raise MixError(
                f"mix needs the {doc.ORIGIN!r} column, which the engine sets to the `from` entry "
                "each document came through; called directly, set it on the batch first"
            )
        origins = batch.column(doc.ORIGIN) if len(batch) else pa.array([], pa.string())
        columns = {
            doc.ORIGIN: pc.cast(origins, pa.string()),
            ORDER: seeded_order(batch.column(doc.ID).to_pylist(), self.params.seed),
            CHARS: pc.cast(pc.utf8_length(batch.column(doc.TEXT)), pa.int64()),
        }
        if self.params.by == "tokens":
            if N_TOKENS not in batch.column_names:
                if len(batch):
                    raise MixError(
                        "mix by: tokens needs the `n_tokens` field; put a `tokenize` step before the mix "
                        "(in this node or upstream)"
                    )
                columns[TOKENS] = pa.array([], pa.int64())
            else:
                columns[TOKENS] = pc.cast(pc.fill_null(batch.column(N_TOKENS), 0), pa.int64())
        return pa.table(columns)

    def resolve(self, signatures: list[pa.Table]) -> list[BarrierDecision]:
        if self.params.by == "tokens":
            return self._resolve_tokens(signatures)
        sources = self._sources(signatures)
        total = self._total(sources)
        self._set_targets(sources, total)
        for source in sources:
            source.copies = self._copies(source)
        self.last_summary = self._summary(sources, total)
        drops, repeats = self._decisions(sources)
        return shard_decisions([len(s) for s in signatures], drops, repeats)

    def _resolve_tokens(self, signatures: list[pa.Table]) -> list[BarrierDecision]:
        p = self.params
        codes, seen = origin_codes(signatures, list(p.weights))  # once: every step below reads them
        self._check_origins(seen)
        total = p.stated_total_tokens()
        if total is None:  # the largest mix that repeats no document
            available = by_tokens.available_tokens(signatures, codes, p.weights)
            weight_sum = sum(p.weights.values())
            total = float(min(available[n] * weight_sum / w for n, w in p.weights.items() if w > 0))
        spec = p.token_mix_spec(total)
        try:
            decisions, self.last_summary = by_tokens.resolve_by_tokens(spec, signatures, codes)
        except by_tokens.TokenMixError as error:
            raise MixError(str(error)) from None
        return decisions

    def apply(self, batch: pa.Table, decision: BarrierDecision) -> StepResult:
        order = [ph.name for ph in self.params.phases]
        return by_tokens.apply_with_phases(batch, decision, order, self.name, super().apply)

    # -- steps of resolve ---------------------------------------------------------------------

    def _sources(self, signatures: list[pa.Table]) -> list[_Source]:
        """Each weighted origin's rows in seeded order; errors for unweighted or absent ones."""
        weights = self.params.weights
        codes, seen = origin_codes(signatures, list(weights))
        self._check_origins(seen)
        ranks = concat_column(signatures, ORDER, np.uint64)
        chars = concat_column(signatures, CHARS, np.int64)
        weight_sum = sum(Fraction(str(w)) for w in weights.values())
        sources = []
        for code, (name, weight) in enumerate(weights.items()):
            rows = by_seeded_order(ranks, np.flatnonzero(codes == code))
            sources.append(_Source(name, Fraction(str(weight)) / weight_sum, rows, chars[rows]))
        return sources

    def _check_origins(self, seen: set[str]) -> None:
        weights = self.params.weights
        unweighted = sorted(seen - set(weights))
        if unweighted:
            raise MixError(
                f"mix: documents came through {unweighted[0]!r}, which `weights` does not name "
                f"(weights: {', '.join(weights)}); give every source of the node a weight "
                "(0 leaves it out)"
            )
        absent = [name for name, w in weights.items() if name not in seen and w > 0]
        if absent:
            came = ", ".join(sorted(seen)) or "none"
            raise MixError(
                f"mix: weights name {absent[0]!r}, but no document came through it (documents "
                f"came through: {came}); is it misspelt, or is that source empty?"
            )

    def _total(self, sources: list[_Source]) -> Fraction:
        """The target amount: ``total`` (documents rounded half up), or the largest amount
        no source must be upsampled for."""
        by, given = self.params.by, self.params.total
        if given is not None:
            exact = Fraction(str(given))
            return Fraction(math.floor(exact + Fraction(1, 2))) if by == "documents" else exact
        largest = min(Fraction(s.available(by)) / s.share for s in sources if s.share > 0)
        # Whole documents: rounding down keeps every share within its source.
        return Fraction(math.floor(largest)) if by == "documents" else largest

    def _set_targets(self, sources: list[_Source], total: Fraction) -> None:
        if self.params.by == "documents":
            for source, count in zip(sources, apportion(int(total), [s.share for s in sources])):
                source.target = Fraction(count)
        else:
            for source in sources:
                source.target = total * source.share
        for source in sources:
            self._check_reachable(source, total)

    def _check_reachable(self, source: _Source, total: Fraction) -> None:
        p = self.params
        available = source.available(p.by)
        if source.target <= available:
            return
        if not p.upsample:
            raise MixError(
                f"mix: source {source.name!r} has {available} {p.by}, but its share of the total "
                f"{float(total):g} is {float(source.target):g}; set upsample: true to repeat documents, "
                "or a smaller total (leave total out for the largest mix without repeats)"
            )
        if available == 0:
            raise MixError(
                f"mix: source {source.name!r} has no {p.by} to repeat towards its share "
                f"({float(source.target):g})"
            )

    def _copies(self, source: _Source) -> np.ndarray:
        """How many times each of the source's rows (seeded order) appears in the result."""
        available = source.available(self.params.by)
        if available == 0:
            return np.zeros(len(source.rows), np.int64)
        full_passes = math.floor(source.target / available)
        rest = source.target - full_passes * available
        copies = np.full(len(source.rows), full_passes, np.int64)
        if self.params.by == "documents":
            copies[: int(rest)] += 1
        else:
            copies += closest_prefix_by_characters(source.chars, rest)
        return copies

    def _decisions(self, sources: list[_Source]) -> tuple[Drops, dict[int, int]]:
        drops = Drops()
        repeats: dict[int, int] = {}
        for source in sources:
            numbers = self.last_summary["origins"][source.name]  # type: ignore[index]
            detail = (
                f"origin={source.name}: selected {numbers['selected_documents']} of "
                f"{numbers['available_documents']} documents (share {float(source.share):.4g})"
            )
            assert source.copies is not None
            drops.add(source.rows[source.copies == 0], "mix_not_selected", detail=detail)
            repeated = source.copies > 1
            repeats.update(zip(source.rows[repeated].tolist(), source.copies[repeated].tolist()))
        return drops, repeats

    def _summary(self, sources: list[_Source], total: Fraction) -> dict[str, Any]:
        p = self.params
        origins = {}
        for source in sources:
            copies = source.copies if source.copies is not None else np.zeros(0, np.int64)
            selected = copies > 0
            origins[source.name] = {
                "weight": p.weights[source.name],
                "share": float(source.share),
                "target": float(source.target),
                "available_documents": int(len(source.rows)),
                "available_characters": int(source.chars.sum()),
                "selected_documents": int(selected.sum()),
                "selected_characters": int(source.chars[selected].sum()),
                "output_documents": int(copies.sum()),
                "output_characters": int((source.chars * copies).sum()),
                "upsampled_documents": int((copies > 1).sum()),
                "added_copies": int(copies.sum() - selected.sum()),
            }
        return {
            "by": p.by,
            "total": float(total),
            "total_given": p.total is not None,
            "upsample": p.upsample,
            "seed": p.seed,
            "origins": origins,
        }


def apportion(total: int, shares: Sequence[Fraction]) -> list[int]:
    """Split ``total`` documents by ``shares`` (summing to 1) with the largest-remainder
    method: whole numbers that add up to ``total``; equal remainders favour earlier shares."""
    exact = [total * share for share in shares]
    counts = [math.floor(x) for x in exact]
    left = total - sum(counts)
    by_remainder = sorted(range(len(shares)), key=lambda i: (-(exact[i] - counts[i]), i))
    for i in by_remainder[:left]:
        counts[i] += 1
    return counts


def closest_prefix_by_characters(chars: np.ndarray, target: Fraction) -> np.ndarray:
    """0/1 per document (in seeded order): take a document when it brings the running total of
    characters closer to ``target`` (within half its length), skipping those that would
    overshoot more. Everything, when ``target`` is the whole source."""
    taken = np.zeros(len(chars), np.int64)
    if target >= int(chars.sum()):
        taken[:] = 1
        return taken
    # In whole characters: "running + length/2 <= target" and "running >= target".
    twice_target_floor = math.floor(2 * target)
    target_ceil = math.ceil(target)
    running = 0
    for i, length in enumerate(chars.tolist()):
        if 2 * running + length <= twice_target_floor:
            taken[i] = 1
            running += length
            if running >= target_ceil:
                break
    return taken
