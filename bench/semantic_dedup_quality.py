"""semantic_dedup on a planted set: precision and recall of the planted near copies at several
eps (the default first), and time.

    python bench/semantic_dedup_quality.py [--originals 600 --copies 150] [--scale 50000]

Quality: ``originals`` distinct English paragraphs of two real sources (see
``model_corpora.py``; paragraphs sharing >10% of their word 4-grams with an earlier one are
left out first, so the only duplicates are planted), then ``copies`` near copies of some of
them (half with ~8% of words dropped and a few lower-cased, half with two sentences swapped
and a short phrase appended), embedded with the bundled all-MiniLM-L6-v2. A dropped document
counts as correct when the document it was kept for is from its own planted group.

Time at scale (``--scale N``): N synthetic unit vectors (384 dimensions, 10% of them noisy
copies of others at cosine ~0.97), through signatures, resolve and apply in shards of 10,000:
the cost of the operator without the encoder.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.model_corpora import two_sources  # noqa: E402
from recipeflow.operators.embed import Embed, vectors_to_arrow  # noqa: E402
from recipeflow.operators.semantic_dedup import SemanticDedup  # noqa: E402
from tests.operators.corpora import _near_copy, _without_natural_duplicates  # noqa: E402


def planted(originals: int, copies: int, seed: int = 0):
    _, a, _, b = two_sources()
    pool = _without_natural_duplicates([t for pair in zip(a, b) for t in pair] + a[len(b):] + b[len(a):])
    if originals > len(pool):
        raise SystemExit(f"only {len(pool)} distinct paragraphs available; lower --originals")
    rng = np.random.default_rng(seed)
    texts, groups = pool[:originals], list(range(originals))
    for number, source in enumerate(sorted(rng.choice(originals, copies, replace=False).tolist())):
        texts.append(_near_copy(texts[source], rng, "edit" if number % 2 == 0 else "reorder"))
        groups.append(source)
    return texts, groups


def run(op, shards):
    decisions = op.resolve([op.signatures(s) for s in shards])
    return [op.apply(s, d) for s, d in zip(shards, decisions)]


def quality(args) -> None:
    texts, groups = planted(args.originals, args.copies)
    table = pa.table({"id": [f"d{i}" for i in range(len(texts))], "text": texts, "group": groups})
    start = time.perf_counter()
    embedded = Embed({"max_length": args.max_length}).process(table).kept
    embed_s = time.perf_counter() - start
    print(f"{len(texts)} documents ({args.originals} originals, {args.copies} planted copies); "
          f"embedding: {embed_s:.1f} s ({len(texts) / embed_s:.0f} docs/s, max_length {args.max_length})")
    group_of = dict(zip(table.column("id").to_pylist(), groups))
    shards = [embedded.slice(s, 1000) for s in range(0, len(embedded), 1000)]
    print(f"{'eps':>6} {'dropped':>8} {'precision':>9} {'recall':>7} {'dedup s':>8}")
    for eps in [SemanticDedup.Params.model_fields["eps"].default, 0.05, 0.15, 0.2]:
        start = time.perf_counter()
        results = run(SemanticDedup({"eps": eps}), shards)
        dedup_s = time.perf_counter() - start
        rejected = [r.rejected for r in results if r.rejected is not None]
        table = pa.concat_tables(rejected) if rejected else None
        pairs = list(zip(table.column("id").to_pylist(), table.column("dup_cluster_id").to_pylist())) if table else []
        correct = sum(group_of[d] == group_of[k] for d, k in pairs)
        precision = correct / len(pairs) if pairs else 1.0
        print(f"{eps:>6} {len(pairs):>8} {precision:>9.3f} {correct / args.copies:>7.3f} {dedup_s:>8.2f}")


def scale(n: int) -> None:
    rng = np.random.default_rng(0)
    base = rng.normal(size=(n, 384)).astype(np.float32)
    copies = rng.choice(n, n // 10, replace=False)
    base[copies[: len(copies) // 2]] = base[copies[len(copies) // 2:]] + 0.25 * rng.normal(
        size=(len(copies) - len(copies) // 2, 384)).astype(np.float32)[: len(copies) // 2]
    base /= np.linalg.norm(base, axis=1, keepdims=True)
    table = pa.table({"id": [f"v{i}" for i in range(n)], "text": [""] * n,
                      "__embedding": vectors_to_arrow(base)})
    shards = [table.slice(s, 10_000) for s in range(0, n, 10_000)]
    op = SemanticDedup({})
    start = time.perf_counter()
    signatures = [op.signatures(s) for s in shards]
    signature_s = time.perf_counter() - start
    start = time.perf_counter()
    decisions = op.resolve(signatures)
    resolve_s = time.perf_counter() - start
    start = time.perf_counter()
    kept = sum(len(op.apply(s, d).kept) for s, d in zip(shards, decisions))
    apply_s = time.perf_counter() - start
    size = sum(s.nbytes for s in signatures)
    print(f"scale: {n:,} vectors, {op.last_summary['clusters']} clusters: signatures {signature_s:.1f} s "
          f"({size / 2**20:.0f} MiB), resolve {resolve_s:.1f} s, apply {apply_s:.1f} s; "
          f"{n - kept:,} duplicates dropped")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--originals", type=int, default=600)
    parser.add_argument("--copies", type=int, default=150)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--scale", type=int, default=0, help="also time N synthetic vectors")
    args = parser.parse_args()
    quality(args)
    if args.scale:
        scale(args.scale)


if __name__ == "__main__":
    main()
