"""Precision and recall of ``minhash_dedup`` against exact Jaccard similarity.

Real documents from the shared corpora (web-like documents cut from the pages by
``bench/common.py``, or whole pages with ``--source pages``; those with a natural
near-duplicate among them are left out) get planted near-duplicates made by the edits crawls
make: a changed boilerplate header and footer, inserted lines, small word edits, or a mix.
Each edit's size is drawn to aim at a Jaccard similarity spread evenly over [--low, 1.0] (a
stress test: many pairs lie close to the threshold); the similarity actually reached is then
computed exactly on the operator's own shingles (5-grams of simplified words), for every pair
of documents of the final set (a sparse matrix product), not only the planted ones.

A pair is *found* when ``minhash_dedup`` (annotate mode, so nothing is dropped) puts both
documents in one cluster. At threshold 0.8: precision = found pairs with J >= 0.8 / found
pairs; recall = found pairs with J >= 0.8 / pairs with J >= 0.8. Two configurations run once
each: FineWeb's (every band collision is a duplicate) and the same with
``jaccard_threshold: 0.8`` (collisions verified on bottom-k sketches); a table shows the share
of planted pairs found per similarity bin (the S-curve).

    python bench/minhash_quality.py                   # ~7,400 documents, 1,500 planted pairs
    python bench/minhash_quality.py --source pages --variants 300
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import corpus_pages, web_like_documents  # noqa: E402
from recipeflow.operators.dedup.text import shingle_hashes  # noqa: E402
from recipeflow.operators.minhash_dedup import MinhashDedup  # noqa: E402

THRESHOLD = 0.8
NGRAM = 5
EDIT_KINDS = ("boilerplate", "inserted_lines", "word_edits", "mixed")

# Boilerplate of the kind extraction leaves on crawled pages.
HEADERS = [
    "Home | Docs | Download | Community | Blog | Contact",
    "Skip to main content",
    "Menu Search Sign in Register Language English Deutsch Français",
    "You are here: Home > Documentation > Handbook",
    "This site uses cookies to improve your experience. Accept all | Settings",
    "Breaking: new release available now, read the announcement",
]
FOOTERS = [
    "Copyright 2013-2024 the authors. All rights reserved.",
    "Privacy policy | Terms of use | Imprint | Cookie settings",
    "Share this page: Facebook Twitter LinkedIn Email Print",
    "Last updated on 12 March 2024 by the documentation team",
    "Was this page helpful? Yes No Send feedback",
    "Powered by a static site generator. Hosted by a mirror network.",
]


@dataclass
class Planted:
    original: int  # index of the original document
    variant: int  # index of the planted near-duplicate
    kind: str
    jaccard: float


def shingle_set(text: str) -> np.ndarray:
    """The document's distinct shingles, exactly as minhash_dedup makes them."""
    return np.unique(shingle_hashes(text, NGRAM, "word", True))


def exact_jaccard(a: np.ndarray, b: np.ndarray) -> float:
    if len(a) == 0 and len(b) == 0:
        return 1.0
    shared = len(np.intersect1d(a, b, assume_unique=True))
    return shared / (len(a) + len(b) - shared)


def pairs_at_least(sets: list[np.ndarray], threshold: float) -> dict[tuple[int, int], float]:
    """Every pair (i < j) with exact Jaccard >= threshold, via a documents x shingles product."""
    from scipy import sparse

    universe, column = np.unique(np.concatenate(sets), return_inverse=True)
    rows = np.repeat(np.arange(len(sets)), [len(s) for s in sets])
    matrix = sparse.csr_matrix(
        (np.ones(len(rows), dtype=np.int32), (rows, column)), shape=(len(sets), len(universe))
    )
    shared = sparse.triu(matrix @ matrix.T, k=1).tocoo()
    sizes = np.array([len(s) for s in sets])
    jaccard = shared.data / (sizes[shared.row] + sizes[shared.col] - shared.data)
    keep = jaccard >= threshold
    return {(int(i), int(j)): float(v) for i, j, v in zip(shared.row[keep], shared.col[keep], jaccard[keep])}


# ----------------------------------------------------------------------------------------------
# Planting near-duplicates
# ----------------------------------------------------------------------------------------------


def word_edits(text: str, shingles: int, target: float, rng: random.Random) -> str:
    """Replace, delete or insert words: each isolated edit changes ~ngram shingles."""
    words = text.split(" ")
    count = max(1, round(shingles * (1 - target) / (NGRAM * (1 + target))))
    for _ in range(min(count, len(words) - 1)):
        position = rng.randrange(len(words))
        action = rng.random()
        if action < 0.6:
            words[position] = rng.choice(["the", "a", "new", "updated", "Debian", "system", "42"])
        elif action < 0.8 and len(words) > 2:
            del words[position]
        else:
            words.insert(position, rng.choice(["also", "now", "really", "often"]))
    return " ".join(words)


