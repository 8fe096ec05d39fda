"""Benchmark: n-gram benchmark decontamination, recipeflow against DataTrove, same data, same cores.

Benchmark items: sentences of the bundled handbook sample (recipes/samples/, 26 languages),
paired as (question, answer), each pair at least 13 words (DataTrove's filter never matches an
item shorter than n words; recipeflow would use it whole). Documents: web-like documents cut from
the shared corpora (bench/common.py), which hold the whole handbook, so some contain items
naturally; in 1% more an item is planted, upper-cased.

* recipeflow: ``recipeflow run`` of a one-operator recipe (``decontaminate``, n=13,
  min_overlap=1, mode drop), processes executor, embedded Prefect server (its start-up is also
  measured alone on a 20-document run); the index is built once, by the stage's index task
  (the cache entry ``indexes/<index_key>``), and memory-mapped by every shard's task. Run twice:
  with recipeflow's own normalization (the default) and with ``normalization: datatrove``.
* DataTrove 0.10.1: its index file (``<task>.index.hashes``, uint64 xxhash64 of n-grams) is
  written by ``NGramsDecontIndexer.compute_hashes`` (the indexer's own code; its ``run`` needs
  lighteval tasks, so it is not called), then LocalPipelineExecutor(tasks=workers,
  workers=workers): JsonlReader -> NGramsDecontFilter -> JsonlWriter, all with DataTrove's
  defaults (``NGramsDecontConfig(n_grams=13)``: numbers and diacritics normalized too). Index
  build inside the timed run.

Configured alike: n=13; a document is dropped when it holds any item n-gram (DataTrove's rule,
recipeflow's min_overlap=1). With ``normalization: datatrove`` recipeflow makes the same words
as DataTrove (its simplify_text, then spaCy's English rules), so the decisions must be
identical; the script says so or lists the documents decided differently. With recipeflow's
own normalization (NFKC, every Unicode punctuation or symbol character a boundary, digits and
diacritics kept) they may differ: e.g. a symbol outside DataTrove's list, such as "→" between
two URLs, is a word to DataTrove and a boundary to recipeflow, so a 13-gram spanning it exists
only for DataTrove; "2.5" is one word "0" to DataTrove and two to recipeflow.

Also timed: the operator alone in ``workers`` processes (one JSONL file per task, no Prefect),
which must decide exactly as the ``recipeflow run``.

    python bench/decontamination_benchmark.py [--docs 50000] [--workers 2] [--items 2000]
"""

from __future__ import annotations

import argparse
import glob
import gzip
import json
import os
import random
import re
import sys
import tempfile
import textwrap
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (  # noqa: E402
    REPO,
    TimedRun,
    build_documents,
    mib,
    read_jsonl,
    reference_python,
    run_timed,
    write_jsonl,
)

SAMPLE = REPO / "recipes" / "samples" / "debian-handbook-sample.jsonl.gz"
N = 13
NORMALIZATIONS = ("recipeflow", "datatrove")

DATATROVE_SCRIPT = textwrap.dedent('''
    import json, os, sys
    from types import SimpleNamespace

    import numpy as np
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.decont import NGramsDecontConfig, NGramsDecontFilter
    from datatrove.pipeline.decont.n_grams import NGramsDecontIndexer
    from datatrove.pipeline.readers import JsonlReader
    from datatrove.pipeline.writers import JsonlWriter
    from datatrove.utils.hashing import create_hash_func
    from datatrove.utils.word_tokenizers import load_word_tokenizer

    input_dir, items_file, index_dir, output_dir, logs_dir, workers, n = sys.argv[1:8]
    config = NGramsDecontConfig(n_grams=int(n))  # DataTrove's defaults otherwise


    def build_index():
        """The indexer's compute_hashes on our items (its run() loads lighteval tasks)."""
        indexer = SimpleNamespace(config=config, tokenizer=load_word_tokenizer("en"),
                                  hash_func=create_hash_func(config.hash_config))
        hashes = set()
        with open(items_file) as f:
            for line in f:
                item = json.loads(line)
                hashes.update(NGramsDecontIndexer.compute_hashes(indexer, item["text"]))
        os.makedirs(index_dir, exist_ok=True)
        np.array(sorted(hashes), dtype=config.hash_config.np_descr).tofile(
            os.path.join(index_dir, "sample.index.hashes"))


    if __name__ == "__main__":
        build_index()
        LocalPipelineExecutor(
            pipeline=[
                JsonlReader(input_dir, glob_pattern="*.jsonl"),
                NGramsDecontFilter(index_dir, config=config, language="en"),
                JsonlWriter(output_dir),
            ],
            tasks=int(workers),
            workers=int(workers),
            logging_dir=logs_dir,
        ).run()
''')


