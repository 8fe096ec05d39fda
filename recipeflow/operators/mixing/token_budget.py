"""Token budgets of a mix: how many tokens each source gives to each phase, and which
documents (and how many copies of each) make them up.

Every source lists its documents once in a seeded order (xxh3 of (seed, id): the same for any
sharding, worker count or executor). Its *stream* is that order repeated epoch after epoch;
the phases, in order, take consecutive stretches of the stream whose token sums are closest to
their targets. So

* a document repeats only when its source's total demand is larger than the source (the stream
  wraps around), and across phases only then too;
* a refresh that adds documents changes only what it must: a new document takes its place in
  the seeded order, and the stretch each phase takes moves by about the new documents' tokens;
  documents far from a cut keep their phase and copy count.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np


class BudgetError(ValueError):
    """A source cannot give its share within ``max_epochs``."""


@dataclass
class SourceTokens:
    """One source's documents in seeded order, with their token counts."""

    name: str
    rows: np.ndarray  # global row numbers, seeded order
    tokens: np.ndarray  # n_tokens of each of those rows

    @property
    def available(self) -> int:
        return int(self.tokens.sum())


@dataclass
class SourcePlan:
    """What one source gives: per phase, the target and the copies of each row."""

    source: SourceTokens
    targets: list[float]  # per phase, tokens asked
    copies: list[np.ndarray] = field(default_factory=list)  # per phase, copies per row (seeded order)

    @property
    def demand(self) -> float:
        return float(sum(self.targets))

    @property
    def epochs(self) -> float:
        available = self.source.available
        taken = sum(int((c * self.source.tokens).sum()) for c in self.copies)
        return taken / available if available else 0.0


def rescale_shares(shares: dict[str, float], available: dict[str, int], total: float,
                   max_epochs: dict[str, float]) -> dict[str, float]:
    """Shares that keep every source within ``max_epochs`` × its tokens: capped sources give
    what they can; the rest of ``total`` goes to the others in proportion to their shares
    (repeated until nothing more is capped). The result may sum to less than 1 when every
    source is capped: then the total itself cannot be reached."""
    capped: dict[str, float] = {}
    free = {name: s for name, s in shares.items() if s > 0}
    while True:
        left = total - sum(capped[n] * total for n in capped)
        weight = sum(free.values())
        newly = {
            name: max_epochs[name] * available[name] / total
            for name, s in free.items()
            if weight > 0 and left * s / weight > max_epochs[name] * available[name]
        }
        if not newly:
            break
        capped.update(newly)
        for name in newly:
            del free[name]
    left_share = 1 - sum(capped.values())
    weight = sum(free.values())
    result = {name: 0.0 for name in shares}
    result.update(capped)
    for name, s in free.items():
        result[name] = left_share * s / weight
    return result


def plan_source(source: SourceTokens, targets: list[float], max_epochs: float) -> SourcePlan:
    """Copies per row per phase: consecutive stretches of the source's stream (its seeded
    order, repeated), each as close to its phase's target as whole documents allow."""
    plan = SourcePlan(source, targets)
    n = len(source.rows)
    demand = plan.demand
    available = source.available
    if demand > 0 and available == 0:
        raise BudgetError(f"source {source.name!r} has no tokens, but {demand:,.0f} are asked of it")
    if available and demand / available > max_epochs + 1e-9:
        raise BudgetError(
            f"source {source.name!r} has {available:,} tokens; its share asks {demand:,.0f} "
            f"tokens = {demand / available:.2f} epochs, over max_epochs {max_epochs:g}"
        )
    if n == 0:
        plan.copies = [np.zeros(0, np.int64) for _ in targets]
        return plan
    passes = max(1, math.ceil(demand / available) + 1) if available else 1
    stream_tokens = np.tile(source.tokens, passes)
    ends = np.cumsum(stream_tokens)
    # A document is taken when at least half of it fits under the cut (closest total).
    midpoints = ends - stream_tokens / 2
    start = 0
    cut_at = 0.0
    for target in targets:
        cut_at += target
        stop = int(np.searchsorted(midpoints, cut_at, side="right"))
        stop = max(stop, start)
        visited = np.arange(start, stop) % n
        plan.copies.append(np.bincount(visited, minlength=n).astype(np.int64))
        start = stop
    return plan
