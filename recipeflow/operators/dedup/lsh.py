"""MinHash-LSH deduplication as a partitioned barrier (shared by ``minhash_dedup`` and
``document_minhash_deduplicator``).

The four steps of FineWeb's MinHash deduplication, mapped onto the barrier phases so that no
step holds the corpus's text:

1. **signatures** (per shard, in parallel): shingles -> MinHash (datasketch ``MinHash.bulk``)
   -> one 64-bit key per band (xxh3 of the band's ``rows_per_band`` hash values). A shard's
   signature file holds, per document, its id, ``num_bands`` keys (8 bytes each), and only when
   needed a keep priority (8 bytes) and, for verification, a bottom-k sketch (the ``k``
   smallest 32-bit shingle hashes: the whole shingle set of a short document).
2. **band buckets** (``partitions`` tasks, in parallel): partition ``p`` owns the bands
   ``b`` with ``b % partitions == p``; in each band, documents with equal keys share a bucket,
   and every member is paired with the bucket's first document. Each partition emits its
   duplicate pairs as adjacency lists: one row per document in a pair (global position, id,
   priority), listing the later documents it is paired with.
3. **clusters** (``merge``, one task): connected components of all pairs (a vectorized
   union-find); each cluster keeps one document (the keep policy) and knows its size.
4. **filter** (per shard): the engine drops the others and writes ``dup_cluster_id`` (the
   kept document's id) and ``dup_cluster_size`` into every document.

Nothing depends on how many workers or partitions run: positions follow input order, and the
union of the pairs of all bands is the same however the bands are split.

One module because the signature layout, the band partitioning and the union-find resolution share one compact column format; split, each half would have to restate it.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Literal, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import xxhash

from recipeflow.operators import document as doc
from recipeflow.operators.dedup.keep import (
    PRIORITY,
    duplicate_of,
    first_per_group,
    priorities,
    shard_offsets,
    to_shard_rows,
)
from recipeflow.operators.base import BarrierDecision, SignatureSource, StepResult
from recipeflow.operators.drops import Drops
from recipeflow.operators.dedup.deduplicator import Deduplicator

CLUSTER_ID = "dup_cluster_id"
CLUSTER_SIZE = "dup_cluster_size"
SKETCH = "sketch"
# Partition results: one row per document that is in a pair, with the later documents it is
# paired with (ids travel once per document, not once per pair).
NODE, LINKS = "node", "links"
# Bottom-k sketches are padded with this value (a real hash equal to it is made one less).
_PAD = np.uint32(0xFFFFFFFF)
_VERIFY_CHUNK = 1 << 14  # pairs compared at once (bounds memory: chunk x 2k x 4 bytes)
_LOW32 = np.uint64(0xFFFFFFFF)


def band_column(band: int) -> str:
    return f"band_{band:03d}"


@dataclass(frozen=True)
class LshConfig:
    """How signatures are made and compared."""

    num_bands: int
    rows_per_band: int
    seed: int
    scheme: Literal["legacy"]  # datasketch's permutation scheme (FineWeb's and Data-Juicer's)
    # How a shingle becomes MinHash's input: it already is a 32-bit hash ("identity"), or it is
    # bytes hashed with datasketch's default SHA-1 (what Data-Juicer does).
    shingle_hash: Literal["identity", "sha1"] = "identity"
    # Documents without shingles: never duplicates (False), or all duplicates of each other,
    # as Data-Juicer's all-maximum signature makes them (True).
    empty_documents_collide: bool = False
    # Estimated Jaccard (from bottom-k sketches) a candidate pair must reach; None: every
    # pair that shares a band bucket is a duplicate pair (FineWeb, Data-Juicer).
    verify_threshold: float | None = None
    sketch_size: int = 256

    @property
    def num_perm(self) -> int:
        return self.num_bands * self.rows_per_band

    def describe(self) -> dict[str, Any]:
        """Recorded in the manifest (operator provenance)."""
        import datasketch

        return {
            "library": f"datasketch {datasketch.__version__}",
            "permutation_scheme": self.scheme,
            "shingle_hash": self.shingle_hash,
            "num_perm": self.num_perm,
            "seed": self.seed,
            "band_key": f"xxh3_64 of {self.rows_per_band} little-endian uint32 values",
            "index_bytes_per_document": self.num_bands * 8,
            "verification": (
                None
                if self.verify_threshold is None
                else f"Jaccard >= {self.verify_threshold} from bottom-{self.sketch_size} sketches"
            ),
        }


@dataclass
class Shingled:
    """What phase 1 makes of a batch's texts."""

    minhash_inputs: list[Sequence[Any]]  # per document: 32-bit hashes, or bytes for SHA-1
    has_shingles: np.ndarray  # bool per document
    sketches: list[np.ndarray] | None = None  # bottom-k sketches, when pairs are verified


