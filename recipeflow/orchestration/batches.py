"""Shards grouped into batches, so a stage costs a bounded number of Prefect tasks.

Prefect spends a fixed cost on every task run (about 0.2 s here: creating the run, its states,
its cache lookup, pickling it to a worker), in the flow run's process and in the server. With
one task per shard that cost grows with the shard count, and a crawl has hundreds of thousands
of shards. A stage therefore runs as a few tasks (``run.tasks_per_stage``, by default four per
worker: enough to balance the load, few enough to cost nothing), each doing a contiguous run of
shards. Every shard keeps its own cache entry underneath, so reuse, resume after a kill and the
output bytes are those of one task per shard; results come back in shard order. Shards whose
result is stored are batched apart from those still to do (see ``Work.map_batches``).
"""

from __future__ import annotations

from recipeflow.recipe.models import RunSpec

TASKS_PER_WORKER = 4  # tasks per stage per worker, when run.tasks_per_stage is not set


def tasks_per_stage(run: RunSpec) -> int:
    """How many Prefect tasks one stage (or one barrier's signatures) is cut into, at most."""
    return run.tasks_per_stage or TASKS_PER_WORKER * run.workers


def spans(count: int, batches: int) -> list[tuple[int, int]]:
    """``count`` shards cut into at most ``batches`` contiguous ``[start, end)`` runs whose
    sizes differ by at most one, in shard order."""
    batches = max(1, min(batches, count))
    bounds = [i * count // batches for i in range(batches + 1)]
    return [(bounds[i], bounds[i + 1]) for i in range(batches) if bounds[i + 1] > bounds[i]]


def batch_name(label: str, names: list[str]) -> str:
    """A task run's name: what it does, then its shard's name, or the first and last."""
    if len(names) == 1:
        return f"{label} · {names[0]}"
    return f"{label} · {names[0]} … {names[-1]} ({len(names)} shards)"
