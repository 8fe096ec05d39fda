"""Millions of distinct web-like documents from the small shared corpora, for scale runs.

The shared corpora hold about 8,000 web-like cuts (``bench/common.py``); repeated as they are,
10 million documents would be ~1,250 copies of each, and every deduplicator would keep almost
nothing. So each document here is one of those cuts (at most ``MAX_CHARS`` characters, cut at
a line end) with a quarter of its words replaced by words drawn from the vocabulary of the corpora's pages
in the same language:
two documents from the same cut share about a third of their word 5-grams at most, far below
MinHash's threshold. Into that stream go known shares of duplicates, drawn from the last
``RECENT`` documents of the same file:

* ``exact``: the same text under a new id and URL (exact dedup removes it);
* ``url``: a new text under an earlier document's URL (URL dedup removes it);
* ``near``: an earlier text with 3% of its words replaced (Jaccard of 5-grams about 0.85:
  MinHash dedup removes most).

Each document has ``id``, ``text``, ``url`` and ``quality`` (a uniform random number, for
``top_k``). Deterministic for (source, file index): files are written in parallel.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass
from multiprocessing import Pool
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import corpus_pages, web_like_documents  # noqa: E402

MAX_CHARS = 600
REPLACED = 0.25  # share of a base cut's words replaced in each document
NEAR_REPLACED = 0.03
RECENT = 10_000
SHARES = {"exact": 0.02, "url": 0.02, "near": 0.02}
_WORDS = re.compile(r"(\s+)")


@dataclass(frozen=True)
class FileJob:
    path: str
    source: str
    index: int
    documents: int


def _cut(text: str) -> str:
    if len(text) <= MAX_CHARS:
        return text
    end = text.rfind("\n", 0, MAX_CHARS)
    if end < MAX_CHARS // 4:
        end = text.rfind(" ", 0, MAX_CHARS)
    return text[: end if end > 0 else MAX_CHARS]


@dataclass(frozen=True)
class Base:
    parts: list[str]  # words at even positions, the whitespace between them at odd ones
    vocabulary: np.ndarray  # the words of every page in the cut's language


_BASES: list[Base] | None = None


def _load() -> list[Base]:
    """The base cuts, built once per process."""
    global _BASES
    if _BASES is None:
        pages = corpus_pages()
        cuts, vocabularies = [], {}
        for pass_number in range(4):
            for document in web_like_documents(pages, 0, pass_number):
                parts = _WORDS.split(_cut(document["text"]))
                if len(parts) >= 9:  # at least 5 words
                    cuts.append((parts, document["lang"]))
                    vocabularies.setdefault(document["lang"], set()).update(w for w in parts[0::2] if w)
        arrays = {lang: np.array(sorted(words), dtype=object) for lang, words in vocabularies.items()}
        _BASES = [Base(parts, arrays[lang]) for parts, lang in cuts]
    return _BASES


def _vary(parts: list[str], share: float, rng: np.random.Generator, vocabulary: np.ndarray) -> str:
    parts = list(parts)
    words = (len(parts) + 1) // 2
    chosen = np.flatnonzero(rng.random(words) < share)
    for position, word in zip(chosen.tolist(), vocabulary[rng.integers(0, len(vocabulary), len(chosen))]):
        parts[2 * position] = word
    return "".join(parts)


def write_file(job: FileJob) -> dict[str, int]:
    """One JSONL file of ``job.documents`` documents; how many of each kind it holds."""
    bases = _load()
    rng = np.random.default_rng([hash_of(job.source), job.index])
    recent: list[tuple[str, str, Base]] = []  # (text, url, base cut)
    counts = {"unique": 0, **{kind: 0 for kind in SHARES}}
    thresholds = np.cumsum(list(SHARES.values()))
    with open(job.path, "w", encoding="utf-8") as out:
        for number in range(job.documents):
            roll = rng.random()
            doc_id = f"{job.source}-{job.index:04d}-{number:07d}"
            url = f"https://{job.source}.example.org/{job.index}/{number}"
            kind = "unique"
            if recent and roll < thresholds[-1]:
                text0, url0, base0 = recent[int(rng.integers(0, len(recent)))]
                if roll < thresholds[0]:
                    kind, text = "exact", text0
                elif roll < thresholds[1]:
                    kind, url = "url", url0
                    base = bases[int(rng.integers(0, len(bases)))]
                    text = _vary(base.parts, REPLACED, rng, base.vocabulary)
                else:
                    kind, text = "near", _vary(_WORDS.split(text0), NEAR_REPLACED, rng, base0.vocabulary)
            else:
                base = bases[int(rng.integers(0, len(bases)))]
                text = _vary(base.parts, REPLACED, rng, base.vocabulary)
            counts[kind] += 1
            if kind == "unique":
                if len(recent) < RECENT:
                    recent.append((text, url, base))
                else:
                    recent[int(rng.integers(0, RECENT))] = (text, url, base)
            out.write(json.dumps({"id": doc_id, "text": text, "url": url,
                                  "quality": round(float(rng.random()), 6)}, ensure_ascii=False))
            out.write("\n")
    return counts


def hash_of(name: str) -> int:
    return int.from_bytes(name.encode()[:8].ljust(8, b"\0"), "little")


def write_corpus(folder: Path, sources: list[str], documents: int, per_file: int,
                 processes: int = 2) -> dict[str, dict[str, int]]:
    """``documents`` documents split evenly over ``sources``, in files of ``per_file``:
    ``folder/<source>/part-NNNN.jsonl``. Returns the counts of each kind per source."""
    jobs = []
    for source in sources:
        remaining = documents // len(sources)
        (folder / source).mkdir(parents=True, exist_ok=True)
        index = 0
        while remaining > 0:
            size = min(per_file, remaining)
            jobs.append(FileJob(str(folder / source / f"part-{index:04d}.jsonl"), source, index, size))
            remaining -= size
            index += 1
    totals = {source: {} for source in sources}
    with Pool(processes) as pool:
        for job, counts in zip(jobs, pool.imap(write_file, jobs)):
            for kind, n in counts.items():
                totals[job.source][kind] = totals[job.source].get(kind, 0) + n
    return totals


if __name__ == "__main__":
    import argparse
    import time

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--docs", type=int, default=100_000)
    parser.add_argument("--per-file", type=int, default=250_000)
    args = parser.parse_args()
    start = time.perf_counter()
    print(json.dumps(write_corpus(args.folder, ["web_a", "web_b"], args.docs, args.per_file), indent=1))
    print(f"{time.perf_counter() - start:.1f} s")