def minhash_values(shingle_sets: Sequence[Sequence[Any]], config: LshConfig) -> np.ndarray:
    """MinHash values (documents x permutations, uint32), datasketch's ``MinHash.bulk``'s.

    The shingles are 32-bit integers (already hashed), computed here for a whole batch at once
    (:func:`legacy_minhash_values`), or, with ``shingle_hash: sha1``, bytes hashed with
    datasketch's default SHA-1 (what Data-Juicer does), through ``MinHash.bulk``.
    """
    if not shingle_sets:
        return np.zeros((0, config.num_perm), dtype=np.uint32)
    if config.shingle_hash == "identity":
        return legacy_minhash_values(shingle_sets, config)
    from datasketch import MinHash  # imported here: it takes scipy with it (~1 s)

    sketches = MinHash.bulk(shingle_sets, num_perm=config.num_perm, seed=config.seed, scheme=config.scheme)
    # Legacy values are below 2**32 by construction: the cast is exact.
    return np.stack([m.hashvalues for m in sketches]).astype(np.uint32)


_MERSENNE = np.uint64((1 << 61) - 1)
_LOW32 = np.uint64((1 << 32) - 1)
_BLOCK_ROWS = 2048  # shingles per block: a block's products stay in the CPU's cache


@functools.lru_cache(maxsize=8)
def _legacy_permutations(num_perm: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """datasketch's own (a, b) of the legacy scheme for this seed, as rows."""
    from datasketch import MinHash

    a, b = MinHash(num_perm=num_perm, seed=seed, scheme="legacy").permutations
    return a.astype(np.uint64).reshape(1, -1), b.astype(np.uint64).reshape(1, -1)


def legacy_minhash_values(shingle_sets: Sequence[Sequence[int]], config: LshConfig) -> np.ndarray:
    """datasketch's legacy-scheme values of 32-bit integer shingles, bit for bit (tested):
    ``(a * x + b)`` wrapping at 2**64, modulo the Mersenne prime 2**61 - 1, low 32 bits, the
    minimum per permutation (2**32 - 1 for a document without shingles).

    datasketch works one document at a time and divides; here the shingles of many documents
    go through each step together, in cache-sized blocks, and the modulo is the Mersenne
    reduction ``(x & p) + (x >> 61)``, then ``- p`` when that reaches ``p``."""
    a, b = _legacy_permutations(config.num_perm, config.seed)
    out = np.full((len(shingle_sets), config.num_perm), np.uint32((1 << 32) - 1), dtype=np.uint32)
    lengths = np.fromiter(map(len, shingle_sets), dtype=np.int64, count=len(shingle_sets))
    starts = np.zeros(len(shingle_sets) + 1, dtype=np.int64)
    np.cumsum(lengths, out=starts[1:])
    flat = np.concatenate([np.asarray(s, dtype=np.uint64) for s in shingle_sets])
    first = 0
    while first < len(shingle_sets):
        last = first + 1  # the documents [first, last) make one block (one, if it is long)
        while last < len(shingle_sets) and starts[last + 1] - starts[first] <= _BLOCK_ROWS:
            last += 1
        low, high = starts[first], starts[last]
        if high > low:
            products = flat[low:high, None] * a
            products += b
            values = products & _MERSENNE
            products >>= np.uint64(61)
            values += products
            np.subtract(values, _MERSENNE, out=values, where=values >= _MERSENNE)
            values &= _LOW32
            nonempty = lengths[first:last] > 0
            offsets = starts[first:last][nonempty] - low
            out[first:last][nonempty] = np.minimum.reduceat(values, offsets, axis=0)
        first = last
    return out


def band_keys(values: np.ndarray, config: LshConfig) -> np.ndarray:
    """One 64-bit key per (document, band): xxh3 of the band's values (documents x bands)."""
    width = config.rows_per_band * 4  # bytes of one band
    used = np.ascontiguousarray(values[:, : config.num_perm], dtype="<u4")
    raw = memoryview(used.tobytes())
    count = used.shape[0] * config.num_bands
    keys = np.fromiter(
        (xxhash.xxh3_64_intdigest(raw[i : i + width]) for i in range(0, count * width, width)),
        dtype=np.uint64,
        count=count,
    )
    return keys.reshape(used.shape[0], config.num_bands)


def bottom_k(shingle_hashes: np.ndarray, k: int) -> np.ndarray:
    """The ``k`` smallest distinct 32-bit shingle hashes (high halves), ascending: a sample of
    the shingle set that estimates Jaccard similarity (exactly, for sets smaller than ``k``)."""
    values = np.unique((shingle_hashes >> np.uint64(32)).astype(np.uint32))[:k]
    if len(values) and values[-1] == _PAD:  # keep the padding value free
        values[-1] = _PAD - 1
        values = np.unique(values)
    return values


def sketch_column(sketches: list[np.ndarray]) -> pa.Array:
    offsets = np.zeros(len(sketches) + 1, dtype=np.int32)
    offsets[1:] = np.cumsum([len(s) for s in sketches])
    values = np.concatenate(sketches).astype(np.uint32) if sketches else np.zeros(0, np.uint32)
    return pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), pa.array(values, pa.uint32()))


