"""mix by tokens: the resolve and the apply of :class:`recipeflow.operators.mix.Mix` when
``by: tokens`` (target_tokens, max_epochs, on_short, phases). Each phase's budget is split by
its weights; each source's stream (seeded order, repeated) is cut into consecutive stretches,
phase after phase (see :mod:`.token_budget`)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import numpy as np
import pyarrow as pa

from recipeflow.operators import document as doc
from recipeflow.operators.base import BarrierDecision, StepResult, split_by_decisions
from recipeflow.operators.drops import Drops
from recipeflow.operators.mixing.token_budget import (
    BudgetError, SourcePlan, SourceTokens, plan_source, rescale_shares,
)
from recipeflow.operators.sample import ORDER, by_seeded_order
from recipeflow.operators.top_k import concat_column, shard_decisions

TOKENS = "tokens"  # signature column: n_tokens of each document
PHASE = "phase"  # the output field naming a document's phase, when the mix has phases
PHASE_COPIES = "__mix_phase_copies"  # decision field: JSON {phase: copies} per kept row


class TokenMixError(ValueError):
    """A source cannot give its share, said for people."""


@dataclass(frozen=True)
class Phase:
    name: str
    budget: float  # tokens
    weights: Mapping[str, float]


@dataclass(frozen=True)
class TokenMixSpec:
    """What the resolve needs of the mix's parameters."""

    weights: Mapping[str, float]
    phases: list[Phase]  # with_phases False: one phase holding the whole target
    with_phases: bool
    target: float
    target_given: bool
    max_epochs: Mapping[str, float]
    on_short: str
    seed: int


def available_tokens(signatures: list[pa.Table], codes: np.ndarray, weights: Mapping[str, float]) -> dict[str, int]:
    """Tokens per weighted source; ``codes``: :func:`.origins.origin_codes` in ``weights`` order."""
    tokens = concat_column(signatures, TOKENS, np.int64)
    return {name: int(tokens[codes == i].sum()) for i, name in enumerate(weights)}


def source_demand(spec: TokenMixSpec) -> dict[str, float]:
    """The tokens each source is asked for: its share of every phase's budget, summed."""
    shares = [_shares(phase.weights, spec.weights) for phase in spec.phases]
    return {n: sum(phase.budget * sh[n] for phase, sh in zip(spec.phases, shares)) for n in spec.weights}


def resolve_by_tokens(spec: TokenMixSpec, signatures: list[pa.Table],
                      codes: np.ndarray) -> tuple[list[BarrierDecision], dict[str, Any]]:
    """Decisions per shard, and the summary the manifest records; ``codes``: each document's
    :func:`.origins.origin_codes` in ``spec.weights`` order."""
    p = spec
    ranks, tokens = concat_column(signatures, ORDER, np.uint64), concat_column(signatures, TOKENS, np.int64)
    sources = {
        name: SourceTokens(name, rows := by_seeded_order(ranks, np.flatnonzero(codes == i)), tokens[rows])
        for i, name in enumerate(p.weights)
    }
    available = {name: src.available for name, src in sources.items()}
    phases = p.phases
    phase_shares = [_shares(phase.weights, p.weights) for phase in phases]
    budgets = [phase.budget for phase in phases]
    demand = source_demand(p)
    max_epochs = dict(p.max_epochs)
    rescaled = None
    short = [n for n in p.weights if demand[n] > 0 and demand[n] > max_epochs[n] * available[n]]
    if short and p.on_short == "error":
        name = short[0]
        raise TokenMixError(
            f"mix: source {name!r} has {available[name]:,} tokens, but its share "
            f"({demand[name] / sum(budgets):.1%} of {sum(budgets):,.0f} tokens = {demand[name]:,.0f}) "
            f"needs {demand[name] / max(available[name], 1):.2f} epochs, over max_epochs "
            f"{max_epochs[name]:g}; lower target_tokens or its weight, raise max_epochs, or set "
            "on_short: rescale"
        )
    if short:
        asked = sum(budgets)
        new = rescale_shares({n: demand[n] / asked for n in p.weights}, available, asked, max_epochs)
        factor = {n: (new[n] * asked / demand[n]) if demand[n] else 0.0 for n in p.weights}
        rescaled = {
            "short_sources": short,
            "requested_tokens": {n: demand[n] for n in p.weights},
            "effective_tokens": {n: demand[n] * factor[n] for n in p.weights},
            "reached_target": bool(abs(sum(new.values()) - 1) < 1e-9),
        }
        demand = {n: demand[n] * factor[n] for n in p.weights}
    else:
        factor = {n: 1.0 for n in p.weights}
    plans = {}
    for name, src in sources.items():
        targets = [b * sh[name] * factor[name] for b, sh in zip(budgets, phase_shares)]
        try:
            plans[name] = plan_source(src, targets, max_epochs[name])
        except BudgetError as error:
            raise TokenMixError(f"mix: {error}") from None
    summary = _token_summary(p, phases, plans, rescaled)
    return _token_decisions(signatures, plans, [ph.name for ph in phases], p.with_phases, summary), summary


