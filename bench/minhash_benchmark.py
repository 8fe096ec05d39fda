"""MinHash deduplication side by side: recipeflow's ``minhash_dedup`` against DataTrove's
four-stage MinHash, on the same documents and cores, in one run.

* Documents: web-like documents cut from the shared corpora (``bench/common.py``), written to
  8 JSONL files, with near-duplicates planted in ``--planted`` of them (crawl-like edits:
  changed header/footer, inserted lines, word edits, aiming at Jaccard 0.7-1.0; the exact
  Jaccard of each planted pair is computed on recipeflow's shingles).
* recipeflow: ``recipeflow run`` of a one-operator recipe (``minhash_dedup`` with FineWeb's
  defaults: word 5-grams, 14 bands x 8 rows), processes executor, 2 workers, embedded Prefect
  server included in time and memory. A run on 20 documents goes first: it measures the
  start-up alone and creates the Prefect home's database, as a user's first run does.
* DataTrove 0.10.1: MinhashDedupSignature -> MinhashDedupBuckets -> MinhashDedupCluster ->
  MinhashDedupFilter (5-grams, 14 x 8), LocalPipelineExecutor with 2 workers, reading the same
  files and writing JSONL, all four stages in one timed process.

Reported: wall time and documents per second of each, the ratio, peak resident memory of
each whole process tree, documents removed, and recall on the planted pairs with J >= 0.8
(one of the two removed). Then, since one run's recall depends on the seed's draw of hash
functions (about ±0.004 for either tool), both tools' band-bucket recall of the same planted
pairs over seeds 1-20 (``--recall-seeds``; bench/minhash_seed_recall.py): the mean is what
each tool's hashing gives. With ``--docs 1000000`` (or ``--no-datatrove``) recipeflow runs
alone: time, documents per second and peak memory.

    python bench/minhash_benchmark.py                  # 50,000 documents
    python bench/minhash_benchmark.py --docs 1000000   # recipeflow alone
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import shutil
import sys
import tempfile
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (  # noqa: E402
    REPO,
    TimedRun,
    corpus_pages,
    mib,
    reference_python,
    run_timed,
    web_like_documents,
)
from bench import minhash_seed_recall as seed_recall  # noqa: E402
from bench.minhash_quality import EDIT_KINDS, exact_jaccard, plant, shingle_set  # noqa: E402

FILES = 8
THRESHOLD = 0.8
DATATROVE_LIMIT = 200_000  # above this, DataTrove is left out unless asked for


@dataclass
class Corpus:
    folder: Path
    documents: int
    planted: dict[str, tuple[str, float]]  # variant id -> (original id, exact Jaccard)


def documents(count: int, seed: int) -> Iterator[dict]:
    """``count`` web-like documents, passes over the corpora cut differently each time."""
    pages = corpus_pages()
    made, pass_number = 0, 0
    while True:
        for record in web_like_documents(pages, seed=seed, pass_number=pass_number):
            if made == count:
                return
            yield {"id": record["id"], "text": record["text"], "url": record["url"]}
            made += 1
        pass_number += 1


def write_corpus(folder: Path, count: int, planted_share: float, seed: int) -> Corpus:
    """JSONL files of ``count`` documents, a share of them followed later by a planted
    near-duplicate (which takes the place of a document, so the total stays ``count``)."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    pages = corpus_pages()
    filler = [line for p in pages[:400] for line in p["text"].split("\n") if 5 <= len(line.split()) <= 25]
    outputs = [open(folder / f"part-{i:02d}.jsonl", "w", encoding="utf-8") for i in range(FILES)]
    planted: dict[str, tuple[str, float]] = {}
    pending: list[dict] = []
    written = 0
    try:
        for record in documents(count, seed):
            if written + len(pending) >= count:
                break
            if len(record["text"].split()) >= 50 and rng.random() < planted_share:
                original, variant = plant(record["text"], rng.choice(EDIT_KINDS), rng.uniform(0.7, 1.0), filler, rng)
                record["text"] = original
                variant_id = record["id"] + "-near"
                planted[variant_id] = (record["id"], exact_jaccard(shingle_set(original), shingle_set(variant)))
                pending.append({"id": variant_id, "text": variant, "url": record["url"]})
            outputs[written % FILES].write(json.dumps(record, ensure_ascii=False) + "\n")
            written += 1
            if pending and rng.random() < 0.5:  # near-duplicates come later, spread out
                outputs[written % FILES].write(json.dumps(pending.pop(0), ensure_ascii=False) + "\n")
                written += 1
        for record in pending:
            outputs[written % FILES].write(json.dumps(record, ensure_ascii=False) + "\n")
            written += 1
    finally:
        for f in outputs:
            f.close()
    return Corpus(folder, written, planted)


