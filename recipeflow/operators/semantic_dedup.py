"""``semantic_dedup``: remove documents whose embeddings nearly coincide (SemDeDup / D4).

Reads the embeddings ``embed`` wrote (kept or not). A barrier:

1. **signatures** per shard: each document's id, its embedding as float16 (``2 x dim`` bytes:
   768 bytes for MiniLM's 384 dimensions; cosine similarities move by about 1e-3 at most,
   far below any useful ``eps``) and, with ``keep: score``, its score;
2. **resolve**: spherical k-means (faiss; on a GPU when faiss sees one) over a seeded sample
   of at most ``256 x clusters`` embeddings, every document assigned to its nearest centroid;
   then cluster by cluster (float32 copies of one cluster at a time, similarities in blocks
   of rows), documents are ranked by ``keep`` and a document whose cosine similarity to a
   better-ranked one of its cluster is at least ``1 - eps`` is a duplicate of the most
   similar such document (SemDeDup's rule: compared with every better-ranked document,
   kept or not). Each duplicate leads, through the document it duplicates, to a kept one:
   the id of that document is its ``dup_cluster_id``;
3. per shard, duplicates are dropped (reason ``semantic_duplicate``; ``mode: annotate`` drops
   nothing) and every document gets ``semantic_cluster`` (its k-means cluster),
   ``dup_cluster_id`` and ``dup_cluster_size`` (as ``minhash_dedup`` writes them).

Memory: the float16 signatures of the node, plus one cluster's float32 vectors and one block
of its similarity rows (``block_rows x cluster size``): bounded by the largest cluster, not
by the corpus. Documents without an embedding are kept, in no cluster.

With ``scope: history``, the signatures of every document the dataset published before lead
the run's shards (:meth:`SemanticDedup.as_history`) and rank first in their clusters: a
refresh drops new documents that duplicate published ones, embeds only the new documents
(the published ones' vectors are the stored float16 signatures), and runs k-means again on a
sample of at most ``256 x clusters`` vectors (centroids are not stored).
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
import pyarrow as pa
from pydantic import Field, model_validator

from recipeflow.operators import document as doc
from recipeflow.operators.base import BarrierDecision, Rejection
from recipeflow.operators.dedup.deduplicator import Deduplicator
from recipeflow.operators.dedup.history import SIGNATURE_NEUTRAL_PARAMS, ScopeParams
from recipeflow.operators.models.embedding_models import embedding_column, embeddings_matrix
from recipeflow.operators.registry import register
from recipeflow.operators.top_k import concat_column, field_values

SEMANTIC_CLUSTER = "semantic_cluster"
CLUSTER_ID = "dup_cluster_id"
CLUSTER_SIZE = "dup_cluster_size"
REASON = "semantic_duplicate"

_ID, _VECTOR, _PRIORITY, _HISTORY = "id", "vector", "priority", "history"
# Parameters that decide which documents are duplicates but not what a signature holds:
# stored signatures made under other values still serve as history.
_RESOLVE_ONLY_PARAMS = frozenset({"eps", "clusters", "iterations", "seed", "device"})
_BLOCK_ROWS = 1024


class SemanticDedupParams(ScopeParams):
    embedding_field: str = Field(
        "embedding", description="The embeddings `embed` wrote (its `field`), kept or not.")
    eps: float = Field(
        0.1, gt=0, lt=1, description="Documents whose cosine similarity is at least 1 - eps "
        "are duplicates (SemDeDup's epsilon).")
    clusters: int | None = Field(
        None, ge=1, description="k-means clusters. Default: the square root of the number of "
        "documents (rounded). More clusters: less work per cluster, a few more duplicates "
        "missed across cluster borders.")
    keep: Literal["closest", "farthest", "score", "first"] = Field(
        "farthest", description="Which document of a group survives: `farthest` from its "
        "cluster's centroid (SemDeDup's default: keeps hard examples), `closest` to it "
        "(prototypical ones), the highest `score_field`, or the `first` in input order. Ties "
        "go to the earlier document.")
    score_field: str | None = Field(None, description="With keep: score, the numeric field.")
    iterations: int = Field(20, ge=1, description="k-means iterations.")
    seed: int = Field(1234, ge=0, lt=2**31, description="Seed of the k-means sample and "
                      "initialisation.")
    device: Literal["auto", "cpu", "gpu"] = Field(
        "auto", description="Where k-means runs: auto uses a GPU when faiss has one.")
    mode: Literal["drop", "annotate"] = Field(
        "drop", description="`annotate` drops nothing and only writes the fields.")

    @model_validator(mode="after")
    def _score_field_with_score(self):
        if (self.keep == "score") != (self.score_field is not None):
            raise ValueError("keep: score needs score_field, and score_field goes with keep: score")
        return self


def _kmeans(vectors16: np.ndarray, clusters: int, iterations: int, seed: int, device: str):
    """Spherical k-means centroids (float32) trained on a seeded sample."""
    import faiss

    n, dim = vectors16.shape
    sample = min(n, 256 * clusters)
    rows = np.sort(np.random.default_rng(seed).choice(n, sample, replace=False)) if sample < n else np.arange(n)
    train = _unit(vectors16[rows].astype(np.float32))
    gpus = faiss.get_num_gpus() if hasattr(faiss, "get_num_gpus") else 0
    if device == "gpu" and gpus == 0:
        raise ValueError("semantic_dedup: `device: gpu`, but faiss sees no GPU (faiss-cpu has no "
                         "GPU support): install a faiss build with CUDA on the GPU pool, or use "
                         "device auto")
    use_gpu = gpus > 0 and device != "cpu"
    kmeans = faiss.Kmeans(dim, clusters, niter=iterations, seed=seed, spherical=True,
                          gpu=bool(use_gpu), verbose=False, max_points_per_centroid=256,
                          min_points_per_centroid=1)
    kmeans.train(train)
    return kmeans.centroids.astype(np.float32), kmeans.index


def _unit(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


@register
class SemanticDedup(Deduplicator):
    """Remove semantic near-duplicates: k-means over embeddings, then cosine >= 1 - eps within each cluster (SemDeDup).

    Needs ``embed`` before it. The kept document of each group is chosen by ``keep``
    (farthest from the centroid by default, as SemDeDup; or closest, a score, the first);
    every document gets ``semantic_cluster``, ``dup_cluster_id`` (the kept document's id)
    and ``dup_cluster_size``. Duplicates are rejected with ``semantic_duplicate``, the
    similarity as the statistic and the kept document in the detail.
    """

    name = "semantic_dedup"
    version = "1"
    Params = SemanticDedupParams

    last_summary: dict[str, Any] | None = None

    # -- scope: history (the engine stores signatures with each version and hands them back) --

    def history_signature_params(self) -> dict[str, Any] | None:
        if self.params.scope != "history":
            return None
        dumped = self.params.model_dump(mode="json")
        return {k: v for k, v in dumped.items()
                if k not in SIGNATURE_NEUTRAL_PARAMS | _RESOLVE_ONLY_PARAMS}

    def as_history(self, signatures: pa.Table) -> pa.Table:
        """Published documents: ranked before every new one in their cluster, so a new
        document is dropped as their duplicate, never the reverse. Their embeddings come from
        the stored signatures: a refresh embeds only new documents."""
        return doc.set_column(signatures, _HISTORY, pa.array([True] * len(signatures), pa.bool_()))

    def signatures(self, batch: pa.Table) -> pa.Table:
        p = self.params
        column = embedding_column(batch.column_names, p.embedding_field)
        if column is None:
            if len(batch) == 0:
                return pa.table({_ID: pa.array([], pa.string()), _VECTOR: pa.array([], pa.binary())})
            raise KeyError(
                f"semantic_dedup: the documents have no embeddings `{p.embedding_field}` (nor the "
                f"working column `__{p.embedding_field}`); put `embed` before semantic_dedup, or "
                "set embedding_field to the field embed wrote")
        vectors = embeddings_matrix(batch.column(column), None, self.name, p.embedding_field)
        present = ~np.isnan(vectors).any(axis=1)
        blobs = [v.astype(np.float16).tobytes() if ok else None for v, ok in zip(vectors, present)]
        columns: dict[str, Any] = {_ID: batch.column(doc.ID), _VECTOR: pa.array(blobs, pa.binary())}
        if p.keep == "score":
            columns[_PRIORITY] = field_values(batch, p.score_field, self.name)
        return pa.table(columns)

    def resolve(self, signatures: list[pa.Table]) -> list[BarrierDecision]:
        p = self.params
        sizes = [len(s) for s in signatures]
        ids = [i for s in signatures for i in s.column(_ID).to_pylist()]
        n = len(ids)
        blobs = pa.chunked_array([s.column(_VECTOR) for s in signatures] if n else [], pa.binary())
        present = np.flatnonzero(~blobs.is_null().to_numpy(zero_copy_only=False)) if n else np.array([], np.int64)
        cluster_of = np.full(n, -1, np.int64)
        root = np.arange(n)  # the kept document each document leads to
        similarity = np.full(n, np.nan)
        if len(present):
            vectors16 = self._vectors(blobs, present)
            clusters = min(p.clusters or max(1, round(math.sqrt(len(present)))), len(present))
            centroids, index = _kmeans(vectors16, clusters, p.iterations, p.seed, p.device)
            assigned, centroid_similarity = self._assign(vectors16, index)
            cluster_of[present] = assigned
            priority = self._priority(signatures, present, centroid_similarity)
            published = _history_flags(signatures)[present]
            for members in _groups(assigned):
                self._dedup_cluster(vectors16[members], present[members], priority[members],
                                    published[members], root, similarity)
        else:
            clusters = 0
        duplicate = root != np.arange(n)
        size = np.bincount(root, minlength=n) if n else np.array([], np.int64)
        decisions = self._decisions(sizes, ids, cluster_of, root, size, similarity, duplicate)
        self.last_summary = {"documents": n, "with_embedding": int(len(present)), "clusters": int(clusters),
                             "duplicates": int(duplicate.sum()), "eps": p.eps, "keep": p.keep,
                             "mode": p.mode}
        return decisions

    @staticmethod
    def _vectors(blobs: pa.ChunkedArray, present: np.ndarray) -> np.ndarray:
        """The float16 matrix of the documents that have an embedding."""
        valid = blobs.combine_chunks().take(pa.array(present, pa.int64()))
        data = b"".join(valid.to_pylist())
        vectors = np.frombuffer(data, np.float16)
        return vectors.reshape(len(present), -1)

    @staticmethod
    def _assign(vectors16: np.ndarray, index) -> tuple[np.ndarray, np.ndarray]:
        """Nearest centroid of every document (and the cosine to it), in blocks."""
        labels = np.empty(len(vectors16), np.int64)
        cosine = np.empty(len(vectors16), np.float64)
        for start in range(0, len(vectors16), 65536):
            block = _unit(vectors16[start:start + 65536].astype(np.float32))
            sims, nearest = index.search(block, 1)
            labels[start:start + len(block)] = nearest[:, 0]
            cosine[start:start + len(block)] = sims[:, 0]
        return labels, cosine

    def _priority(self, signatures: list[pa.Table], present: np.ndarray,
                  centroid_similarity: np.ndarray) -> np.ndarray:
        """Higher wins; ties go to the earlier document."""
        keep = self.params.keep
        if keep == "closest":
            return centroid_similarity
        if keep == "farthest":
            return -centroid_similarity
        if keep == "score":
            scores = concat_column(signatures, _PRIORITY, np.float64)[present]
            return np.where(np.isnan(scores), -np.inf, scores)
        return np.zeros(len(present))

    def _dedup_cluster(self, vectors16: np.ndarray, positions: np.ndarray, priority: np.ndarray,
                       published: np.ndarray, root: np.ndarray, similarity: np.ndarray) -> None:
        """SemDeDup within one cluster: rank (published documents first), then compare each
        with the better-ranked."""
        order = np.lexsort((positions, -priority, ~published))
        x = _unit(vectors16[order].astype(np.float32))
        ranked = positions[order]
        threshold = 1.0 - self.params.eps
        for start in range(1, len(x), _BLOCK_ROWS):
            block = x[start:start + _BLOCK_ROWS]
            sims = block @ x[:start + len(block)].T  # against every better-ranked row
            rows = np.arange(len(block))
            sims[rows[:, None] <= (np.arange(sims.shape[1])[None, :] - start)] = -np.inf
            best = np.argmax(sims, axis=1)
            best_sim = sims[rows, best]
            for row in np.flatnonzero(best_sim >= threshold):
                me = ranked[start + row]
                similarity[me] = best_sim[row]
                root[me] = root[ranked[best[row]]]  # better-ranked: its root is final already

    def _decisions(self, sizes, ids, cluster_of, root, size, similarity, duplicate) -> list[BarrierDecision]:
        p = self.params
        decisions = []
        start = 0
        for shard_size in sizes:
            rows = np.arange(start, start + shard_size)
            drop = {}
            if p.mode == "drop":
                for row in np.flatnonzero(duplicate[rows]):
                    g = int(rows[row])
                    drop[int(row)] = Rejection(
                        REASON, "cosine_similarity", float(similarity[g]),
                        f"duplicate of {ids[root[g]]} (semantic cluster {int(cluster_of[g])}, eps={p.eps})")
            fields = {
                SEMANTIC_CLUSTER: pa.array([None if c < 0 else int(c) for c in cluster_of[rows]], pa.int64()),
                CLUSTER_ID: pa.array([ids[r] for r in root[rows]], pa.string()),
                CLUSTER_SIZE: pa.array(size[root[rows]], pa.int64()),
            }
            decisions.append(BarrierDecision(drop=drop, fields=fields))
            start += shard_size
        return decisions


def _history_flags(signatures: list[pa.Table]) -> np.ndarray:
    """Whether each document is a published one (from :meth:`SemanticDedup.as_history`)."""
    parts = [s.column(_HISTORY).to_numpy(zero_copy_only=False).astype(bool) if _HISTORY in s.column_names
             else np.zeros(len(s), bool) for s in signatures]
    return np.concatenate(parts) if parts else np.zeros(0, bool)


def _groups(labels: np.ndarray) -> list[np.ndarray]:
    """Indices of each label's members, in index order, labels ascending."""
    order = np.argsort(labels, kind="stable")
    bounds = np.flatnonzero(np.diff(labels[order])) + 1
    return [g for g in np.split(order, bounds) if len(g)]
