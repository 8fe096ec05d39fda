"""Recall on planted pairs over many MinHash seeds, for recipeflow and DataTrove alike.

One run of each tool draws one set of 112 hash functions (the seed). On a corpus cut from a few
books, where many documents share sentences, a pair's fate under one draw is correlated with the
other pairs', so one seed's recall moves by about ±0.005 from draw to draw, for either tool: as
much as the gap a single run shows. This measures what each tool's hashing gives *on average*:
for every seed, each planted pair (J >= the threshold) counts as found when its two documents
share a band bucket (the candidate rule of both tools; clusters add only transitive finds).

* recipeflow: the ``minhash_dedup`` operator's own phase 1 (``signatures``: shingles, datasketch
  MinHash, band keys) with ``seed: s``.
* DataTrove 0.10.1: ``MinhashDedupSignature.get_shingles`` and ``get_signature`` with
  ``MinhashConfig(seed=s)``, in its own environment.

    python bench/minhash_seed_recall.py PAIRS.json [--seeds 1-20]

``PAIRS.json`` is a list of ``[text_a, text_b]``; bench/minhash_benchmark.py writes one
(``planted-pairs.json``) and calls this module itself.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import reference_python  # noqa: E402
from recipeflow.operators import registry  # noqa: E402
from recipeflow.operators.dedup.lsh import band_column  # noqa: E402

BANDS, ROWS, NGRAMS = 14, 8, 5

DATATROVE_SCRIPT = textwrap.dedent(
    """
    import json, sys, tempfile
    from datatrove.pipeline.dedup.minhash import MinhashConfig, MinhashDedupSignature

    pairs = json.load(open(sys.argv[1], encoding="utf-8"))
    seeds = [int(s) for s in sys.argv[2].split(",")]
    folder = tempfile.mkdtemp()

    def step(seed):
        config = MinhashConfig(n_grams=NGRAMS, num_buckets=BANDS, hashes_per_bucket=ROWS, seed=seed)
        return MinhashDedupSignature(output_folder=folder, config=config)

    first = step(seeds[0])
    shingles = [(first.get_shingles(a), first.get_shingles(b)) for a, b in pairs]
    found = {}
    for seed in seeds:
        signer = step(seed)
        found[seed] = [
            len(a) > 0 and len(b) > 0
            and any(x == y for x, y in zip(signer.get_signature(a), signer.get_signature(b)))
            for a, b in shingles
        ]
    json.dump(found, sys.stdout)
    """
).replace("NGRAMS", str(NGRAMS)).replace("BANDS", str(BANDS)).replace("ROWS", str(ROWS))


def recipeflow_found(pairs: list[list[str]], seeds: list[int]) -> dict[int, list[bool]]:
    texts = [text for pair in pairs for text in pair]
    batch = pa.table({"id": [f"d{i}" for i in range(len(texts))], "text": texts})
    found = {}
    for seed in seeds:
        op = registry.get("minhash_dedup")(
            {"ngram_size": NGRAMS, "num_bands": BANDS, "rows_per_band": ROWS, "seed": seed}
        )
        table = op.signatures(batch)
        keys = np.stack([table.column(band_column(b)).to_numpy(zero_copy_only=False) for b in range(BANDS)], axis=1)
        valid = np.stack([table.column(band_column(b)).is_valid().to_numpy(zero_copy_only=False)
                          for b in range(BANDS)], axis=1)
        same = (keys[0::2] == keys[1::2]) & valid[0::2] & valid[1::2]
        found[seed] = same.any(axis=1).tolist()
    return found


def datatrove_found(pairs_file: Path, seeds: list[int], venv: str | None = None) -> dict[int, list[bool]]:
    python = reference_python("datatrove", venv)
    script = pairs_file.with_name("datatrove_seed_recall.py")
    script.write_text(DATATROVE_SCRIPT)
    done = subprocess.run([str(python), str(script), str(pairs_file), ",".join(map(str, seeds))],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"DataTrove failed:\n{done.stderr[-4000:]}")
    return {int(seed): flags for seed, flags in json.loads(done.stdout).items()}


def summary(found: dict[int, list[bool]]) -> dict[str, float]:
    recalls = [sum(flags) / len(flags) for flags in found.values()]
    return {"mean": statistics.fmean(recalls), "stdev": statistics.stdev(recalls) if len(recalls) > 1 else 0.0,
            "min": min(recalls), "max": max(recalls), "pairs": len(next(iter(found.values())))}


def compare(pairs_file: Path, seeds: list[int], venv: str | None = None) -> dict[str, dict[str, float]]:
    """Recall of both tools over ``seeds``; printed, and returned as {tool: summary}."""
    pairs = json.loads(pairs_file.read_text(encoding="utf-8"))
    ours, theirs = recipeflow_found(pairs, seeds), datatrove_found(pairs_file, seeds, venv)
    results = {"recipeflow": summary(ours), "datatrove": summary(theirs)}
    wins = sum(sum(ours[s]) > sum(theirs[s]) for s in seeds)
    ties = sum(sum(ours[s]) == sum(theirs[s]) for s in seeds)
    print(f"band-bucket recall of {results['recipeflow']['pairs']} planted pairs over {len(seeds)} seeds "
          f"({seeds[0]}-{seeds[-1]}), each tool's own shingles and hash functions:")
    for tool, row in results.items():
        print(f"  {tool:11} mean {row['mean']:.4f}  sd {row['stdev']:.4f}  min {row['min']:.4f}  max {row['max']:.4f}")
    print(f"  seeds where recipeflow found more: {wins}, as many: {ties}, fewer: {len(seeds) - wins - ties}")
    return results


def parse_seeds(text: str) -> list[int]:
    first, _, last = text.partition("-")
    return list(range(int(first), int(last or first) + 1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("pairs", type=Path)
    parser.add_argument("--seeds", default="1-20", help="a seed or a range, e.g. 1-20")
    parser.add_argument("--venv", default=None, help="DataTrove's environment (default /work/ref/dt)")
    args = parser.parse_args()
    compare(args.pairs, parse_seeds(args.seeds), args.venv)


if __name__ == "__main__":
    main()
