"""Memory of an output laid out as a whole (``output.shuffle``, files of equal size): in memory
(every document at once) against in passes (``engine.spill_layout``: keys, spill, write), on
the same stage outputs, each in its own process; the files must be byte-identical. (In memory,
an output of over 2 GB of text cannot be shuffled at all: Arrow's string offsets overflow.)

Stage outputs: ``--docs`` web-like documents cut from the shared corpora (``bench/common.py``),
as the engine leaves them (zstd Parquet, ``--shard`` documents each, with ``n_tokens``: a
whitespace word count stands in for a tokenizer). The layout: ``shuffle: {seed: 0}``,
``target_shard_rows: 50000``, Parquet.

    python bench/layout_memory_benchmark.py [--docs 300000] [--shard 10000] [--work DIR]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import corpus_pages, mib, run_timed, web_like_documents  # noqa: E402

LAYOUT = {"shuffle": {"seed": 0}, "target_shard_rows": 50_000}


def write_stage_outputs(work: Path, docs: int, shard: int) -> list[str]:
    import pyarrow as pa

    from recipeflow.io import writers

    paths, batch, passes = [], [], 0
    pages = corpus_pages()

    def flush() -> None:
        table = pa.table({"id": [d["id"] for d in batch], "text": [d["text"] for d in batch],
                          "n_tokens": pa.array([len(d["text"].split()) for d in batch], pa.int64())})
        paths.append(writers.write_table(table, str(work / "stages" / f"stage-{len(paths):05d}.parquet")).path)
        batch.clear()

    made = 0
    while made < docs:
        for document in web_like_documents(pages, 0, passes):
            batch.append({"id": f"{passes}-{document['id']}", "text": document["text"]})
            made += 1
            if len(batch) == shard or made == docs:
                flush()
            if made == docs:
                break
        passes += 1
    return paths


def child(mode: str, work: Path) -> None:
    from recipeflow.engine import output_layout, spill_layout
    from recipeflow.recipe.models import OutputSpec

    paths = json.loads((work / "stages.json").read_text())
    output = OutputSpec.model_validate({"path": str(work / mode), **LAYOUT})
    folder = str(work / mode / "data")
    if mode == "in-memory":
        files = output_layout.write_data(paths, folder, output)
    else:
        files = spill_layout.write_data(paths, folder, output, in_memory_bytes=0)
    print(json.dumps([[f.rows, f.sha256] for f in files]))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--docs", type=int, default=300_000)
    parser.add_argument("--shard", type=int, default=10_000)
    parser.add_argument("--work", type=Path, default=None)
    parser.add_argument("--child", choices=("in-memory", "in-passes"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="rf-layout-"))
    if args.child:
        child(args.child, work)
        return
    work.mkdir(parents=True, exist_ok=True)
    paths = write_stage_outputs(work, args.docs, args.shard)
    (work / "stages.json").write_text(json.dumps(paths))
    stored = sum(Path(p).stat().st_size for p in paths)
    print(f"{args.docs:,} documents in {len(paths)} stage outputs, {mib(stored)} stored; layout {LAYOUT}")
    results = {}
    for mode in ("in-memory", "in-passes"):
        run = run_timed([sys.executable, __file__, "--child", mode, "--work", str(work)])
        if run.returncode != 0:  # the in-memory layout of over 2 GB of text fails (string offsets)
            print(f"{mode:>10}: failed after {run.seconds:.1f} s, peak {mib(run.peak_rss_bytes)}: "
                  f"{run.output.strip().splitlines()[-1]}")
            continue
        results[mode] = json.loads(run.output.strip().splitlines()[-1])
        print(f"{mode:>10}: {run.seconds:6.1f} s, peak {mib(run.peak_rss_bytes)}, {len(results[mode])} files")
    if "in-passes" not in results:
        raise SystemExit(1)
    if "in-memory" in results:
        same = results["in-memory"] == results["in-passes"]
        print(f"files byte-identical: {same}")
        if not same:
            raise SystemExit(1)


if __name__ == "__main__":
    main()
