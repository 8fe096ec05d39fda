"""Every barrier at 1 million and 10 million documents: time, documents per second and the peak
resident memory of all processes together (the flow run, the embedded Prefect server, the
workers, the fork server they come from), at 2 workers. Issue 20 asks for at most 2 GB, and
time per document at 10M within 15% of that at 1M. Memory is the summed proportional set size
(PSS: pages shared by processes, as forked workers share their interpreter with the fork
server, counted once); summed RSS, which counts a shared page in every process, is printed too.

The corpus (``bench/scale_corpus.py``): documents cut from the shared corpora to at most 600
characters, a quarter of their words replaced (so they are distinct), with 2% exact, 2% URL and
2% near duplicates planted; two sources of half the documents each, files of 250,000.

The recipe, one run:

    a_dedup  = web_a | exact_dedup | url_dedup | minhash_dedup      (partitions: 2 each)
    b_dedup  = web_b | exact_dedup | url_dedup | minhash_dedup
    a_best   = a_dedup | top_k {field: quality, k: 30% of the documents}
    b_sample = b_dedup | sample {fraction: 0.6}
    mixed    = [a_best, b_sample] | mix {by: documents, weights 1:1}  -> the output

A 20-document run goes first on the same Prefect home (its database created, as after a user's
first run). Corpora are written once under ``--work`` and reused.

    python bench/scale_benchmark.py --docs 1000000 10000000 [--work DIR] [--shard-size 50000]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import REPO, mib, run_timed  # noqa: E402
from bench.scale_corpus import write_corpus  # noqa: E402

SOURCES = ["web_a", "web_b"]
PER_FILE = 250_000


def recipe(corpus: Path, output: Path, docs: int, shard_size: int, workers: int, partitions: int) -> dict:
    dedup = [
        {"exact_dedup": {"partitions": partitions}},
        {"url_dedup": {"partitions": partitions}},
        {"minhash_dedup": {"partitions": partitions}},
    ]
    return {
        "name": "scale-benchmark",
        "inputs": {s: {"path": str(corpus / s / "*.jsonl"), "format": "jsonl"} for s in SOURCES},
        "nodes": {
            "a_dedup": {"from": "web_a", "process": dedup},
            "b_dedup": {"from": "web_b", "process": dedup},
            "a_best": {"from": "a_dedup", "process": [{"top_k": {"field": "quality", "k": int(docs * 0.3)}}]},
            "b_sample": {"from": "b_dedup", "process": [{"sample": {"fraction": 0.6, "seed": 1}}]},
            "mixed": {"from": ["a_best", "b_sample"],
                      "process": [{"mix": {"by": "documents", "weights": {"a_best": 0.5, "b_sample": 0.5}}}]},
        },
        "outputs": {"mixed": {"path": str(output), "keep_rejected": False}},
        "run": {"executor": "processes", "workers": workers, "shard_size": shard_size},
    }


def corpus_for(work: Path, docs: int) -> Path:
    folder = work / f"corpus-{docs}"
    done = folder / "counts.json"
    if not done.is_file():
        shutil.rmtree(folder, ignore_errors=True)
        start = time.perf_counter()
        counts = write_corpus(folder, SOURCES, docs, PER_FILE)
        done.write_text(json.dumps(counts))
        print(f"  wrote {docs:,} documents in {time.perf_counter() - start:.0f} s: {counts}", flush=True)
    return folder


def run_recipe(work: Path, name: str, spec: dict, env: dict):
    path = work / f"{name}.yaml"
    path.write_text(json.dumps(spec))  # JSON is YAML
    timed = run_timed([sys.executable, "-m", "recipeflow.cli", "run", str(path), "--no-progress"],
                      env=env, cwd=REPO, sample_every=0.2)
    if timed.returncode != 0:
        raise SystemExit(f"recipeflow failed on {name}:\n{timed.output[-6000:]}")
    return timed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--docs", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--work", type=Path, default=Path("/tmp/rf-scale"))
    parser.add_argument("--shard-size", type=int, default=50_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--partitions", type=int, default=2)
    args = parser.parse_args()
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PREFECT_HOME": str(work / "prefect-home"),
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_LOGGING_LEVEL": "WARNING"}
    env.pop("PREFECT_API_URL", None)

    warm = corpus_for(work, 40)  # the first run: the Prefect home's database
    shutil.rmtree(work / "out-warm", ignore_errors=True)
    run_recipe(work, "warm", recipe(warm, work / "out-warm", 40, args.shard_size, args.workers, args.partitions), env)

    rows = []
    for docs in args.docs:
        corpus = corpus_for(work, docs)
        output = work / f"out-{docs}"
        shutil.rmtree(output, ignore_errors=True)  # the stage cache too: it lives beside the output
        timed = run_recipe(work, f"scale-{docs}",
                           recipe(corpus, output, docs, args.shard_size, args.workers, args.partitions), env)
        rows.append((docs, timed))
        print(f"{docs:>12,} documents: {timed.seconds:8.1f} s, {docs / timed.seconds:8,.0f} docs/s, "
              f"{timed.seconds / docs * 1e6:6.1f} µs/doc, CPU {timed.cpu_seconds:8.1f} s, "
              f"peak (all processes) {mib(timed.peak_pss_bytes)} PSS, {mib(timed.peak_rss_bytes)} summed RSS; "
              f"flow run {mib(timed.peak_root_rss_bytes)}",
              flush=True)
        (work / f"scale-{docs}.log").write_text(timed.output)  # the run's summary, steps and counts
        shutil.rmtree(output, ignore_errors=True)  # disk: the next size needs it
    if len(rows) > 1:
        (small, a), (large, b) = rows[0], rows[-1]
        per_small, per_large = a.seconds / small, b.seconds / large
        print(f"time per document, {large:,} vs {small:,}: {per_large / per_small:.2f}x "
              f"(CPU per document {b.cpu_seconds / large / (a.cpu_seconds / small):.2f}x)")


if __name__ == "__main__":
    main()