def signature_table(
    ids: pa.ChunkedArray | pa.Array,
    values: np.ndarray,
    has_shingles: np.ndarray,
    priority: pa.Array | None,
    sketches: list[np.ndarray] | None,
    config: LshConfig,
) -> pa.Table:
    """Phase 1 output of one batch: id, band keys (null for documents that never match),
    then priority and sketch when they are needed."""
    keys = band_keys(values, config)
    never_matches = ~has_shingles if not config.empty_documents_collide else np.zeros(len(values), bool)
    columns: dict[str, Any] = {doc.ID: ids}
    for band in range(config.num_bands):
        columns[band_column(band)] = pa.array(keys[:, band], type=pa.uint64(), mask=never_matches)
    if priority is not None:
        columns[PRIORITY] = priority
    if config.verify_threshold is not None:
        assert sketches is not None, "verification needs bottom-k sketches"
        columns[SKETCH] = sketch_column(sketches)
    return pa.table(columns)


def partition_columns(config: LshConfig, partition: int, partitions: int, with_priority: bool) -> list[str]:
    """What partition ``partition`` reads: its bands, ids, and priorities/sketches if used."""
    columns = [doc.ID] + [band_column(b) for b in range(config.num_bands) if b % partitions == partition]
    if with_priority:
        columns.append(PRIORITY)
    if config.verify_threshold is not None:
        columns.append(SKETCH)
    return columns


# ----------------------------------------------------------------------------------------------
# Phase 2a: band buckets -> pairs
# ----------------------------------------------------------------------------------------------


def bucket_pairs(keys: pa.ChunkedArray, with_predecessor: bool) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (a, b), a < b, of documents with equal keys in one band: every member of a bucket
    with its bucket's first document (and, for verification, with the member before it)."""
    valid = np.asarray(pc.is_valid(keys).to_numpy(zero_copy_only=False), dtype=bool)
    positions = np.flatnonzero(valid)
    del valid
    # Intermediates are let go as soon as they are used: a band of every document's keys is the
    # largest thing a partition task holds (8 bytes a document, each copy).
    values = np.asarray(pc.fill_null(keys, 0).to_numpy(zero_copy_only=False), dtype=np.uint64)[positions]
    order = np.argsort(values, kind="stable")  # stable: a bucket's members stay in input order
    sorted_keys = values[order]
    del values
    members = positions[order]
    del positions, order
    starts = np.ones(len(members), dtype=bool)
    starts[1:] = sorted_keys[1:] != sorted_keys[:-1]
    del sorted_keys
    follower = np.flatnonzero(~starts)
    head = np.maximum.accumulate(np.where(starts, np.arange(len(members)), 0))[follower]
    a, b = members[head], members[follower]
    if with_predecessor:
        before = members[follower - 1]
        a, b = np.concatenate([a, before]), np.concatenate([b, members[follower]])
    return a.astype(np.int64), b.astype(np.int64)


