"""Decontamination index: memory per benchmark item for both backends, and the Bloom filter's
measured false-positive rate before verification.

Items: (question, answer) pairs of sentences of the bundled handbook sample (the same items as
bench/decontamination_benchmark.py). The false-positive rate is measured on the n-grams of
web-like documents from the shared corpora: of the document n-grams that are not item n-grams
(known exactly from the sorted hash array), the share the filter lets through. Every one of them
is then dropped by the exact verification (checked here too).

    python bench/decontamination_index_memory.py [--items 5000] [--docs 5000] [--n 13]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from bench.common import build_documents, write_jsonl  # noqa: E402
from bench.decontamination_benchmark import benchmark_items  # noqa: E402
from recipeflow.operators.decontamination.text import window_hashes, word_hashes  # noqa: E402
from recipeflow.operators.decontaminate import Decontaminate  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=5000)
    parser.add_argument("--docs", type=int, default=5000)
    parser.add_argument("--n", type=int, default=13)
    args = parser.parse_args()

    items = benchmark_items(args.items, min_words=8)
    docs = [d["text"] for d in build_documents(args.docs)[: args.docs]]
    hashes, doc_of_word = word_hashes(docs)
    grams, _ = window_hashes(hashes, doc_of_word, args.n)
    print(f"{len(items)} items (bundled sample), {len(docs)} documents, {len(grams):,} document "
          f"{args.n}-grams queried")
    with tempfile.TemporaryDirectory() as tmp:
        items_file = Path(tmp) / "items.jsonl"
        write_jsonl(items, items_file)
        spec = {"sample": {"path": str(items_file), "fields": ["question", "answer"], "id_field": "id"}}
        print(f"\n{'backend':18} {'build s':>8} {'index file':>11} {'lookup B/item':>14} "
              f"{'on disk B/item':>15} {'FP rate (before verif.)':>24} {'FP after':>9}")
        for backend, rate in [("exact", None), ("bloom", 0.01), ("bloom", 0.001)]:
            params = {"benchmarks": spec, "n": args.n, "index": backend}
            if rate is not None:
                params["false_positive_rate"] = rate
            op = Decontaminate(params)
            start = time.perf_counter()
            index = op.build_index()
            built = time.perf_counter() - start
            path = os.path.join(tmp, f"{op.index_key()}.index")
            index.save(path)
            resident = index.resident_bytes()
            per_item = resident["lookup"] / index.items
            on_disk = resident["verification_on_disk"] / index.items
            fp_text, after = "-", "-"
            if backend == "bloom":
                truly_in = index._in_keys(grams)
                verified = index.member(grams)
                assert np.array_equal(verified, truly_in), "a Bloom false positive passed verification"
                negatives = len(grams) - int(truly_in.sum())
                fp_text = f"{index.bloom_false_positives / max(negatives, 1):.5f} (target {rate})"
                after = "0"
            label = backend if rate is None else f"bloom fpr={rate}"
            print(f"{label:18} {built:8.2f} {os.path.getsize(path) / 2**20:9.1f}MB {per_item:14.1f} "
                  f"{on_disk:15.1f} {fp_text:>24} {after:>9}")
        grams_per_item = index.item_gram_counts.mean()
        print(f"\nitems hold {grams_per_item:.1f} distinct {args.n}-grams on average; lookup memory "
              "is the structure consulted for every document n-gram (exact: keys + offsets + "
              "postings; bloom: the filter); 'on disk' is read (memory-mapped) only on a Bloom hit. "
              "Item ids and texts (for reports and the paraphrase judge) come on top, "
              f"{sum(len(t.encode()) for t in index.item_texts) / index.items:.0f} bytes/item of text.")


if __name__ == "__main__":
    main()
