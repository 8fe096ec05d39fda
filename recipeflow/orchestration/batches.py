"""Shards grouped into batches, so a stage costs a bounded number of Prefect tasks.

Prefect spends a fixed cost on every task run (about 0.2 s here: creating the run, its states,
its cache lookup, pickling it to a worker), in the flow run's process and in the server. With
one task per shard that cost grows with the shard count, and a crawl has hundreds of thousands
of shards. A stage therefore runs as a few tasks (``run.tasks_per_stage``, by default four per
worker: enough to balance the load, few enough to cost nothing), each doing a contiguous run of
shards, the runs' shares of the documents tapering so the last ones are small. Every shard
keeps its own cache entry underneath, so reuse, resume after a kill and the output bytes are
those of one task per shard; results come back in shard order. Shards whose result is stored are batched apart from those still to do, and the
largest batches to do go first, so that no worker is left with a long tail (see
``Work.map_batches``).
"""

from __future__ import annotations

import bisect
from typing import Sequence

from recipeflow.recipe.models import RunSpec

TASKS_PER_WORKER = 4  # tasks per stage per worker, when run.tasks_per_stage is not set


def tasks_per_stage(run: RunSpec) -> int:
    """How many Prefect tasks one stage (or one barrier's signatures) is cut into, at most."""
    return run.tasks_per_stage or TASKS_PER_WORKER * run.workers


def spans(sizes: Sequence[int], batches: int) -> list[tuple[int, int]]:
    """Shards of ``sizes`` (documents) cut into ``min(batches, shards)`` contiguous
    ``[start, end)`` runs in shard order, of tapering shares of the documents: with ``B`` runs
    the ``k``-th (from 0) gets ``(B - k) / (B (B + 1) / 2)`` of them, each cut where the running
    total is nearest its share. Workers take the runs in order, largest first, so the last
    runs are the smallest and no worker finishes long after the others (equal runs left up to
    one whole run on a single worker at the end: 2 s of a 30 s tokenize run on two cores)."""
    count = len(sizes)
    batches = max(1, min(batches, count))
    totals = [0]
    for size in sizes:
        totals.append(totals[-1] + max(size, 1))  # an empty shard still costs a read
    bounds = [0]
    for i in range(1, batches):
        left = batches - i  # runs after this cut: they get the smallest shares
        share = totals[-1] * (1 - left * (left + 1) / (batches * (batches + 1)))
        cut = bisect.bisect_left(totals, share)
        if cut > 0 and share - totals[cut - 1] <= totals[cut] - share:
            cut -= 1
        # At least one shard in this run and in each run after it.
        bounds.append(min(max(cut, bounds[-1] + 1), count - (batches - i)))
    bounds.append(count)
    return [(bounds[i], bounds[i + 1]) for i in range(batches) if bounds[i + 1] > bounds[i]]


def batch_name(label: str, names: list[str]) -> str:
    """A task run's name: what it does, then its shard's name, or the first and last."""
    if len(names) == 1:
        return f"{label} · {names[0]}"
    return f"{label} · {names[0]} … {names[-1]} ({len(names)} shards)"
