"""``dsir``: Data Selection with Importance Resampling (Xie et al., 2023), toward a target corpus.

DSIR picks the raw documents that look most like a target corpus, in a cheap feature space:

* **features**: a document's words (lower-cased ``\\w+`` runs) and pairs of adjacent words,
  each hashed (xxh3-64) into ``buckets`` bins: ``2**16`` by default (the paper used 10,000;
  65,536 keeps collisions rarer and lets a bin number fit in 16 bits in the signatures);
* **distributions**: a bag-of-hashed-n-grams model of the target (from ``target``: files of
  text) and of the raw data (the node's own documents, summed from the signatures), each
  add-``smoothing`` smoothed;
* **importance weight** of a document: ``log p_target(x) - log p_raw(x)``, summed over its
  n-grams (with their counts). By default the raw model is that of the *other* documents
  (``leave_one_out``): otherwise a document's own rare n-grams make it look raw-like, which
  on a corpus of thousands rather than billions of documents drowns the signal (measured on
  the test mix: share of target-source documents among 40 selected, 1.0 with vs 0.58
  without);
* **resampling**: ``k`` (or ``fraction`` of the) documents drawn without replacement with
  probabilities proportional to the weights, by the Gumbel top-k trick: the documents with the
  largest ``log weight + Gumbel noise``, the noise a seeded hash of the document's id (the
  same sample whatever the shards, workers or order).

The log-importance weight is kept as a field (``dsir_log_weight``). ``temperature`` divides
the weights' logs before resampling (1: the paper; larger: closer to uniform).
"""

from __future__ import annotations

import functools
import glob as globlib
import hashlib
import json
import re
from typing import Any

import fsspec
import numpy as np
import pyarrow as pa
import xxhash
from pydantic import Field, model_validator

from recipeflow.operators import document as doc
from recipeflow.operators.fasttext_classifier import MANIFEST, VERSIONS_DIR
from recipeflow.operators.base import BarrierDecision, OperatorParams, Selector, path_field
from recipeflow.operators.drops import Drops
from recipeflow.operators.registry import register
from recipeflow.operators.sample import MAX_SEED
from recipeflow.operators.top_k import shard_decisions, share_of

_WORD = re.compile(r"\w+")
_BUCKETS, _COUNTS = "buckets", "counts"
_ORDER = "noise"


class DsirParams(OperatorParams):
    target: str = path_field(
        description="The target corpus: a JSONL (optionally .gz/.zst) or Parquet file, a "
        "glob of them (any fsspec path), or a recipeflow dataset (its root for the latest "
        "version, `ROOT@VERSION` for one); its `text_field` is read.")
    text_field: str = Field("text", description="The target files' text field.")
    k: int | None = Field(None, ge=0, description="How many documents to select.")
    fraction: float | None = Field(None, gt=0, le=1, description="Or: which fraction of them.")
    buckets: int = Field(65536, ge=16, le=65536, description="Hashed n-gram bins (at most "
                         "2**16: bin numbers are stored in 16 bits).")
    smoothing: float = Field(
        0.1, gt=0, description="Added to every bin's count (additive smoothing); with "
        "2**16 bins, 1 would outweigh the counts of a target of a few thousand documents.")
    temperature: float = Field(1.0, gt=0, description="Log-weights are divided by this before "
                               "resampling.")
    seed: int = Field(0, ge=0, le=MAX_SEED, description="Seed of the resampling noise.")
    leave_one_out: bool = Field(
        True, description="Weigh each document against the raw distribution of the other "
        "documents (its own n-grams taken out): with a raw corpus of modest size, a document's "
        "rare n-grams would otherwise count against it.")
    normalize_length: bool = Field(
        False, description="Divide each log weight by the document's n-gram count (per-n-gram "
        "average): long documents no longer get extreme weights. The paper does not.")
    weight_field: str = Field("dsir_log_weight", description="Field holding each document's "
                              "log importance weight.")

    @model_validator(mode="after")
    def _exactly_one(self):
        if (self.k is None) == (self.fraction is None):
            raise ValueError("give exactly one of k and fraction")
        return self


