"""The benchmark n-gram index of ``decontaminate``: built once, saved as one file, read (memory
mapped) by every shard's task.

Contents: the items (benchmark, id, text, how many distinct grams each has) and a posting list
from every distinct item gram hash to the items holding it: ``keys`` (sorted uint64 hashes),
``offsets`` and ``postings`` (CSR). Two backends answer "is this document gram in a benchmark?":

* ``exact`` (default): binary search (``numpy.searchsorted``) in ``keys``. Resident memory:
  about 20 bytes per distinct item gram.
* ``bloom``: an rbloom Bloom filter of the gram hashes (Dolma's approach) answers first; its
  positives are then checked in ``keys``, which stays memory-mapped on disk and is touched only
  for those, so no false positive reaches a decision or the report. Resident memory: the filter
  (about 1.2 bytes per gram at 1% false positives).

File format (one file, one content-addressed cache entry): ``RFDECONTAM1\\n``, an 8-byte
little-endian header length, a JSON header (parameters, benchmarks and their files' sha256,
item ids, arrays' dtype/shape/offset), then the arrays, each aligned to 64 bytes.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from typing import Any, Literal, Sequence

import numpy as np

from recipeflow.operators.decontamination.benchmarks import Benchmark
from recipeflow.operators.decontamination.text import (
    DEFAULT,
    NORMALIZATION,
    Normalization,
    window_hashes,
    word_hashes,
)

MAGIC = b"RFDECONTAM1\n"
FORMAT_VERSION = 1
Backend = Literal["exact", "bloom"]


def _identity(value: int) -> int:
    """rbloom's hash function: gram hashes are already uniform 64-bit values (and a named
    module-level function lets the filter be saved)."""
    return value


@dataclass
class ItemGrams:
    """Every item's distinct gram hashes, as (hash, item) pairs, and per-item counts."""

    hashes: np.ndarray  # uint64
    items: np.ndarray  # int32, item index of each hash
    gram_counts: np.ndarray  # int32 per item
    short_lengths: list[int]  # word counts < n of items used whole


def item_grams(texts: Sequence[str], n: int, normalization: Normalization = DEFAULT) -> ItemGrams:
    all_hashes, item_of_word = word_hashes(texts, normalization=normalization)
    lengths = np.bincount(item_of_word, minlength=len(texts)).astype(np.int64)
    starts_of_item = np.concatenate([[0], np.cumsum(lengths)])[:-1]
    pieces_h, pieces_i = [], []
    # Items of n words or more: their n-grams.
    h, s = window_hashes(all_hashes, item_of_word, n)
    pieces_h.append(h)
    pieces_i.append(item_of_word[s])
    # Shorter items: the whole item as one gram of its own length.
    short_lengths = sorted({int(k) for k in lengths if 0 < k < n})
    for k in short_lengths:
        items_k = np.nonzero(lengths == k)[0]
        idx = (starts_of_item[items_k][:, None] + np.arange(k)[None, :]).ravel()
        hk, sk = window_hashes(all_hashes[idx], np.repeat(items_k, k), k)
        pieces_h.append(hk)
        pieces_i.append(np.repeat(items_k, k)[sk])
    hashes = np.concatenate(pieces_h) if pieces_h else np.empty(0, np.uint64)
    items = np.concatenate(pieces_i).astype(np.int32) if pieces_i else np.empty(0, np.int32)
    # Distinct (hash, item) pairs.
    order = np.lexsort((items, hashes))  # by hash, then item
    hashes, items = hashes[order], items[order]
    keep = np.ones(len(hashes), bool)
    keep[1:] = (hashes[1:] != hashes[:-1]) | (items[1:] != items[:-1])
    hashes, items = hashes[keep], items[keep]
    gram_counts = np.bincount(items, minlength=len(lengths)).astype(np.int32)
    return ItemGrams(hashes, items, gram_counts, short_lengths)