def pack_pairs(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairs as one uint64 each (smaller position in the high half): sortable, comparable."""
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    keep = lo != hi
    if len(hi) and hi.max() > int(_LOW32):
        raise ValueError("minhash deduplication handles at most 2**32 documents in one barrier")
    return (lo[keep].astype(np.uint64) << np.uint64(32)) | hi[keep].astype(np.uint64)


def unpack_pairs(packed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return (packed >> np.uint64(32)).astype(np.int64), (packed & _LOW32).astype(np.int64)


def sketch_rows(column: pa.ChunkedArray, rows: np.ndarray, k: int) -> np.ndarray:
    """The sketches of some documents as a (rows x k) matrix, padded with the pad value."""
    taken = column.take(pa.array(rows, pa.int64()))
    taken = taken.combine_chunks() if isinstance(taken, pa.ChunkedArray) else taken
    lengths = pc.list_value_length(taken).to_numpy(zero_copy_only=False).astype(np.int64)
    values = pc.list_flatten(taken).to_numpy(zero_copy_only=False)
    matrix = np.full((len(rows), k), _PAD, dtype=np.uint32)
    row_index = np.repeat(np.arange(len(rows)), lengths)
    starts = np.repeat(np.cumsum(lengths) - lengths, lengths)
    matrix[row_index, np.arange(len(values)) - starts] = values
    return matrix


def bottom_k_jaccard(left: np.ndarray, right: np.ndarray, k: int) -> np.ndarray:
    """Jaccard estimated from bottom-k sketches (rows of two padded matrices): among the k
    smallest distinct values of both sketches together, the share found in both. When both
    sketches hold their whole sets (fewer than k values), all values count: exact."""
    complete = ((left != _PAD).sum(axis=1) < k) & ((right != _PAD).sum(axis=1) < k)
    limit = np.where(complete, 2 * k, k)[:, None]
    merged = np.sort(np.concatenate([left, right], axis=1), axis=1)
    real = merged != _PAD
    first = np.ones(merged.shape, dtype=bool)
    first[:, 1:] = merged[:, 1:] != merged[:, :-1]
    rank = np.cumsum(first & real, axis=1)  # rank among distinct values
    smallest = real & (rank <= limit)
    union = (smallest & first).sum(axis=1)
    shared = (smallest & ~first).sum(axis=1)  # a value's second copy: it is in both
    return shared / np.maximum(union, 1)


def estimated_jaccard(a: np.ndarray, b: np.ndarray, sketches: pa.ChunkedArray, k: int) -> np.ndarray:
    """Estimated Jaccard similarity of each pair (a[i], b[i]), in chunks of pairs."""
    involved = np.unique(np.concatenate([a, b]))
    matrix = sketch_rows(sketches, involved, k)
    left, right = np.searchsorted(involved, a), np.searchsorted(involved, b)
    out = np.empty(len(a), dtype=np.float64)
    for start in range(0, len(a), _VERIFY_CHUNK):
        end = start + _VERIFY_CHUNK
        out[start:end] = bottom_k_jaccard(matrix[left[start:end]], matrix[right[start:end]], k)
    return out


def partition_pairs(table: pa.Table, config: LshConfig, with_priority: bool) -> pa.Table:
    """Phase 2a: the duplicate pairs found in the bands of one partition (all shards'
    signatures concatenated in input order, so positions are global)."""
    bands = [table.column(band) for band in table.column_names if band.startswith("band_")]
    return pairs_in_bands(iter(bands), lambda column, rows: table.column(column).take(pa.array(rows, pa.int64())),
                          config, with_priority)


def pairs_in_bands(bands: Iterator[pa.ChunkedArray], take: Callable[[str, np.ndarray], pa.Array],
                   config: LshConfig, with_priority: bool) -> pa.Table:
    """The duplicate pairs of some bands' keys (each a column over every document in input
    order, taken one at a time); ``take(column, positions)`` gives the ids (and priorities,
    sketches) of the documents found."""
    verify = config.verify_threshold is not None
    # Packed as they come (8 bytes a pair), deduplicated once at the end.
    packed = [pack_pairs(*bucket_pairs(band, with_predecessor=verify)) for band in bands]
    a, b = unpack_pairs(np.unique(np.concatenate(packed))) if packed else unpack_pairs(np.zeros(0, np.uint64))
    if verify and len(a):
        involved = np.unique(np.concatenate([a, b]))
        similar = estimated_jaccard(np.searchsorted(involved, a), np.searchsorted(involved, b),
                                    pa.chunked_array([take(SKETCH, involved)]), config.sketch_size)
        keep = similar >= config.verify_threshold
        a, b = a[keep], b[keep]
    return pairs_table(a, b, take, with_priority)


def pairs_table(a: np.ndarray, b: np.ndarray, take: Callable[[str, np.ndarray], pa.Array] | None,
                with_priority: bool) -> pa.Table:
    """Distinct sorted pairs (a < b) as adjacency lists, with every document's id (and
    priority, from ``take(column, positions)``), so the merge needs nothing else."""
    nodes = np.unique(np.concatenate([a, b]))
    starts = np.searchsorted(a, nodes, side="left")
    ends = np.searchsorted(a, nodes, side="right")
    offsets = np.concatenate([[0], np.cumsum(ends - starts)]).astype(np.int32)
    columns: dict[str, Any] = {
        NODE: pa.array(nodes, pa.int64()),
        doc.ID: pc.cast(take(doc.ID, nodes), pa.string()) if take is not None else pa.array([], pa.string()),
        LINKS: pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), pa.array(b, pa.int64())),
    }
    if with_priority:
        columns[PRIORITY] = take(PRIORITY, nodes) if take is not None else pa.array([], pa.float64())
    return pa.table(columns)


def empty_pairs(with_priority: bool) -> pa.Table:
    return pairs_table(np.zeros(0, np.int64), np.zeros(0, np.int64), None, with_priority)


def pairs_of(adjacency: pa.Table) -> tuple[np.ndarray, np.ndarray]:
    """The (a, b) pairs of adjacency lists."""
    lengths = pc.list_value_length(adjacency.column(LINKS)).to_numpy(zero_copy_only=False).astype(np.int64)
    a = np.repeat(adjacency.column(NODE).to_numpy(), lengths)
    b = pc.list_flatten(adjacency.column(LINKS)).to_numpy(zero_copy_only=False).astype(np.int64)
    return a, b


# ----------------------------------------------------------------------------------------------
# Phase 2b: connected components -> one decision per shard
# ----------------------------------------------------------------------------------------------


def connected_components(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Union-find over the pairs, vectorized: (nodes, root) where ``root[i]`` is the index in
    ``nodes`` of the smallest node of node ``i``'s component.

    Each round hooks every root onto the smallest root it is paired with (roots only ever
    point at smaller roots, so no cycles), then compresses paths until every node points at
    its root. Pairs whose ends share a root are done for good and leave; rounds end when none
    is left. Indices are int32 (memory), so at most 2**31 documents take part in pairs.
    """
    nodes = np.unique(np.concatenate([a, b]))
    left = np.searchsorted(nodes, a).astype(np.int32)
    right = np.searchsorted(nodes, b).astype(np.int32)
    parent = np.arange(len(nodes), dtype=np.int32)
    while len(left):
        root_left, root_right = parent[left], parent[right]
        open_pairs = root_left != root_right
        left, right = left[open_pairs], right[open_pairs]
        root_left, root_right = root_left[open_pairs], root_right[open_pairs]
        np.minimum.at(parent, np.maximum(root_left, root_right), np.minimum(root_left, root_right))
        while True:
            grandparent = parent[parent]
            if np.array_equal(grandparent, parent):
                break
            parent = grandparent
    return nodes, parent