def hashed_ngrams(text: str, buckets: int) -> tuple[np.ndarray, np.ndarray]:
    """(bin, count) of the unigrams and bigrams of ``text``, bins ascending."""
    words = _WORD.findall(text.lower())
    if not words:
        return np.zeros(0, np.uint16), np.zeros(0, np.uint16)
    hashes = np.fromiter((_word_hash(w) for w in words), np.uint64, len(words))
    # A bigram's hash mixes its words' hashes (odd multiplier, xor-shift): no second string hash.
    with np.errstate(over="ignore"):
        pairs = hashes[:-1] * np.uint64(0x9E3779B97F4A7C15) ^ hashes[1:]
        pairs ^= pairs >> np.uint64(29)
        pairs *= np.uint64(0xBF58476D1CE4E5B9)
        pairs ^= pairs >> np.uint64(32)
    grams = np.concatenate([hashes, pairs]) % np.uint64(buckets)
    bins, counts = np.unique(grams, return_counts=True)
    return bins.astype(np.uint16 if buckets <= 65536 else np.uint32), np.minimum(counts, 65535).astype(np.uint16)


@functools.lru_cache(maxsize=1 << 20)
def _word_hash(word: str) -> int:
    return xxhash.xxh3_64_intdigest(word.encode("utf-8"))


def target_files(target: str) -> list[str]:
    """The files ``target`` names (a file, a glob, or a committed dataset version: a dataset
    root for its latest version, ``ROOT@VERSION`` for that one), sorted; an error naming
    ``target`` when there are none."""
    committed = dataset_version_files(target)
    if committed is not None:
        return committed
    fs, path = fsspec.core.url_to_fs(target)
    files = sorted(fs.glob(path)) if globlib.has_magic(path) else ([path] if fs.isfile(path) else [])
    if not files:
        raise FileNotFoundError(f"dsir: `target` {target!r} names no file (give a JSONL or Parquet "
                                "file, or a glob of them)")
    protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    return [f if protocol in ("file", "local") else f"{protocol}://{f}" for f in files]


def _is_dataset_root(url: str) -> bool:
    fs, path = fsspec.core.url_to_fs(url)
    return fs.isdir(path) and fs.isdir(f"{path.rstrip('/')}/{VERSIONS_DIR}")


def dataset_version_files(target: str) -> list[str] | None:
    """The data files of the dataset version ``target`` names (``ROOT`` → its latest committed
    version, ``ROOT@VERSION`` → that one), from its manifest; None when ``target`` is no dataset
    root. (The same layout as ``datasets.versions``, read here because operators import nothing
    above them.)"""
    base, sep, version = target.rpartition("@")
    if sep and base and version and "/" not in version and _is_dataset_root(base):
        root: str | None = base
    else:
        root, version = (target, "") if _is_dataset_root(target) else (None, "")
    if root is None:
        return None
    fs, path = fsspec.core.url_to_fs(root)
    manifests = {}
    for entry in fs.ls(f"{path.rstrip('/')}/{VERSIONS_DIR}", detail=False):
        try:
            with fs.open(f"{entry.rstrip('/')}/{MANIFEST}", "rb") as f:
                manifest = json.load(f)
        except (FileNotFoundError, NotADirectoryError):
            continue  # not committed: still running, failed or killed
        manifests[str(manifest.get("version", entry.rstrip("/").rsplit("/", 1)[-1]))] = manifest
    ordered = sorted(manifests, key=lambda v: (str(manifests[v].get("created_at", "")), v))
    if not ordered:
        raise FileNotFoundError(f"dsir: `target` {target!r} is a dataset root with no committed "
                                "version; run the recipe that writes it first")
    version = version or ordered[-1]
    if version not in manifests:
        raise FileNotFoundError(f"dsir: `target` {target!r}: no committed version {version!r} "
                                f"under {root}; committed versions, oldest first: {', '.join(ordered)}")
    # A snapshot's entry names the version folder it lives in (files shared with a parent).
    files = [e["path"] if "://" in e["path"] or e["path"].startswith("/")
             else f"{root.rstrip('/')}/{VERSIONS_DIR}/{e.get('version') or version}/{e['path']}"
             for e in manifests[version].get("files", [])]
    if not files:
        raise FileNotFoundError(f"dsir: `target` {target!r}: version {version} has no data files")
    return files