@dataclass
class Index:
    n: int
    backend: Backend
    false_positive_rate: float
    benchmark_names: list[str]
    benchmark_files: dict[str, dict[str, str]]  # benchmark -> {file: sha256}
    item_benchmark: np.ndarray  # int32: index into benchmark_names
    item_ids: list[str]
    item_texts: list[str]
    item_gram_counts: np.ndarray  # int32
    short_lengths: list[int]
    keys: np.ndarray  # uint64, sorted, distinct
    offsets: np.ndarray  # int64, len(keys) + 1
    postings: np.ndarray  # int32 item indices
    bloom: Any = None
    normalization: str = NORMALIZATION
    # Bloom backend: document grams asked, those the filter passed, and how many of those were
    # not in `keys` (false positives, dropped by the verification).
    bloom_queries: int = field(default=0, compare=False)
    bloom_positives: int = field(default=0, compare=False)
    bloom_false_positives: int = field(default=0, compare=False)

    # -- lookups ---------------------------------------------------------------------------------

    def member(self, hashes: np.ndarray) -> np.ndarray:
        """A bool per hash: whether it is an item gram (exactly; Bloom positives verified)."""
        if len(hashes) == 0 or len(self.keys) == 0:
            return np.zeros(len(hashes), bool)
        if self.bloom is None:
            return self._in_keys(hashes)
        contains = self.bloom.__contains__
        candidate = np.fromiter((contains(h) for h in hashes.tolist()), bool, len(hashes))
        out = np.zeros(len(hashes), bool)
        self.bloom_queries += len(hashes)
        where = np.nonzero(candidate)[0]
        if len(where):
            verified = self._in_keys(hashes[where])
            out[where] = verified
            self.bloom_positives += len(where)
            self.bloom_false_positives += int((~verified).sum())
        return out

    def _in_keys(self, hashes: np.ndarray) -> np.ndarray:
        pos = np.searchsorted(self.keys, hashes)
        pos[pos == len(self.keys)] = 0
        return self.keys[pos] == hashes

    def postings_of(self, hashes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For distinct item-gram hashes: every (position in ``hashes``, item holding it) pair,
        as two arrays."""
        pos = np.searchsorted(self.keys, hashes)
        starts = np.asarray(self.offsets[pos])
        counts = np.asarray(self.offsets[pos + 1]) - starts
        which = np.repeat(np.arange(len(hashes)), counts)
        # Indices of every posting: each run start .. start + count.
        run_starts = np.repeat(starts - np.concatenate([[0], np.cumsum(counts)[:-1]]), counts)
        items = np.asarray(self.postings[run_starts + np.arange(counts.sum())])
        return which, items

    # -- facts -----------------------------------------------------------------------------------

    @property
    def items(self) -> int:
        return len(self.item_ids)

    def items_per_benchmark(self) -> dict[str, int]:
        counts = np.bincount(self.item_benchmark, minlength=len(self.benchmark_names))
        return {name: int(c) for name, c in zip(self.benchmark_names, counts)}

    def resident_bytes(self) -> dict[str, int]:
        """Bytes each structure needs in memory to answer lookups: for ``exact`` the key and
        posting arrays; for ``bloom`` the filter (the arrays are consulted only on positives,
        memory-mapped)."""
        arrays = self.keys.nbytes + self.offsets.nbytes + self.postings.nbytes
        if self.bloom is None:
            return {"lookup": arrays, "verification_on_disk": 0}
        return {"lookup": self.bloom.size_in_bits // 8, "verification_on_disk": arrays}

    # -- files -----------------------------------------------------------------------------------

    def save(self, path: str) -> None:
        """Write the index as one file (written to a temporary name, then renamed)."""
        arrays = {
            "item_benchmark": self.item_benchmark.astype(np.int32),
            "item_gram_counts": self.item_gram_counts.astype(np.int32),
            "keys": self.keys.astype(np.uint64),
            "offsets": self.offsets.astype(np.int64),
            "postings": self.postings.astype(np.int32),
        }
        texts = [t.encode("utf-8") for t in self.item_texts]
        arrays["text_offsets"] = np.concatenate([[0], np.cumsum([len(t) for t in texts])]).astype(np.int64)
        arrays["text_bytes"] = np.frombuffer(b"".join(texts), dtype=np.uint8)
        if self.bloom is not None:
            arrays["bloom"] = np.frombuffer(self.bloom.save_bytes(), dtype=np.uint8)
        header: dict[str, Any] = {
            "format": FORMAT_VERSION,
            "n": self.n,
            "backend": self.backend,
            "false_positive_rate": self.false_positive_rate,
            "normalization": self.normalization,
            "benchmark_names": self.benchmark_names,
            "benchmark_files": self.benchmark_files,
            "item_ids": self.item_ids,
            "short_lengths": self.short_lengths,
            "arrays": {},
        }
        # Offsets are relative to the end of the header block, so they do not depend on it.
        position = 0
        for name, array in arrays.items():
            position = -(-position // 64) * 64
            header["arrays"][name] = {"dtype": array.dtype.str, "shape": list(array.shape), "offset": position}
            position += array.nbytes
        header_bytes = json.dumps(header, ensure_ascii=False).encode("utf-8")
        base = -(-(len(MAGIC) + 8 + len(header_bytes)) // 64) * 64
        folder = os.path.dirname(os.path.abspath(path))
        os.makedirs(folder, exist_ok=True)
        fd, temp = tempfile.mkstemp(dir=folder, prefix=".index-", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(MAGIC + len(header_bytes).to_bytes(8, "little") + header_bytes)
                for name, array in arrays.items():
                    f.seek(base + header["arrays"][name]["offset"])
                    f.write(np.ascontiguousarray(array).tobytes())
            os.replace(temp, path)
        except BaseException:
            if os.path.exists(temp):
                os.unlink(temp)
            raise

    @classmethod
    def load(cls, path: str) -> "Index":
        """Read an index file; its arrays are memory-mapped (shared by the processes reading
        it through the page cache)."""
        with open(path, "rb") as f:
            magic = f.read(len(MAGIC))
            if magic != MAGIC:
                raise ValueError(f"{path} is not a decontamination index (bad magic {magic!r})")
            length = int.from_bytes(f.read(8), "little")
            header = json.loads(f.read(length))
        if header.get("format") != FORMAT_VERSION:
            raise ValueError(f"{path}: index format {header.get('format')}, expected {FORMAT_VERSION}")
        base = -(-(len(MAGIC) + 8 + length) // 64) * 64
        arrays = {}
        for name, meta in header["arrays"].items():
            shape = tuple(meta["shape"])
            if int(np.prod(shape)) == 0:
                arrays[name] = np.empty(shape, np.dtype(meta["dtype"]))
            else:
                arrays[name] = np.memmap(path, dtype=np.dtype(meta["dtype"]), mode="r",
                                         offset=base + meta["offset"], shape=shape)
        text_bytes = bytes(arrays["text_bytes"])
        text_offsets = np.asarray(arrays["text_offsets"]).tolist()
        texts = [text_bytes[a:b].decode("utf-8") for a, b in zip(text_offsets[:-1], text_offsets[1:])]
        bloom = None
        if header["backend"] == "bloom":
            import rbloom

            bloom = rbloom.Bloom.load_bytes(bytes(arrays["bloom"]), _identity)
        return cls(
            n=header["n"], backend=header["backend"],
            false_positive_rate=header["false_positive_rate"],
            benchmark_names=header["benchmark_names"], benchmark_files=header["benchmark_files"],
            item_benchmark=np.asarray(arrays["item_benchmark"]), item_ids=header["item_ids"],
            item_texts=texts, item_gram_counts=np.asarray(arrays["item_gram_counts"]),
            short_lengths=header["short_lengths"], keys=arrays["keys"], offsets=arrays["offsets"],
            postings=arrays["postings"], bloom=bloom, normalization=header["normalization"],
        )


def build_index(
    benchmarks: dict[str, Benchmark],
    n: int = 13,
    backend: Backend = "exact",
    false_positive_rate: float = 0.01,
    normalization: Normalization = DEFAULT,
) -> Index:
    """The index of every item of ``benchmarks`` (in name order, items in file order)."""
    names = sorted(benchmarks)
    item_benchmark, ids, texts = [], [], []
    for b, name in enumerate(names):
        item_benchmark.extend([b] * len(benchmarks[name].item_texts))
        ids.extend(benchmarks[name].item_ids)
        texts.extend(benchmarks[name].item_texts)
    grams = item_grams(texts, n, normalization)
    keys, first = np.unique(grams.hashes, return_index=True)  # hashes are sorted already
    offsets = np.append(first, len(grams.hashes)).astype(np.int64)
    bloom = None
    if backend == "bloom":
        import rbloom

        bloom = rbloom.Bloom(max(len(keys), 1), false_positive_rate, _identity)
        bloom.update(keys.tolist())
    return Index(
        n=n, backend=backend, false_positive_rate=false_positive_rate, benchmark_names=names,
        benchmark_files={name: benchmarks[name].sha256s for name in names},
        item_benchmark=np.array(item_benchmark, np.int32), item_ids=list(ids), item_texts=list(texts),
        item_gram_counts=grams.gram_counts, short_lengths=grams.short_lengths, keys=keys,
        offsets=offsets, postings=grams.items, bloom=bloom, normalization=normalization.key,
    )
