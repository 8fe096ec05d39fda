"""Benchmark: FineWeb's filtering chain, recipeflow against DataTrove, same data, same cores.

The chain (FineWeb's published pipeline after text extraction): language_id (en, 0.65) ->
gopher_repetition_filter -> gopher_quality_filter -> c4_quality_filter
(filter_no_terminal_punct false) -> fineweb_quality_filter, on web-like documents cut from the
shared corpora (bench/common.py), written once as JSONL files that both tools read.

* recipeflow: ``recipeflow run`` on a generated recipe, processes executor, 2 workers, Prefect's
  embedded server included in the time (its start-up is also measured alone, on a 20-document
  run of the same recipe, which goes first and creates the Prefect home's database, as a
  user's first run does);
* DataTrove 0.10.1: LocalPipelineExecutor(tasks=2, workers=2): JsonlReader -> the same filters
  -> JsonlWriter, in its own virtual environment, with the bundled lid.176 model.

Prints documents per second for each, the ratio, documents kept by each, the peak memory of
each whole process tree (sampled every 50 ms) and its CPU time (user + system, from
getrusage(RUSAGE_CHILDREN)): on a machine shared with other work, wall-clock ratios move from
run to run, CPU-time ratios much less.

    python bench/fineweb_benchmark.py [--docs 50000] [--workers 2] [--venv /work/ref/dt]
"""

from __future__ import annotations

import argparse
import glob
import gzip
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

CHAIN = [
    {"language_id": {"languages": ["en"], "min_score": 0.65}},
    {"gopher_repetition_filter": {}},
    {"gopher_quality_filter": {}},
    {"c4_quality_filter": {"filter_no_terminal_punct": False}},
    {"fineweb_quality_filter": {}},
]

DATATROVE_SCRIPT = textwrap.dedent('''
    import sys
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.filters import (
        C4QualityFilter, FineWebQualityFilter, GopherQualityFilter, GopherRepetitionFilter,
        LanguageFilter,
    )
    from datatrove.pipeline.readers import JsonlReader
    from datatrove.pipeline.writers import JsonlWriter
    from datatrove.utils.lid import FT176LID

    input_dir, output_dir, logs_dir, lid_path, workers = sys.argv[1:6]


    class BundledLID(FT176LID):
        """lid.176 from the file given, instead of a download."""
        PATH = lid_path

        @property
        def model(self):
            if self._model is None:
                from fasttext.FastText import _FastText
                self._model = _FastText(self.PATH)
            return self._model


    language_filter = LanguageFilter(languages=["en"], language_threshold=0.65)
    language_filter.model = BundledLID(["en"])

    if __name__ == "__main__":
        LocalPipelineExecutor(
            pipeline=[
                JsonlReader(input_dir, glob_pattern="*.jsonl"),
                language_filter,
                GopherRepetitionFilter(),
                GopherQualityFilter(),
                C4QualityFilter(filter_no_terminal_punct=False),
                FineWebQualityFilter(),
                JsonlWriter(output_dir),
            ],
            tasks=int(workers),
            workers=int(workers),
            logging_dir=logs_dir,
        ).run()
''')