def read_target_texts(url: str, text_field: str):
    """The texts of one JSONL or Parquet file."""
    if url.endswith(".parquet"):
        import pyarrow.parquet as pq

        with fsspec.open(url, "rb") as f:
            table = pq.read_table(f, columns=[text_field])
        yield from (t for t in table.column(text_field).to_pylist() if t)
        return
    with fsspec.open(url, "rt", encoding="utf-8", compression="infer") as f:
        for number, line in enumerate(f):
            if line.strip():
                try:
                    text = json.loads(line).get(text_field)
                except (ValueError, AttributeError) as error:
                    raise ValueError(f"dsir: `target` file {url} line {number + 1} is not a JSON "
                                     f"object ({error})") from error
                if isinstance(text, str) and text:
                    yield text


def gumbel_noise(ids: list[str], seed: int) -> np.ndarray:
    """Standard Gumbel noise per document from a seeded hash of its id."""
    raw = np.array([xxhash.xxh3_64_intdigest(i.encode("utf-8"), seed=seed) for i in ids], np.uint64)
    uniform = ((raw >> np.uint64(11)).astype(np.float64) + 0.5) / float(1 << 53)  # in (0, 1)
    return -np.log(-np.log(uniform))


@register
class Dsir(Selector):
    """Select k documents (or a fraction) that resemble a target corpus, by DSIR importance resampling.

    Hashed unigram+bigram features (``buckets`` bins, 2**16 by default); importance weight
    ``log p_target(x) - log p_raw(x)`` with the raw distribution learned from the node's own
    documents; ``k``/``fraction`` drawn without replacement proportionally to the weights
    (Gumbel top-k with a seeded hash of each id). Every kept document gets
    ``dsir_log_weight``; the others are dropped with ``not_resampled``.
    """

    name = "dsir"
    version = "1"
    Params = DsirParams

    last_summary: dict[str, Any] | None = None

    def __init__(self, params=None):
        super().__init__(params)
        self._target: tuple[np.ndarray, dict[str, Any]] | None = None

    # -- the target --------------------------------------------------------------------------

    def target_counts(self) -> tuple[np.ndarray, dict[str, Any]]:
        """Bin counts of the target corpus and facts about it (files, documents, sha256)."""
        if self._target is None:
            p = self.params
            counts = np.zeros(p.buckets, np.float64)
            documents = 0
            digest = hashlib.sha256()
            files = target_files(p.target)
            for url in files:
                for text in read_target_texts(url, p.text_field):
                    bins, c = hashed_ngrams(text, p.buckets)
                    np.add.at(counts, bins.astype(np.int64), c)
                    digest.update(hashlib.sha256(text.encode("utf-8")).digest())
                    documents += 1
            if documents == 0:
                raise ValueError(f"dsir: `target` {p.target!r} has no texts in field {p.text_field!r}")
            self._target = counts, {"target_files": files, "target_documents": documents,
                                    "target_texts_sha256": digest.hexdigest()}
        return self._target

    def provenance(self) -> dict[str, Any]:
        """The target's files with their sizes and version stamps, from a listing only (cheap
        at planning; a missing target is an error here, before the run's work). A changed
        target file changes the cache address; the texts' sha256 is in the summary."""
        files = []
        for url in target_files(self.params.target):
            fs, path = fsspec.core.url_to_fs(url)
            info = fs.info(path)
            stamp = next((info[k] for k in ("ETag", "etag", "mtime", "LastModified") if k in info), None)
            files.append({"path": url, "size": info.get("size"), "stamp": str(stamp)})
        return {"target_files": files}

    # -- the three phases -------------------------------------------------------------------

    def signatures(self, batch: pa.Table) -> pa.Table:
        """Each document's hashed n-gram bins and counts, and its resampling noise."""
        p = self.params
        bins, counts = [], []
        for text in batch.column(doc.TEXT).to_pylist():
            b, c = hashed_ngrams(text or "", p.buckets)
            bins.append(b)
            counts.append(c)
        bin_type = pa.uint16() if p.buckets <= 65536 else pa.uint32()
        return pa.table({
            _BUCKETS: _list_array(bins, bin_type),
            _COUNTS: _list_array(counts, pa.uint16()),
            _ORDER: pa.array(gumbel_noise(batch.column(doc.ID).to_pylist(), p.seed), pa.float64()),
        })

    def resolve(self, signatures: list[pa.Table]) -> list[BarrierDecision]:
        p = self.params
        target, _ = self.target_counts()
        raw = np.zeros(p.buckets, np.float64)
        for s in signatures:  # pass 1: the raw distribution, one shard at a time
            bins, counts = _flat(s)
            raw += np.bincount(bins, weights=counts, minlength=p.buckets)
        log_target = np.log((target + p.smoothing) / (target.sum() + p.smoothing * p.buckets))
        raw_total = raw.sum() + p.smoothing * p.buckets
        weights = []
        for s in signatures:  # pass 2: each document's log importance weight
            bins, counts = _flat(s)
            lengths = _lengths(s)
            owner = np.repeat(np.arange(len(s)), lengths)
            if p.leave_one_out:  # the raw model of the *other* documents
                own_total = np.bincount(owner, weights=counts, minlength=len(s))[owner]
                log_raw = np.log((raw[bins] - counts + p.smoothing) / (raw_total - own_total))
            else:
                log_raw = np.log((raw[bins] + p.smoothing) / raw_total)
            per_gram = counts * (log_target[bins] - log_raw)
            weight = np.bincount(owner, weights=per_gram, minlength=len(s))
            if p.normalize_length:
                weight /= np.maximum(np.bincount(owner, weights=counts, minlength=len(s)), 1)
            weights.append(weight)
        log_weight = np.concatenate(weights) if weights else np.zeros(0)
        noise = np.concatenate([s.column(_ORDER).to_numpy() for s in signatures]) if signatures else np.zeros(0)
        n = len(log_weight)
        wanted = min(share_of(p.fraction, n) if p.fraction is not None else p.k, n)
        keys = log_weight / p.temperature + noise
        order = np.lexsort((np.arange(n), -keys))  # largest key first; ties in input order
        selected = order[:wanted]
        cutoff = float(keys[selected[-1]]) if wanted else None
        detail = f"kept {wanted} of {n}, seed={p.seed}"
        drops = Drops()
        drops.add(order[wanted:], "not_resampled", p.weight_field, log_weight[order[wanted:]], detail)
        sizes = [len(s) for s in signatures]
        decisions = shard_decisions(sizes, drops)
        start = 0
        for decision, size in zip(decisions, sizes):
            decision.fields = {p.weight_field: pa.array(log_weight[start:start + size], pa.float64())}
            start += size
        self.last_summary = {
            "documents": n, "selected": int(wanted), "seed": p.seed, "buckets": p.buckets,
            "key_cutoff": cutoff, **self.target_counts()[1],
            "log_weight_mean_selected": float(log_weight[selected].mean()) if wanted else None,
            "log_weight_mean_all": float(log_weight.mean()) if n else None,
        }
        return decisions


def _list_array(values: list[np.ndarray], item_type: pa.DataType) -> pa.ListArray:
    lengths = np.array([len(v) for v in values], np.int32)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32)
    flat = np.concatenate(values) if values else np.zeros(0)
    return pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), pa.array(flat, item_type))


def _lengths(signature: pa.Table) -> np.ndarray:
    if not len(signature):
        return np.zeros(0, np.int64)
    column = signature.column(_BUCKETS).combine_chunks()
    return column.value_lengths().to_numpy(zero_copy_only=False).astype(np.int64)


def _flat(signature: pa.Table) -> tuple[np.ndarray, np.ndarray]:
    """Every bin and count of a shard's documents, flattened."""
    if not len(signature):
        return np.zeros(0, np.int64), np.zeros(0, np.float64)
    bins = signature.column(_BUCKETS).combine_chunks().flatten().to_numpy(zero_copy_only=False)
    counts = signature.column(_COUNTS).combine_chunks().flatten().to_numpy(zero_copy_only=False)
    return bins.astype(np.int64), counts.astype(np.float64)
