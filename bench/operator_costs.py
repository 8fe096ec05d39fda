"""Per-document costs for the scale model (docs/scale.md): CPU time per document of each
operator family, and for each barrier the bytes per document of its signatures (in memory and
as the Parquet file a shard stores) and the CPU time per document of its resolve. All measured
in this one process, without Prefect, on web-like documents cut from the shared corpora.

    python bench/operator_costs.py --docs 20000
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import build_documents  # noqa: E402
from recipeflow.operators import registry  # noqa: E402

STREAMING = {
    "mapper": [("normalize_whitespace", {}), ("fix_unicode", {}), ("pii_redact", {})],
    "filter (cheap)": [("text_length_filter", {"min_length": 200}), ("words_num_filter", {})],
    "filter (Gopher/C4/FineWeb)": [
        ("gopher_quality_filter", {}),
        ("gopher_repetition_filter", {}),
        ("c4_quality_filter", {}),
        ("fineweb_quality_filter", {}),
    ],
    "language id (fastText)": [("language_id", {})],
}
BARRIERS = [
    ("exact_dedup", {}),
    ("url_dedup", {}),
    ("minhash_dedup", {}),
    ("top_k", {"field": "stat_text_length", "k": 1000}),
    ("sample", {"fraction": 0.1}),
]
BATCH = 1000


def build(name: str, params: dict):
    cls = registry.get(name)
    return cls(cls.Params.model_validate(params))


def batches(table: pa.Table) -> list[pa.Table]:
    return [table.slice(i, BATCH) for i in range(0, len(table), BATCH)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--docs", type=int, default=20_000)
    parser.add_argument("--json", help="write the figures here too")
    args = parser.parse_args()
    docs = build_documents(args.docs)[: args.docs]
    table = pa.Table.from_pylist([{"id": d["id"], "text": d["text"], "url": d["url"] or f"https://x/{d['id']}"} for d in docs])
    chars = sum(len(d["text"]) for d in docs) / len(docs)
    print(f"{len(docs):,} documents, {chars:,.0f} characters on average; one process, CPU time per document")
    figures: dict = {"docs": len(docs), "chars_per_doc": chars, "streaming": {}, "barriers": {}}
    print(f"\n{'family':<28}{'operator':<28}{'us/doc':>10}{'docs/s/core':>13}")
    for family, ops in STREAMING.items():
        for name, params in ops:
            try:
                op = build(name, params)
                start = time.process_time()
                for batch in batches(table):
                    op.process(batch)
                per_doc = (time.process_time() - start) / len(docs)
            except Exception as exc:  # an optional model or package missing: say so, go on
                print(f"{family:<28}{name:<28}  skipped: {type(exc).__name__}: {str(exc)[:80]}")
                continue
            figures["streaming"][name] = {"family": family, "us_per_doc": per_doc * 1e6}
            print(f"{family:<28}{name:<28}{per_doc * 1e6:>10.1f}{1 / per_doc:>13,.0f}")
    with_stats = build("text_length_filter", {"min_length": 0}).process(table).kept
    print(f"\n{'barrier':<16}{'sig us/doc':>11}{'sig B/doc mem':>15}{'sig B/doc file':>16}{'resolve us/doc':>16}")
    for name, params in BARRIERS:
        op = build(name, params)
        start = time.process_time()
        parts = [op.signatures(b) for b in batches(with_stats)]
        sig_cpu = (time.process_time() - start) / len(docs)
        signatures = pa.concat_tables(parts)
        buffer = io.BytesIO()
        pq.write_table(signatures, buffer)
        start = time.process_time()
        op.resolve([signatures])
        resolve_cpu = (time.process_time() - start) / len(docs)
        row = {
            "signatures_us_per_doc": sig_cpu * 1e6,
            "signature_bytes_per_doc_memory": signatures.nbytes / len(docs),
            "signature_bytes_per_doc_parquet": buffer.tell() / len(docs),
            "resolve_us_per_doc": resolve_cpu * 1e6,
        }
        figures["barriers"][name] = row
        print(f"{name:<16}{row['signatures_us_per_doc']:>11.1f}{row['signature_bytes_per_doc_memory']:>15.1f}"
              f"{row['signature_bytes_per_doc_parquet']:>16.1f}{row['resolve_us_per_doc']:>16.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
