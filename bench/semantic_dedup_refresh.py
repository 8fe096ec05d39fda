"""The cost of a semantic_dedup refresh with ``scope: history`` against the first run.

    python bench/semantic_dedup_refresh.py [--documents 800] [--max-length 128]

Through ``recipeflow run`` (run_recipe, threads executor), recipe ``embed`` +
``semantic_dedup: {scope: history}`` into one dataset:

1. **first run**: ``documents`` distinct English paragraphs of the two bundled manuals
   (tests/data) — every one embedded, clustered, committed with its signatures;
2. **refresh**: a new input of ``documents / 8`` documents, half of them near copies of
   published paragraphs and half new paragraphs: only these are embedded; they are clustered
   with the published documents' stored vectors (no re-embedding), and the near copies are
   dropped as duplicates of what is published;
3. for reference, **from scratch**: both inputs together in a fresh dataset without the cache
   (what a refresh costs without history).

Prints the wall time of each, the documents each embedded and dropped.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from recipeflow.orchestration.prefect_server import prefect_api  # noqa: E402
from recipeflow.orchestration.runner import run_recipe  # noqa: E402
from tests.operators.corpora import _near_copy, _without_natural_duplicates, manual_paragraphs  # noqa: E402


def _write(path: Path, texts: list[str], prefix: str) -> Path:
    path.write_text("".join(json.dumps({"id": f"{prefix}{i}", "text": t}) + "\n" for i, t in enumerate(texts)))
    return path


def _recipe(folder: Path, name: str, inputs: list[Path], output: Path, max_length: int, cache: bool) -> str:
    recipe = {
        "name": name,
        "inputs": {p.stem: {"path": str(p)} for p in inputs},
        "process": [{"embed": {"max_length": max_length}}, {"semantic_dedup": {"scope": "history"}}],
        "output": {"path": str(output)},
        "run": {"executor": "threads", "workers": 2, "shard_size": 500, "cache": cache},
    }
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return str(path)


def _timed(recipe: str) -> tuple[float, dict]:
    start = time.perf_counter()
    [manifest] = run_recipe(recipe, progress=False)
    return time.perf_counter() - start, manifest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--documents", type=int, default=800)
    parser.add_argument("--max-length", type=int, default=128)
    args = parser.parse_args()
    pool = _without_natural_duplicates(manual_paragraphs("debian-handbook") + manual_paragraphs("debian-reference"))
    added = args.documents // 8
    if args.documents + added // 2 > len(pool):
        raise SystemExit(f"only {len(pool)} distinct paragraphs; lower --documents")
    rng = random.Random(0)
    first = pool[: args.documents]
    noise = np.random.default_rng(0)
    copies = [_near_copy(t, noise, "edit" if i % 2 else "reorder")
              for i, t in enumerate(rng.sample(first, added // 2))]
    new = copies + pool[args.documents: args.documents + added - len(copies)]
    with tempfile.TemporaryDirectory(prefix="semdedup-refresh-") as tmp, prefect_api():
        folder = Path(tmp)
        a = _write(folder / "first.jsonl", first, "a")
        b = _write(folder / "added.jsonl", new, "b")
        first_s, m1 = _timed(_recipe(folder, "first", [a], folder / "out", args.max_length, True))
        refresh_s, m2 = _timed(_recipe(folder, "refresh", [b], folder / "out", args.max_length, True))
        scratch_s, m3 = _timed(_recipe(folder, "scratch", [a, b], folder / "scratch", args.max_length, False))
    print(f"documents {args.documents}, added {len(new)} ({len(copies)} near copies of published ones), "
          f"all-MiniLM-L6-v2 at {args.max_length} tokens")
    print(f"first run      {first_s:7.1f} s  rows {m1['rows']}")
    print(f"refresh (1/8)  {refresh_s:7.1f} s  rows {m2['rows']}  ({refresh_s / first_s:.2f} of the first run)")
    print(f"from scratch   {scratch_s:7.1f} s  rows {m3['rows']}  (both inputs, no cache, no history)")


if __name__ == "__main__":
    main()