def all_ids(folder: Path) -> list[str]:
    ids = []
    for path in sorted(folder.glob("*.jsonl")):
        with open(path, encoding="utf-8") as f:
            ids.extend(json.loads(line)["id"] for line in f)
    return ids


# ----------------------------------------------------------------------------------------------
# recipeflow
# ----------------------------------------------------------------------------------------------


def _recipeflow_command(work: Path, name: str, inputs: str, output: Path, workers: int, shard_size: int,
                        partitions: int) -> list[str]:
    recipe = {
        "name": "minhash-benchmark",
        "inputs": {"docs": {"path": inputs, "format": "jsonl"}},
        "process": [{"minhash_dedup": {"partitions": partitions}}],
        "output": {"path": str(output), "keep_rejected": False},
        "run": {"executor": "processes", "workers": workers, "shard_size": shard_size},
    }
    recipe_path = work / f"{name}.yaml"
    recipe_path.write_text(json.dumps(recipe))  # JSON is YAML
    return [sys.executable, "-m", "recipeflow.cli", "run", str(recipe_path), "--no-progress"]


def run_recipeflow(corpus: Corpus, work: Path, workers: int, shard_size: int, partitions: int) -> tuple[TimedRun, TimedRun, set[str]]:
    """``recipeflow run`` in its own process tree: first on 20 documents (Prefect's start-up
    and flow overhead alone; it also creates the Prefect home's database, as a user's first
    run does), then on the corpus. The two timings, and the ids the second kept."""
    output = work / "recipeflow-out"
    sample = work / "startup" / "docs.jsonl"
    sample.parent.mkdir(parents=True, exist_ok=True)
    with open(corpus.folder / "part-00.jsonl", encoding="utf-8") as f, open(sample, "w", encoding="utf-8") as out:
        out.writelines(line for _, line in zip(range(20), f))
    env = {
        **os.environ,
        "PREFECT_HOME": str(work / "prefect-home"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_LOGGING_LEVEL": "WARNING",
    }
    env.pop("PREFECT_API_URL", None)
    timings = []
    for name, inputs, out in [("startup", str(sample), work / "startup" / "out"),
                              ("minhash-benchmark", str(corpus.folder / "*.jsonl"), output)]:
        command = _recipeflow_command(work, name, inputs, out, workers, shard_size, partitions)
        timed = run_timed(command, env=env, cwd=REPO)
        if timed.returncode != 0:
            raise SystemExit(f"recipeflow failed:\n{timed.output[-4000:]}")
        timings.append(timed)
    kept: set[str] = set()
    for path in (output / "versions").glob("*/data/*.parquet"):
        kept.update(pq.read_table(path, columns=["id"]).column("id").to_pylist())
    return timings[0], timings[1], kept


# ----------------------------------------------------------------------------------------------
# DataTrove
# ----------------------------------------------------------------------------------------------

DATATROVE_SCRIPT = textwrap.dedent(
    """
    import sys

    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.dedup import (
        MinhashDedupBuckets, MinhashDedupCluster, MinhashDedupFilter, MinhashDedupSignature,
    )
    from datatrove.pipeline.dedup.minhash import MinhashConfig
    from datatrove.pipeline.readers import JsonlReader
    from datatrove.pipeline.writers import JsonlWriter


    def main():
        source, work, files, workers = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
        config = MinhashConfig(n_grams=5, num_buckets=14, hashes_per_bucket=8)
        signatures = LocalPipelineExecutor(
            pipeline=[JsonlReader(source, glob_pattern="*.jsonl"),
                      MinhashDedupSignature(output_folder=f"{work}/signatures", config=config)],
            tasks=files, workers=workers, logging_dir=f"{work}/logs/signatures",
        )
        buckets = LocalPipelineExecutor(
            pipeline=[MinhashDedupBuckets(input_folder=f"{work}/signatures",
                                          output_folder=f"{work}/buckets", config=config)],
            tasks=config.num_buckets, workers=workers, logging_dir=f"{work}/logs/buckets",
            depends=signatures,
        )
        clusters = LocalPipelineExecutor(
            pipeline=[MinhashDedupCluster(input_folder=f"{work}/buckets",
                                          output_folder=f"{work}/remove_ids", config=config)],
            tasks=1, logging_dir=f"{work}/logs/clusters", depends=buckets,
        )
        filtered = LocalPipelineExecutor(
            pipeline=[JsonlReader(source, glob_pattern="*.jsonl"),
                      MinhashDedupFilter(input_folder=f"{work}/remove_ids"),
                      JsonlWriter(f"{work}/output")],
            tasks=files, workers=workers, logging_dir=f"{work}/logs/filter", depends=clusters,
        )
        filtered.run()


    if __name__ == "__main__":  # the executor starts worker processes (forkserver)
        main()
    """
)


def run_datatrove(corpus: Corpus, work: Path, workers: int) -> tuple[TimedRun, set[str]]:
    folder = work / "datatrove"
    folder.mkdir(parents=True, exist_ok=True)
    script = folder / "pipeline.py"
    script.write_text(DATATROVE_SCRIPT)
    python = reference_python("datatrove")
    command = [str(python), str(script), str(corpus.folder), str(folder), str(FILES), str(workers)]
    timed = run_timed(command, env={**os.environ, "TQDM_DISABLE": "1"}, cwd=folder)
    if timed.returncode != 0:
        raise SystemExit(f"DataTrove failed:\n{timed.output[-4000:]}")
    kept: set[str] = set()
    for path in (folder / "output").glob("*.jsonl.gz"):
        with gzip.open(path, "rt", encoding="utf-8") as f:
            kept.update(json.loads(line)["id"] for line in f)
    return timed, kept


# ----------------------------------------------------------------------------------------------
# Report
# ----------------------------------------------------------------------------------------------


def planted_recall(corpus: Corpus, kept: set[str]) -> tuple[float, int]:
    """Share of planted pairs with J >= 0.8 of which one document was removed."""
    true_pairs = [(v, o) for v, (o, j) in corpus.planted.items() if j >= THRESHOLD]
    found = sum(v not in kept or o not in kept for v, o in true_pairs)
    return (found / len(true_pairs) if true_pairs else 1.0), len(true_pairs)


def write_planted_pairs(corpus: Corpus, path: Path) -> Path:
    """The texts of the planted pairs with J >= the threshold, as ``[[original, variant], ...]``
    (what bench/minhash_seed_recall.py reads)."""
    wanted = {v: o for v, (o, j) in corpus.planted.items() if j >= THRESHOLD}
    needed = set(wanted) | set(wanted.values())
    texts: dict[str, str] = {}
    for file in sorted(corpus.folder.glob("*.jsonl")):
        with open(file, encoding="utf-8") as f:
            for line in f:
                record = json.loads(line)
                if record["id"] in needed:
                    texts[record["id"]] = record["text"]
    pairs = [[texts[o], texts[v]] for v, o in sorted(wanted.items())]
    path.write_text(json.dumps(pairs, ensure_ascii=False), encoding="utf-8")
    return path


def folder_bytes(folder: Path, pattern: str) -> int:
    return sum(p.stat().st_size for p in folder.glob(pattern) if p.is_file())


def signature_bytes_per_document(work: Path, corpus: Corpus) -> tuple[float, float | None]:
    """Bytes per document of each tool's signature files (recipeflow: Parquet, compressed;
    DataTrove: raw bucket files)."""
    ours = folder_bytes(work / "recipeflow-out" / "cache" / "signatures", "*/*.parquet") / corpus.documents
    theirs = folder_bytes(work / "datatrove" / "signatures", "*/*.minhash.sig") / corpus.documents
    return ours, (theirs or None)


def report(name: str, timed: TimedRun, corpus: Corpus, kept: set[str]) -> dict:
    recall, pairs = planted_recall(corpus, kept)
    row = {
        "tool": name,
        "seconds": timed.seconds,
        "docs_per_s": corpus.documents / timed.seconds,
        "peak_rss": timed.peak_rss_bytes,
        "removed": corpus.documents - len(kept),
        "recall": recall,
    }
    print(
        f"{name:12} {timed.seconds:8.1f} s {row['docs_per_s']:10,.0f} docs/s  peak {mib(timed.peak_rss_bytes):>10}  "
        f"removed {row['removed']:7,d}  recall (planted, J >= {THRESHOLD}, {pairs} pairs) {recall:.3f}"
    )
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=50_000)
    parser.add_argument("--planted", type=float, default=0.05, help="share of documents given a near-duplicate")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--shard-size", type=int, default=10_000)
    parser.add_argument("--partitions", type=int, default=2, help="minhash_dedup's band-bucket tasks")
    parser.add_argument("--no-datatrove", action="store_true", help="run recipeflow alone")
    parser.add_argument("--with-datatrove", action="store_true", help=f"run DataTrove above {DATATROVE_LIMIT:,} documents too")
    parser.add_argument("--work", type=Path, default=None, help="working folder (default: a temporary one)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the corpus and its planted pairs")
    parser.add_argument("--recall-seeds", default="1-20",
                        help="MinHash seeds over which both tools' band-bucket recall of the planted "
                        "pairs is measured after the runs (bench/minhash_seed_recall.py); 0: skip")
    args = parser.parse_args()

    work = args.work or Path(tempfile.mkdtemp(prefix="minhash-bench-"))
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    with_datatrove = not args.no_datatrove and (args.docs <= DATATROVE_LIMIT or args.with_datatrove)

    corpus = write_corpus(work / "input", args.docs, args.planted, args.seed)
    size = sum(p.stat().st_size for p in corpus.folder.glob("*.jsonl"))
    print(f"{corpus.documents:,} documents ({size / 2**20:,.0f} MiB of JSONL in {FILES} files), "
          f"{len(corpus.planted):,} planted near-duplicates; {args.workers} workers; work folder {work}")

    rows = []
    startup, timed, kept = run_recipeflow(corpus, work, args.workers, args.shard_size, args.partitions)
    rows.append(report("recipeflow", timed, corpus, kept))
    if with_datatrove:
        timed, kept = run_datatrove(corpus, work, args.workers)
        rows.append(report("datatrove", timed, corpus, kept))
        ratio = rows[0]["docs_per_s"] / rows[1]["docs_per_s"]
        print(f"throughput ratio recipeflow / DataTrove: {ratio:.1f}x (Prefect start-up and flow "
              f"overhead, measured alone on 20 documents first: {startup.seconds:.1f} s; load "
              f"average now {os.getloadavg()[0]:.1f}); "
              f"recall {rows[0]['recall']:.3f} vs {rows[1]['recall']:.3f}; "
              f"peak memory {mib(rows[0]['peak_rss'])} vs {mib(rows[1]['peak_rss'])}")
    if with_datatrove and args.recall_seeds != "0":
        pairs_file = write_planted_pairs(corpus, work / "planted-pairs.json")
        seed_recall.compare(pairs_file, seed_recall.parse_seeds(args.recall_seeds))
    ours, theirs = signature_bytes_per_document(work, corpus)
    print(f"signature files per document: recipeflow {ours:,.0f} bytes (id + 14 band keys, Parquet)"
          + (f", DataTrove {theirs:,.0f} bytes (14 x (8 hashes + doc index))" if theirs else "")
          + "; in memory, recipeflow's band index is 14 x 8 = 112 bytes a document")
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
