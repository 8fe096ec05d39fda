"""DSIR: on a mix of two real sources, with a target drawn from one, the share of selected
documents from the target's source as k shrinks (should approach 1), and documents/s.

    python bench/dsir_benchmark.py [--raw-a 2000 --raw-b 8000 --target 2000 --repeat 1]

The raw mix is ``raw-a`` paragraphs of source A and ``raw-b`` of source B (share of A:
raw-a / (raw-a + raw-b)); the target is ``target`` *other* paragraphs of A (every other
paragraph goes to the target until it is full). ``--repeat N`` copies the raw mix N times
(new ids) to time larger inputs. Sources: see ``model_corpora.py``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.model_corpora import two_sources  # noqa: E402
from recipeflow.operators.dsir import Dsir  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--raw-a", type=int, default=2000)
    parser.add_argument("--raw-b", type=int, default=8000)
    parser.add_argument("--target", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--shard-size", type=int, default=5000)
    args = parser.parse_args()

    name_a, a, name_b, b = two_sources()
    target, raw_a = a[1::2][:args.target], a[0::2][:args.raw_a]
    raw_b = b[:args.raw_b]
    texts = (raw_a + raw_b) * args.repeat
    source = (["A"] * len(raw_a) + ["B"] * len(raw_b)) * args.repeat
    order = np.random.default_rng(0).permutation(len(texts))
    table = pa.table({"id": [f"d{i}" for i in range(len(texts))],
                      "text": [texts[i] for i in order], "source": [source[i] for i in order]})
    shards = [table.slice(s, args.shard_size) for s in range(0, len(table), args.shard_size)]
    print(f"A = {name_a}, B = {name_b}; raw: {len(raw_a) * args.repeat} A + "
          f"{len(raw_b) * args.repeat} B (share of A {len(raw_a) / (len(raw_a) + len(raw_b)):.3f}); "
          f"target: {len(target)} other A paragraphs")
    with tempfile.TemporaryDirectory() as folder:
        target_file = Path(folder) / "target.jsonl"
        target_file.write_text("".join(json.dumps({"text": t}) + "\n" for t in target))
        start = time.perf_counter()
        op = Dsir({"target": str(target_file), "k": 1})
        op.target_counts()
        target_s = time.perf_counter() - start
        start = time.perf_counter()
        signatures = [op.signatures(s) for s in shards]
        signature_s = time.perf_counter() - start
        print(f"target model: {target_s:.2f} s; signatures: {signature_s:.2f} s "
              f"({len(table) / signature_s:,.0f} docs/s, one core)")
        print(f"{'k':>8} {'share of A':>10} {'resolve s':>10} {'apply s':>8}")
        n_a = len(raw_a) * args.repeat
        for k in sorted({max(1, n_a // f) for f in (40, 10, 4, 2, 1)} | {n_a * 2}):
            op = Dsir({"target": str(target_file), "k": min(k, len(table))})
            op._target = None
            start = time.perf_counter()
            decisions = op.resolve(signatures)
            resolve_s = time.perf_counter() - start
            start = time.perf_counter()
            kept = pa.concat_tables([op.apply(s, d).kept for s, d in zip(shards, decisions)])
            apply_s = time.perf_counter() - start
            share = float(np.mean(np.array(kept.column("source").to_pylist()) == "A"))
            print(f"{k:>8} {share:>10.3f} {resolve_s:>10.2f} {apply_s:>8.2f}")
        total = target_s + signature_s + resolve_s + apply_s
        print(f"end to end (target + signatures + resolve + apply, last k): {total:.2f} s, "
              f"{len(table) / total:,.0f} docs/s")


if __name__ == "__main__":
    main()