@dataclass
class Clusters:
    """Every document that has a duplicate: its cluster's kept document and size."""

    positions: np.ndarray  # global positions, sorted
    kept: np.ndarray  # global position of the kept document of each one's cluster
    kept_ids: list[str]  # id of that kept document
    sizes: np.ndarray


def clusters_from_pairs(adjacency: pa.Table, a: np.ndarray, b: np.ndarray, with_priority: bool) -> Clusters:
    """Connected components of the pairs (a, b) of the adjacency lists, and the document
    each component keeps."""
    nodes, root = connected_components(a, b)
    # Every document in a pair has a row (in one partition or more): its id and priority.
    _, first_row = np.unique(adjacency.column(NODE).to_numpy(), return_index=True)
    rows = pa.array(first_row, pa.int64())
    id_list = adjacency.column(doc.ID).take(rows).to_pylist()
    priority = adjacency.column(PRIORITY).take(rows).to_numpy() if with_priority else None
    winner_index = first_per_group(root, np.arange(len(nodes)), priority)
    return Clusters(
        positions=nodes,
        kept=nodes[winner_index],
        kept_ids=[id_list[i] for i in winner_index],
        sizes=np.bincount(root, minlength=len(nodes))[root],
    )


def cluster_summary(clusters: Clusters, pairs: int) -> dict[str, int]:
    """What the merge found (``pairs``: distinct duplicate pairs), for the manifest."""
    kept = int(np.count_nonzero(clusters.kept == clusters.positions))
    return {
        "duplicate_pairs": int(pairs),
        "clusters": kept,
        "documents_in_clusters": int(len(clusters.positions)),
        "duplicates": int(len(clusters.positions)) - kept,
        "largest_cluster": int(clusters.sizes.max()) if len(clusters.sizes) else 1,
    }