def inserted_lines(text: str, shingles: int, target: float, filler: list[str], rng: random.Random) -> str:
    """Insert lines from other pages (ads, related links, comments) between existing lines."""
    lines = text.split("\n")
    budget = shingles * (1 - target) / target  # new shingles that reach the target
    added = 0.0
    while added < budget:
        line = rng.choice(filler)
        lines.insert(rng.randrange(len(lines) + 1), line)
        added += len(line.split()) + NGRAM - 1
    return "\n".join(lines)


def boilerplate(text: str, shingles: int, target: float, rng: random.Random) -> tuple[str, str]:
    """(original, variant) with different headers and footers: the page as two crawls saw it."""
    budget = shingles * (1 - target) / (1 + target)  # split between the two copies

    def chrome(pool: list[str], words: float) -> list[str]:
        out, total = [], 0
        while total < words:
            line = rng.choice(pool)
            out.append(line)
            total += len(line.split()) + NGRAM - 1
        return out

    head_a, head_b = chrome(HEADERS, budget / 2), chrome(HEADERS, budget / 2)
    foot_a, foot_b = chrome(FOOTERS, budget / 2), chrome(FOOTERS, budget / 2)
    original = "\n".join(head_a + [text] + foot_a)
    variant = "\n".join(head_b + [text] + foot_b)
    return original, variant


def plant(text: str, kind: str, target: float, filler: list[str], rng: random.Random) -> tuple[str, str]:
    """(original as it appears in the dataset, its near-duplicate)."""
    shingles = len(shingle_set(text))
    if kind == "boilerplate":
        return boilerplate(text, shingles, target, rng)
    if kind == "inserted_lines":
        return text, inserted_lines(text, shingles, target, filler, rng)
    if kind == "word_edits":
        return text, word_edits(text, shingles, target, rng)
    # mixed: a third of the change from each kind
    third = 1 - (1 - target) / 3
    original, variant = boilerplate(text, shingles, third, rng)
    variant = inserted_lines(variant, shingles, third, filler, rng)
    return original, word_edits(variant, shingles, third, rng)


def base_documents(source: str, seed: int) -> list[str]:
    """Whole corpus pages, or web-like documents cut from them (bench/common.py: sizes from a
    short snippet to a long article), of at least 30 words."""
    pages = corpus_pages()
    records = pages if source == "pages" else web_like_documents(pages, seed=seed)
    return [r["text"] for r in records if len(r["text"].split()) >= 30]


def build_dataset(
    variants: int, low: float, seed: int, source: str
) -> tuple[list[str], list[np.ndarray], list[Planted]]:
    """Documents without natural near-duplicates, then planted variants of some of them (after
    all the others, shuffled, as a later crawl would bring them)."""
    rng = random.Random(seed)
    pages = base_documents(source, seed)
    natural = pairs_at_least([shingle_set(t) for t in pages], 0.5)
    crowded = {i for pair in natural for i in pair}
    pages = [t for i, t in enumerate(pages) if i not in crowded]
    filler = [line for t in pages for line in t.split("\n") if 5 <= len(line.split()) <= 25]
    chosen = set(rng.sample(range(len(pages)), min(variants, len(pages))))
    texts: list[str] = []
    planted: list[tuple[Planted, str]] = []
    for index, page in enumerate(pages):
        if index in chosen:
            kind = rng.choice(EDIT_KINDS)
            original, variant = plant(page, kind, rng.uniform(low, 1.0), filler, rng)
            planted.append((Planted(original=len(texts), variant=-1, kind=kind, jaccard=0.0), variant))
            page = original
        texts.append(page)
    rng.shuffle(planted)
    for entry, variant in planted:
        entry.variant = len(texts)
        texts.append(variant)
    sets = [shingle_set(t) for t in texts]
    for entry, _ in planted:
        entry.jaccard = exact_jaccard(sets[entry.original], sets[entry.variant])
    return texts, sets, [entry for entry, _ in planted]


# ----------------------------------------------------------------------------------------------
# Running the operator and scoring it
# ----------------------------------------------------------------------------------------------