def write_inputs(docs: list[dict], folder: Path, files: int) -> None:
    """The documents as ``files`` JSONL files (contiguous slices), so both tools split the work
    across workers by file the same way."""
    per_file = -(-len(docs) // files)
    for i in range(files):
        part = docs[i * per_file:(i + 1) * per_file]
        write_jsonl(({"id": d["id"], "text": d["text"], "lang": d["lang"]} for d in part),
                    folder / f"part-{i:03d}.jsonl")


def recipe(input_glob: str, output: Path, workers: int, shard_size: int) -> dict:
    return {
        "name": "fineweb-benchmark",
        "inputs": {"docs": {"path": input_glob, "format": "jsonl"}},
        "process": CHAIN,
        "output": {"path": str(output), "format": "parquet", "keep_rejected": False},
        "run": {"executor": "processes", "workers": workers, "shard_size": shard_size},
    }


def run_recipeflow(recipe_data: dict, workdir: Path, name: str) -> tuple[TimedRun, int]:
    """Time ``recipeflow run`` (embedded server); documents kept. Both runs share one Prefect
    home, as a user's runs do: the first (the start-up measurement) creates its database."""
    import yaml

    path = workdir / f"{name}.yaml"
    path.write_text(yaml.safe_dump(recipe_data, sort_keys=False))
    env = dict(os.environ, PREFECT_HOME=str(workdir / "prefect-home"),
               PREFECT_SERVER_ANALYTICS_ENABLED="false")
    env.pop("PREFECT_API_URL", None)
    recipeflow = Path(sys.executable).parent / "recipeflow"
    timed = run_timed([str(recipeflow), "run", str(path), "--no-progress"], env=env, cwd=REPO)
    if timed.returncode != 0:
        raise SystemExit(f"recipeflow run failed:\n{timed.output[-4000:]}")
    return timed, _parquet_rows(Path(recipe_data["output"]["path"]))


def _parquet_rows(root: Path) -> int:
    import pyarrow.parquet as pq

    files = glob.glob(str(root / "versions" / "*" / "data" / "*.parquet"))
    return sum(pq.ParquetFile(f).metadata.num_rows for f in files)


def run_datatrove(python: Path, input_dir: Path, workdir: Path, workers: int) -> tuple[TimedRun, int]:
    """Time DataTrove's LocalPipelineExecutor on the same files; documents kept."""
    from recipeflow.operators.models.fasttext_models import bundled_lid_path

    script = workdir / "datatrove_fineweb.py"
    script.write_text(DATATROVE_SCRIPT)
    output = workdir / "datatrove-out"
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    timed = run_timed([str(python), str(script), str(input_dir), str(output),
                       str(workdir / "datatrove-logs"), bundled_lid_path(), str(workers)], env=env)
    if timed.returncode != 0:
        raise SystemExit(f"DataTrove failed:\n{timed.output[-4000:]}")
    kept = 0
    for f in glob.glob(str(output / "*.jsonl*")):
        opener = gzip.open if f.endswith(".gz") else open
        with opener(f, "rt") as fh:
            kept += sum(1 for _ in fh)
    return timed, kept


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=50000, help="at least this many documents")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--files", type=int, default=8, help="input JSONL files")
    parser.add_argument("--shard-size", type=int, default=2500, help="recipeflow documents per shard")
    parser.add_argument("--venv", default=None, help="DataTrove's virtual environment "
                        "(default /work/ref/dt if it exists, else bench/.venvs/datatrove, created)")
    args = parser.parse_args()

    python = reference_python("datatrove", args.venv)
    docs = build_documents(args.docs)[: max(args.docs, 1)]
    chars = sum(len(d["text"]) for d in docs)
    print(f"{len(docs)} documents, {chars / 1e6:.1f}M characters, {args.workers} workers, "
          f"{os.cpu_count()} cores")
    with tempfile.TemporaryDirectory(prefix="fineweb-bench-") as tmp:
        workdir = Path(tmp)
        input_dir = workdir / "input"
        write_inputs(docs, input_dir, args.files)
        tiny_dir = workdir / "tiny"
        write_inputs(docs[:20], tiny_dir, 1)

        startup, _ = run_recipeflow(
            recipe(str(tiny_dir / "*.jsonl"), workdir / "out-tiny", args.workers, args.shard_size),
            workdir, "tiny")
        ours, ours_kept = run_recipeflow(
            recipe(str(input_dir / "*.jsonl"), workdir / "out-recipeflow", args.workers,
                   args.shard_size),
            workdir, "recipeflow")
        theirs, theirs_kept = run_datatrove(python, input_dir, workdir, args.workers)

    n = len(docs)
    print(f"\n{'':12} {'seconds':>9} {'docs/s':>9} {'CPU s':>8} {'kept':>7} {'peak memory':>12}")
    for name, run, kept in [("recipeflow", ours, ours_kept), ("DataTrove", theirs, theirs_kept)]:
        print(f"{name:12} {run.seconds:9.1f} {n / run.seconds:9.0f} {run.cpu_seconds:8.1f} "
              f"{kept:7} {mib(run.peak_rss_bytes):>12}")
    print(f"\nrecipeflow / DataTrove throughput: {theirs.seconds / ours.seconds:.2f}x "
          f"(Prefect start-up and flow overhead, measured alone on 20 documents: "
          f"{startup.seconds:.1f} s wall, {startup.cpu_seconds:.1f} s CPU; without it: "
          f"{theirs.seconds / max(ours.seconds - startup.seconds, 1e-9):.2f}x)")
    print(f"CPU time ratio (insensitive to other load on the machine): "
          f"{theirs.cpu_seconds / max(ours.cpu_seconds, 1e-9):.2f}x; load average now "
          f"{os.getloadavg()[0]:.1f}")
    print(f"documents kept: recipeflow {ours_kept}, DataTrove {theirs_kept} "
          f"({ours_kept - theirs_kept:+d})")


if __name__ == "__main__":
    main()