def _shares(weights: Mapping[str, float], every: Mapping[str, float] | None = None) -> dict[str, float]:
    names = list(every or weights)
    weight_sum = sum(weights.get(n, 0) for n in names)
    return {n: weights.get(n, 0) / weight_sum for n in names}


def _token_summary(p: TokenMixSpec, phases: list[Phase], plans: dict[str, SourcePlan],
                   rescaled: dict[str, Any] | None) -> dict[str, Any]:
    origins = {}
    for name, plan in plans.items():
        src = plan.source
        copies = sum(plan.copies) if plan.copies else np.zeros(len(src.rows), np.int64)
        in_phases = sum((c > 0).astype(np.int64) for c in plan.copies) if plan.copies else copies
        origins[name] = {
            "weight": p.weights[name],
            "tokens_available": src.available,
            "tokens_taken": int((copies * src.tokens).sum()),
            "epochs": round(plan.epochs, 6),
            "max_epochs": p.max_epochs[name],
            "documents_available": int(len(src.rows)),
            "documents_selected": int((copies > 0).sum()),
            "documents_output": int(copies.sum()),
            "documents_repeated": int((copies > 1).sum()),
            "documents_in_several_phases": int((in_phases > 1).sum()),
        }
    phase_rows = []
    for i, phase in enumerate(phases):
        per_source = {
            name: {
                "tokens": int((plan.copies[i] * plan.source.tokens).sum()),
                "documents": int(plan.copies[i].sum()),
                "target_tokens": float(plan.targets[i]),
            }
            for name, plan in plans.items()
        }
        phase_rows.append({
            "name": phase.name,
            "budget_tokens": phase.budget,
            "tokens": sum(v["tokens"] for v in per_source.values()),
            "documents": sum(v["documents"] for v in per_source.values()),
            "sources": per_source,
        })
    return {
        "by": "tokens",
        "target_tokens": p.target,
        "target_given": p.target_given,
        "seed": p.seed,
        "on_short": p.on_short,
        "rescaled": rescaled,
        "tokens": sum(o["tokens_taken"] for o in origins.values()),
        "origins": origins,
        "phases": phase_rows if p.with_phases else [],
    }


def _token_decisions(signatures: list[pa.Table], plans: dict[str, SourcePlan], phase_names: list[str],
                     with_phases: bool, summary: dict[str, Any]) -> list[BarrierDecision]:
    drops = Drops()
    repeats: dict[int, int] = {}
    phase_copies: dict[int, str] = {}
    for name, plan in plans.items():
        numbers = summary["origins"][name]
        detail = (
            f"origin={name}: selected {numbers['documents_selected']} of {numbers['documents_available']} "
            f"documents ({numbers['tokens_taken']:,} of {numbers['tokens_available']:,} tokens)"
        )
        total = sum(plan.copies) if plan.copies else np.zeros(len(plan.source.rows), np.int64)
        per_phase = np.stack(plan.copies, axis=1) if plan.copies else np.zeros((len(plan.source.rows), 0), np.int64)
        rows = plan.source.rows
        drops.add(rows[total == 0], "mix_not_selected", detail=detail)
        if with_phases:
            chosen = np.flatnonzero(total > 0)
            for row, phases in zip(rows[chosen].tolist(), per_phase[chosen].tolist()):
                phase_copies[row] = json.dumps({n: c for n, c in zip(phase_names, phases) if c})
        else:
            repeated = total > 1
            repeats.update(zip(rows[repeated].tolist(), total[repeated].tolist()))
    sizes = [len(s) for s in signatures]
    decisions = shard_decisions(sizes, drops, repeats)
    if with_phases:
        offset = 0
        for decision, size in zip(decisions, sizes):
            decision.fields = {PHASE_COPIES: [phase_copies.get(offset + i) for i in range(size)]}
            offset += size
    return decisions


def apply_with_phases(batch: pa.Table, decision: BarrierDecision, order: list[str], operator: str,
                      otherwise: Callable[[pa.Table, BarrierDecision], StepResult]) -> StepResult:
    """Kept rows, once per copy in each phase (copies after the first get ids ``<id>#2``...),
    with the ``phase`` field; phases in ``order``. Without phases: ``otherwise``."""
    copies_json = (decision.fields or {}).get(PHASE_COPIES)
    if copies_json is None:
        return otherwise(batch, decision)
    decisions = decision.drop.decisions(len(batch))
    result = split_by_decisions(batch, decisions, operator)
    indices: list[int] = []
    phases: list[str] = []
    ids: list[str] = []
    doc_ids = batch.column(doc.ID).to_pylist()
    for row, text in enumerate(copies_json):
        if decisions[row] is not None or text is None:
            continue
        copy = 0
        per_phase = json.loads(text)
        for phase in order:
            for _ in range(per_phase.get(phase, 0)):
                copy += 1
                indices.append(row)
                phases.append(phase)
                ids.append(doc_ids[row] if copy == 1 else f"{doc_ids[row]}#{copy}")
    kept = batch.take(pa.array(indices, pa.int64()))
    kept = doc.set_column(kept, doc.ID, pa.array(ids, pa.string()))
    result.kept = doc.set_column(kept, PHASE, pa.array(phases, pa.string()))
    return result