# ---------------------------------------------------------------------------------------------
# Benchmark items from the bundled sample
# ---------------------------------------------------------------------------------------------

_NO_SPACES = {"zh", "ja", "ko"}  # word n-grams need words


def benchmark_items(limit: int, min_words: int = N, seed: int = 0) -> list[dict]:
    """(question, answer) pairs of consecutive sentences of the bundled sample, each pair of at
    least ``min_words`` words, in a deterministic shuffled order; ``limit`` at most."""
    items = []
    for page in read_jsonl(SAMPLE):
        if page["lang"] in _NO_SPACES:
            continue
        sentences = [" ".join(s.split()) for s in re.split(r"(?<=[.?!])\s+", page["text"]) if s.strip()]
        for question, answer in zip(sentences[::2], sentences[1::2]):
            if len(question.split()) + len(answer.split()) >= min_words and len(question.split()) >= 5:
                items.append({"question": question, "answer": answer, "lang": page["lang"]})
    random.Random(seed).shuffle(items)
    items = items[:limit]
    for i, item in enumerate(items):
        item["id"] = f"s{i}"
    return items


def plant(docs: list[dict], items: list[dict], fraction: float = 0.01, seed: int = 0) -> int:
    """Put an item (upper-cased) in the middle of ``fraction`` of the documents."""
    rng = random.Random(seed)
    chosen = rng.sample(range(len(docs)), max(1, int(len(docs) * fraction)))
    for i in chosen:
        item = rng.choice(items)
        text = docs[i]["text"]
        middle = text.find("\n", len(text) // 2)
        middle = len(text) if middle < 0 else middle
        docs[i]["text"] = f"{text[:middle]}\n{item['question'].upper()} {item['answer'].upper()}\n{text[middle:]}"
    return len(chosen)


# ---------------------------------------------------------------------------------------------
# Runs
# ---------------------------------------------------------------------------------------------


def write_inputs(docs: list[dict], folder: Path, files: int) -> None:
    per_file = -(-len(docs) // files)
    for i in range(files):
        write_jsonl(({"id": d["id"], "text": d["text"]} for d in docs[i * per_file:(i + 1) * per_file]),
                    folder / f"part-{i:03d}.jsonl")


def recipe(input_glob: str, items_file: Path, output: Path, workers: int, shard_size: int,
           normalization: str = "recipeflow") -> dict:
    return {
        "name": "decontamination-benchmark",
        "inputs": {"docs": {"path": input_glob, "format": "jsonl"}},
        "process": [{"decontaminate": {
            "benchmarks": {"sample": {"path": str(items_file), "fields": ["question", "answer"],
                                      "id_field": "id"}},
            "n": N, "min_overlap": 1, "mode": "drop", "normalization": normalization,
        }}],
        "output": {"path": str(output), "format": "parquet", "keep_rejected": False},
        "run": {"executor": "processes", "workers": workers, "shard_size": shard_size},
    }


def run_recipeflow(recipe_data: dict, workdir: Path, name: str) -> tuple[TimedRun, set[str]]:
    import yaml

    path = workdir / f"{name}.yaml"
    path.write_text(yaml.safe_dump(recipe_data, sort_keys=False))
    env = dict(os.environ, PREFECT_HOME=str(workdir / "prefect-home"),
               PREFECT_SERVER_ANALYTICS_ENABLED="false", PYTHONPATH=str(REPO))
    env.pop("PREFECT_API_URL", None)
    timed = run_timed([*_recipeflow_command(), "run", str(path), "--no-progress"], env=env, cwd=REPO)
    if timed.returncode != 0:
        raise SystemExit(f"recipeflow run failed:\n{timed.output[-4000:]}")
    import pyarrow.parquet as pq

    kept: set[str] = set()
    for f in glob.glob(str(Path(recipe_data["output"]["path"]) / "versions" / "*" / "data" / "*.parquet")):
        kept.update(pq.read_table(f, columns=["id"]).column("id").to_pylist())
    return timed, kept


def _recipeflow_command() -> list[str]:
    """``recipeflow`` of this checkout (the console script's entry point read from its
    pyproject.toml), not whatever an editable install elsewhere points at."""
    import tomllib

    with open(REPO / "pyproject.toml", "rb") as f:
        module, function = tomllib.load(f)["project"]["scripts"]["recipeflow"].split(":")
    return [sys.executable, "-c", f"import sys; sys.argv[0] = 'recipeflow'; from {module} import {function}; {function}()"]


def _operator_on_file(task: tuple[str, str, int, str]) -> list[str]:
    """One worker: the operator over one JSONL file in batches; the ids it keeps."""
    import pyarrow as pa

    from recipeflow.operators.decontaminate import Decontaminate

    path, items_file, batch_size, normalization = task
    op = Decontaminate(recipe("", Path(items_file), Path("."), 1, 1, normalization)["process"][0]["decontaminate"])
    records = list(read_jsonl(path))
    kept: list[str] = []
    for start in range(0, len(records), batch_size):
        part = records[start:start + batch_size]
        batch = pa.table({"id": [r["id"] for r in part], "text": [r["text"] for r in part]})
        kept.extend(op.process(batch).kept.column("id").to_pylist())
    return kept


def operator_only(input_dir: str, items_file: str, workers: int, out: str, normalization: str) -> None:
    """The operator alone (no Prefect, no engine) in ``workers`` processes, one file each."""
    from concurrent.futures import ProcessPoolExecutor

    files = sorted(glob.glob(os.path.join(input_dir, "*.jsonl")))
    with ProcessPoolExecutor(workers) as pool:
        tasks = [(f, items_file, 1000, normalization) for f in files]
        kept = [i for ids in pool.map(_operator_on_file, tasks) for i in ids]
    Path(out).write_text("\n".join(kept))


def run_operator_only(input_dir: Path, items_file: Path, workdir: Path, workers: int,
                      normalization: str) -> tuple[TimedRun, set[str]]:
    out = workdir / f"operator-kept-{normalization}.txt"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    timed = run_timed([sys.executable, __file__, "--operator-only", str(input_dir), str(items_file),
                       str(workers), str(out), normalization], env=env, cwd=REPO)
    if timed.returncode != 0:
        raise SystemExit(f"the operator run failed:\n{timed.output[-4000:]}")
    return timed, set(filter(None, out.read_text().split("\n")))


def run_datatrove(python: Path, input_dir: Path, items_file: Path, workdir: Path, workers: int) -> tuple[TimedRun, set[str]]:
    script = workdir / "datatrove_decont.py"
    script.write_text(DATATROVE_SCRIPT)
    output = workdir / "datatrove-out"
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    timed = run_timed([str(python), str(script), str(input_dir), str(items_file), str(workdir / "dt-index"),
                       str(output), str(workdir / "datatrove-logs"), str(workers), str(N)], env=env)
    if timed.returncode != 0:
        raise SystemExit(f"DataTrove failed:\n{timed.output[-4000:]}")
    kept: set[str] = set()
    for f in glob.glob(str(output / "*.jsonl*")):
        opener = gzip.open if f.endswith(".gz") else open
        with opener(f, "rt") as fh:
            kept.update(json.loads(line)["id"] for line in fh)
    return timed, kept


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=50000)
    parser.add_argument("--items", type=int, default=2000, help="benchmark items (at most)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--files", type=int, default=8, help="input JSONL files")
    parser.add_argument("--shard-size", type=int, default=2500)
    parser.add_argument("--venv", default=None, help="DataTrove's virtual environment")
    parser.add_argument("--operator-only", nargs=5,
                        metavar=("INPUT_DIR", "ITEMS", "WORKERS", "OUT", "NORMALIZATION"),
                        help=argparse.SUPPRESS)  # the worker-process run, started by this script
    args = parser.parse_args()
    if args.operator_only:
        input_dir, items_file, workers, out, normalization = args.operator_only
        operator_only(input_dir, items_file, int(workers), out, normalization)
        return

    python = reference_python("datatrove", args.venv)
    docs = build_documents(args.docs)[: args.docs]
    items = benchmark_items(args.items)
    planted = plant(docs, items)
    print(f"{len(docs)} documents ({sum(len(d['text']) for d in docs) / 1e6:.1f}M characters, "
          f"{planted} with a planted item), {len(items)} benchmark items, n={N}, "
          f"{args.workers} workers, {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory(prefix="decontam-bench-") as tmp:
        workdir = Path(tmp)
        items_file = workdir / "items.jsonl"
        write_jsonl(items, items_file)
        # DataTrove's indexer reads the same item text recipeflow joins (question \n answer).
        dt_items = workdir / "items-text.jsonl"
        write_jsonl(({"text": it["question"] + "\n" + it["answer"]} for it in items), dt_items)
        input_dir = workdir / "input"
        write_inputs(docs, input_dir, args.files)
        tiny_dir = workdir / "tiny"
        write_inputs(docs[:20], tiny_dir, 1)

        startup, _ = run_recipeflow(recipe(str(tiny_dir / "*.jsonl"), items_file, workdir / "out-tiny",
                                           args.workers, args.shard_size), workdir, "tiny")
        ours: dict[str, tuple[TimedRun, set[str]]] = {}
        alone: dict[str, tuple[TimedRun, set[str]]] = {}
        for normalization in NORMALIZATIONS:
            ours[normalization] = run_recipeflow(
                recipe(str(input_dir / "*.jsonl"), items_file, workdir / f"out-{normalization}",
                       args.workers, args.shard_size, normalization), workdir, normalization)
            alone[normalization] = run_operator_only(input_dir, items_file, workdir, args.workers, normalization)
        theirs, theirs_kept = run_datatrove(python, input_dir, dt_items, workdir, args.workers)

    n = len(docs)
    print(f"\n{'':34} {'seconds':>9} {'docs/s':>9} {'CPU s':>8} {'dropped':>8} {'peak memory':>12}")
    rows = []
    for normalization in NORMALIZATIONS:
        rows += [(f"recipeflow run ({normalization})", *ours[normalization]),
                 (f"operator, {args.workers} processes ({normalization})", *alone[normalization])]
    rows.append(("DataTrove", theirs, theirs_kept))
    for name, run, kept in rows:
        print(f"{name:34} {run.seconds:9.1f} {n / run.seconds:9.0f} {run.cpu_seconds:8.1f} "
              f"{n - len(kept):8} {mib(run.peak_rss_bytes):>12}")
    print(f"(Prefect start-up and flow overhead alone, a 20-document run: {startup.seconds:.1f} s; "
          f"load average now {os.getloadavg()[0]:.1f})")
    by_id = {d["id"]: d for d in docs}
    for normalization in NORMALIZATIONS:
        run, kept = ours[normalization]
        run_alone, kept_alone = alone[normalization]
        print(f"\nnormalization {normalization}:")
        print(f"  throughput ratio vs DataTrove: recipeflow run {theirs.seconds / run.seconds:.2f}x, "
              f"operator in worker processes {theirs.seconds / run_alone.seconds:.2f}x")
        print(f"  CPU time ratio vs DataTrove: recipeflow run "
              f"{theirs.cpu_seconds / max(run.cpu_seconds, 1e-9):.2f}x, operator "
              f"{theirs.cpu_seconds / max(run_alone.cpu_seconds, 1e-9):.2f}x")
        assert kept_alone == kept, f"the operator alone and recipeflow run decided differently ({normalization})"
        only_ours = sorted(theirs_kept - kept)
        only_theirs = sorted(kept - theirs_kept)
        same = n - len(only_ours) - len(only_theirs)
        print(f"  identical decisions: {same} of {n} documents ({100 * same / n:.3f}%); dropped only by "
              f"recipeflow: {len(only_ours)}, only by DataTrove: {len(only_theirs)}")
        for label, ids in (("recipeflow only", only_ours), ("DataTrove only", only_theirs)):
            for doc_id in ids[:3]:
                print(f"    {label}: {doc_id}: {_first_difference(by_id[doc_id]['text'], items, normalization)}")


def _first_difference(text: str, items: list[dict], normalization: str) -> str:
    """The first item n-gram (in ``normalization``) found in ``text``, for a look."""
    from recipeflow.operators.decontamination.text import Normalization, normalized_words

    words = normalized_words(text, Normalization(normalization))
    grams = {" ".join(words[i:i + N]) for i in range(len(words) - N + 1)}
    for item in items:
        iw = normalized_words(item["question"] + "\n" + item["answer"], Normalization(normalization))
        for i in range(len(iw) - N + 1):
            gram = " ".join(iw[i:i + N])
            if gram in grams:
                return f"item {item['id']} gram {gram!r}"
    return f"no n-gram of any item in the {normalization} normalization (DataTrove matched after its tokenization)"


if __name__ == "__main__":
    main()
