"""``ray_bts_minhash_deduplicator``: Data-Juicer's Ray MinHash deduplicator (BTS union-find),
as the same decisions on recipeflow's sharded barrier.

Data-Juicer's Ray operator computes the same MinHash values as its
``document_minhash_deduplicator`` (SHA-1 of each shingle, NumPy ``RandomState(42)``
permutations modulo 2**61 - 1, low 32 bits), puts every band into a hash table, unions the
documents of each bucket, and keeps the smallest id of each component, that is the first
document in input order. Documents without shingles all share one bucket. Those are exactly
``document_minhash_deduplicator``'s decisions, so this operator is that one with Data-Juicer's
Ray parameters accepted: the scheduling knobs (``union_find_parallel_num``,
``union_threshold``, the pending-task and batch sizes, ``memory_per_sample``) tune Ray actors
that recipeflow does not use and change no decision; recipeflow's own ``partitions`` splits
the band-bucket step.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from recipeflow.operators.document_minhash_deduplicator import (
    DocumentMinhashDeduplicator,
    DocumentMinhashDeduplicatorParams,
)
from recipeflow.operators.registry import register

_RAY_KNOB = "Data-Juicer's Ray scheduling setting: accepted, changes no decision (recipeflow schedules its own tasks)."


class RayBtsMinhashDeduplicatorParams(DocumentMinhashDeduplicatorParams):
    union_find_parallel_num: int | Literal["auto"] = Field("auto", description=_RAY_KNOB)
    union_threshold: int | None = Field(256, description=_RAY_KNOB)
    max_pending_edge_buffer_task: int | None = Field(20, description=_RAY_KNOB)
    num_edge_buffer_task_returns: int | None = Field(10, description=_RAY_KNOB)
    max_pending_filter_tasks: int | None = Field(20, description=_RAY_KNOB)
    num_filter_task_returns: int | None = Field(10, description=_RAY_KNOB)
    merge_batch_size: int | None = Field(1000, description=_RAY_KNOB)
    minhash_batch_size: int | Literal["auto"] | None = Field("auto", description=_RAY_KNOB)
    memory_per_sample: float | None = Field(0.1, description=_RAY_KNOB)


@register
class RayBtsMinhashDeduplicator(DocumentMinhashDeduplicator):
    """Data-Juicer's ray_bts_minhash_deduplicator: MinHash-LSH near-duplicates, same decisions.

    Accepts Data-Juicer's parameters (those of ``document_minhash_deduplicator`` plus the Ray
    scheduling knobs, which change nothing here) and decides as Data-Juicer's BTS union-find
    does: documents sharing a band bucket are joined, the first of each component in input
    order is kept. Runs on recipeflow's engine (any runner, Ray included via prefect-ray).
    Rejections: reason ``near_duplicate``.
    """

    name = "ray_bts_minhash_deduplicator"
    version = "1+datasketch2-legacy"
    Params = RayBtsMinhashDeduplicatorParams