def clusters(texts: list[str], params: dict, shard_size: int = 1000) -> tuple[np.ndarray, float]:
    """Each document's cluster (the kept document's position), and the seconds it took:
    minhash_dedup's three phases in-process, in annotate mode."""
    op = MinhashDedup({**params, "mode": "annotate"})
    ids = [f"d{i}" for i in range(len(texts))]
    table = pa.table({"id": ids, "text": texts})
    started = time.perf_counter()
    shards = [table.slice(o, shard_size) for o in range(0, len(table), shard_size)]
    signatures = [op.signatures(s) for s in shards]
    decisions = op.resolve(signatures)
    seconds = time.perf_counter() - started
    cluster = np.arange(len(texts))
    position = 0
    for decision in decisions:
        assert decision.fields is not None
        for row, kept_id in enumerate(decision.fields["dup_cluster_id"]):
            if kept_id is not None:
                cluster[position + row] = int(kept_id[1:])
        position += len(decision.fields["dup_cluster_id"])
    return cluster, seconds


def found_pairs(cluster: np.ndarray) -> set[tuple[int, int]]:
    members: dict[int, list[int]] = {}
    for doc, label in enumerate(cluster.tolist()):
        members.setdefault(label, []).append(doc)
    return {(a, b) for group in members.values() if len(group) > 1 for i, a in enumerate(group) for b in group[i + 1 :]}


@dataclass
class Score:
    precision: float
    recall: float
    found: int
    true_pairs: int
    false_pairs: int
    missed: int


def score(found: set[tuple[int, int]], truth: dict[tuple[int, int], float]) -> Score:
    hits = len(found & truth.keys())
    return Score(
        precision=hits / len(found) if found else 1.0,
        recall=hits / len(truth) if truth else 1.0,
        found=len(found),
        true_pairs=len(truth),
        false_pairs=len(found) - hits,
        missed=len(truth) - hits,
    )


def detection_by_bin(planted: list[Planted], found: set[tuple[int, int]]) -> list[tuple[str, int, float]]:
    edges = [0.0, 0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 1.0001]
    rows = []
    for lo, hi in zip(edges, edges[1:]):
        members = [p for p in planted if lo <= p.jaccard < hi]
        if members:
            share = sum((min(p.original, p.variant), max(p.original, p.variant)) in found for p in members) / len(members)
            rows.append((f"[{lo:.2f}, {min(hi, 1.0):.2f}{']' if hi > 1 else ')'}", len(members), share))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variants", type=int, default=1500, help="planted near-duplicate pairs")
    parser.add_argument("--low", type=float, default=0.5, help="lowest Jaccard the edits aim at")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--source", choices=("web", "pages"), default="web",
        help="base documents: web-like documents cut from the pages (default), or whole pages",
    )
    parser.add_argument("--sketch-size", type=int, default=256, help="bottom-k size for verification")
    args = parser.parse_args()

    started = time.perf_counter()
    texts, sets, planted = build_dataset(args.variants, args.low, args.seed, args.source)
    truth = pairs_at_least(sets, THRESHOLD)
    planted_true = sum(p.jaccard >= THRESHOLD for p in planted)
    print(f"{len(texts)} documents, {len(planted)} planted pairs ({planted_true} with J >= {THRESHOLD}); "
          f"{len(truth)} pairs with J >= {THRESHOLD} in all; built in {time.perf_counter() - started:.0f} s")
    kinds = {k: sum(p.kind == k for p in planted) for k in EDIT_KINDS}
    print("edits:", ", ".join(f"{k} {n}" for k, n in kinds.items()))

    configurations = {
        "FineWeb 14x8, bucket collision = duplicate": {},
        "14x8 + jaccard_threshold 0.8 (verified)": {"jaccard_threshold": THRESHOLD, "sketch_size": args.sketch_size},
    }
    results = {}
    for name, params in configurations.items():
        cluster, seconds = clusters(texts, params)
        found = found_pairs(cluster)
        results[name] = (score(found, truth), detection_by_bin(planted, found), seconds)

    print()
    print(f"{'configuration':46} {'precision':>9} {'recall':>7} {'found':>6} {'false':>6} {'missed':>6} {'time':>6}")
    for name, (s, _, seconds) in results.items():
        print(f"{name:46} {s.precision:9.3f} {s.recall:7.3f} {s.found:6d} {s.false_pairs:6d} {s.missed:6d} {seconds:5.1f}s")
    print()
    print("share of planted pairs found, by exact Jaccard:")
    names = list(results)
    print(f"{'J':14} {'pairs':>6} " + " ".join(f"{n[:24]:>26}" for n in names))
    for i, (label, count, _) in enumerate(results[names[0]][1]):
        shares = " ".join(f"{results[n][1][i][2]:26.3f}" for n in names)
        print(f"{label:14} {count:6d} {shares}")


if __name__ == "__main__":
    main()