def cluster_decisions(
    clusters: Clusters,
    shard_sizes: list[int],
    drop: bool,
    cluster_fields: bool,
    reason: str = "near_duplicate",
) -> list[BarrierDecision]:
    """One decision per shard: drop every clustered document but the kept one (when ``drop``),
    and the cluster fields (id: None where the document is its own cluster, filled by
    :func:`fill_cluster_ids` in phase 3, since only the shard knows its ids)."""
    decisions = [
        BarrierDecision(
            fields={CLUSTER_ID: [None] * size, CLUSTER_SIZE: [1] * size} if cluster_fields else None,
        )
        for size in shard_sizes
    ]
    if cluster_fields:
        shards, rows = to_shard_rows(clusters.positions, shard_offsets(shard_sizes))
        for shard, row, kept_id, size in zip(shards.tolist(), rows.tolist(), clusters.kept_ids, clusters.sizes.tolist()):
            fields = decisions[shard].fields
            assert fields is not None
            fields[CLUSTER_ID][row] = kept_id
            fields[CLUSTER_SIZE][row] = size
    if drop:
        dropped = clusters.kept != clusters.positions
        drops = Drops()
        drops.add(clusters.positions[dropped], reason, CLUSTER_SIZE, clusters.sizes[dropped],
                  duplicate_of(clusters.kept_ids).filter(pa.array(dropped)))
        for decision, part in zip(decisions, drops.split(shard_sizes)):
            decision.drop = part
    return decisions


def fill_cluster_ids(batch: pa.Table, decision: BarrierDecision) -> BarrierDecision:
    """A document alone in its cluster is its own cluster: its id is the cluster id."""
    if not decision.fields or CLUSTER_ID not in decision.fields:
        return decision
    ids = batch.column(doc.ID).to_pylist()
    cluster_ids = [c if c is not None else i for c, i in zip(decision.fields[CLUSTER_ID], ids)]
    sizes = [int(s) for s in decision.fields[CLUSTER_SIZE]]
    fields = {**decision.fields, CLUSTER_ID: cluster_ids, CLUSTER_SIZE: sizes}
    return dataclasses.replace(decision, fields=fields)


# ----------------------------------------------------------------------------------------------
# The operator skeleton
# ----------------------------------------------------------------------------------------------


class MinHashLshDeduplicator(Deduplicator):
    """The barrier phases of MinHash-LSH; subclasses say how text becomes shingles."""

    # Whether duplicates are dropped (else only annotated), and whether documents get the
    # cluster fields; subclasses decide from their parameters.
    drops: bool = True
    writes_cluster_fields: bool = True

    def lsh_config(self) -> LshConfig:
        raise NotImplementedError

    def shingle_sets(self, texts: list[str]) -> Shingled:
        """Per document, the shingles MinHash takes (see :func:`minhash_values`), whether it
        has any, and its bottom-k sketch when pairs are verified."""
        raise NotImplementedError

    def provenance(self) -> dict[str, Any]:
        return {"minhash": self.lsh_config().describe()}

    # -- phase 1 ----------------------------------------------------------------------------

    def signatures(self, batch: pa.Table) -> pa.Table:
        config = self.lsh_config()
        texts = batch.column(doc.TEXT).to_pylist()
        shingled = self.shingle_sets(texts)
        values = minhash_values(shingled.minhash_inputs, config)
        keep = self.keep_params()
        priority = priorities(batch, keep, self.name) if keep is not None else None
        return signature_table(
            batch.column(doc.ID), values, shingled.has_shingles, priority, shingled.sketches, config
        )

    # -- phase 2 ----------------------------------------------------------------------------

    def partitions(self) -> int:
        return int(getattr(self.params, "partitions", 1))

    def partition_columns(self, partition: int, partitions: int) -> list[str] | None:
        return partition_columns(self.lsh_config(), partition, partitions, self.with_priority)

    def resolve_partition(self, signatures: list[pa.Table], partition: int, partitions: int) -> pa.Table:
        columns = self.partition_columns(partition, partitions)
        tables = [s.select(columns) for s in signatures if s.num_rows]
        if not tables:
            return empty_pairs(self.with_priority)
        table = pa.concat_tables(tables, promote_options="permissive") if len(tables) > 1 else tables[0]
        # Positions are global: rows of empty shards take no room, so the offsets stay right.
        return partition_pairs(table, self.lsh_config(), self.with_priority)

    def resolve_partition_from(self, source: SignatureSource, partition: int, partitions: int) -> pa.Table:
        # One band's keys at a time (8 bytes a document), then the ids of the documents found.
        config = self.lsh_config()
        owned = [band_column(b) for b in range(config.num_bands) if b % partitions == partition]
        bands = (pa.chunked_array([t.column(0) for t in source.read([band]) if t.num_rows], pa.uint64())
                 for band in owned)
        return pairs_in_bands(bands, source.take, config, self.with_priority)

    def resolve(self, signatures: list[pa.Table]) -> list[BarrierDecision]:
        partial = self.resolve_partition(signatures, 0, 1)
        return self.merge([partial], [len(s) for s in signatures])

    def resolve_from(self, source: SignatureSource) -> list[BarrierDecision]:
        return self.merge([self.resolve_partition_from(source, 0, 1)], source.shard_sizes())

    def merge(self, partials: list[pa.Table], shard_sizes: list[int]) -> list[BarrierDecision]:
        non_empty = [p for p in partials if p.num_rows]
        if non_empty:
            pairs = pa.concat_tables(non_empty, promote_options="permissive")
        else:
            pairs = empty_pairs(self.with_priority)
        a, b = pairs_of(pairs)
        distinct_pairs = len(np.unique(pack_pairs(a, b)))
        clusters = clusters_from_pairs(pairs, a, b, self.with_priority)
        del a, b
        self.last_summary = cluster_summary(clusters, distinct_pairs)
        return cluster_decisions(clusters, shard_sizes, self.drops, self.writes_cluster_fields)

    # -- phase 3 ----------------------------------------------------------------------------

    def apply(self, batch: pa.Table, decision: BarrierDecision) -> StepResult:
        return super().apply(batch, fill_cluster_ids(batch, decision))
