"""recipes/pretrain-mix.yaml end to end: two bundled sources cleaned, deduplicated, tokenized
with smollm2, mixed 70/30 by tokens in two phases, written as Megatron shards; then the
counts in the manifest, the terminal summary, `versions`, `diff` and `export`."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
from click.testing import CliRunner

from recipeflow.cli import main
from recipeflow.datasets.run_summary import result_lines
from recipeflow.io.megatron import MegatronReader
from recipeflow.orchestration.runner import run_recipe
from tests.conftest import REPO

RECIPE = REPO / "recipes" / "pretrain-mix.yaml"


def cli(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_pretrain_mix_runs_and_every_view_counts_tokens(tmp_path, prefect_api):
    root = tmp_path / "pretrain-mix"
    [manifest] = run_recipe(str(RECIPE), [f"outputs.corpus.path={root}"], progress=False)

    steps = {op["step"]: op for op in manifest["operators"]}
    mix = steps["corpus.process[2]"]
    summary = mix["summary"]
    assert summary["target_tokens"] == 400_000
    web, books = summary["origins"]["web_clean"], summary["origins"]["books_clean"]
    # 90% at 70/30 and 10% at 30/70: web asked 0.9*0.7+0.1*0.3 = 66% of the budget.
    assert abs(web["tokens_taken"] / summary["tokens"] - 0.66) < 0.02
    for numbers in (web, books):
        assert numbers["tokens_available"] >= numbers["tokens_taken"] > 0
        assert numbers["documents_available"] >= numbers["documents_selected"] > 0
    assert [p["name"] for p in summary["phases"]] == ["stable", "anneal"]
    assert mix["reasons"] == {"mix_not_selected": mix["rejected"]}
    assert steps["corpus.process[0]"]["reasons"].get("exact_duplicate", 0) > 0
    assert steps["corpus.process[1]"]["tokens_out"] == mix["tokens_in"]
    assert abs(manifest["tokens"] - 400_000) < 10_000  # whole documents of ~3k tokens

    # Megatron pairs, one per output file, per phase partition, ids ending with eos (id 0).
    assert set(manifest["partitions"]) == {"stable", "anneal"}
    tokens = 0
    for entry in manifest["files"]:
        reader = reader_of(manifest, entry)
        assert reader.documents == entry["rows"] and reader.tokens == entry["tokens"]
        assert reader.document(0)[-1] == 0 and reader.dtype == np.uint16
        tokens += reader.tokens
    assert tokens == manifest["tokens"]

    printed = "\n".join(result_lines([manifest]))
    assert f"({manifest['tokens']:,} tokens)" in printed
    assert "mix_not_selected" in printed and "phase anneal" in printed

    listed = cli("versions", str(root))
    assert f"{manifest['tokens']:,} tokens" in listed.output

    diff = cli("diff", str(root), manifest["version"], manifest["version"], "--json")
    operators = json.loads(diff.output)["operators"]
    dedup = next(op for op in operators if op["step"] == "corpus.process[0]")
    assert dedup["reasons"]["exact_duplicate"]["a"] == dedup["reasons"]["exact_duplicate"]["b"] > 0

    out = tmp_path / "exported"
    result = cli("export", f"{root}@{manifest['version']}", str(out), "--format", "parquet")
    assert result.exit_code == 0, result.output
    exported = json.loads((out / "manifest.json").read_text())
    assert exported["source"]["version"] == manifest["version"]
    assert exported["rows"] == manifest["rows"] and exported["tokens"] == manifest["tokens"]

    # Every document's token ids come back in the version's order, in Parquet and in Megatron
    # pairs (a .bin is the documents' token ids end to end: the files join byte for byte).
    committed = [reader_of(manifest, entry) for entry in manifest["files"]]
    in_order = [list(r.document(i)) for r in committed for i in range(r.documents)]
    table = pq.read_table(out / "data")
    assert [list(ids) for ids in table.column("token_ids").to_pylist()] == in_order

    again = tmp_path / "megatron"
    assert cli("export", str(root), str(again), "--format", "megatron").exit_code == 0
    pairs = json.loads((again / "manifest.json").read_text())["files"]
    exported_readers = [MegatronReader(str(again / e["path"]).removesuffix(".bin")) for e in pairs]
    assert [list(r.document(i)) for r in exported_readers for i in range(r.documents)] == in_order
    bins = [Path(str(r.prefix) + ".bin").read_bytes() for r in committed]
    assert b"".join(Path(str(r.prefix) + ".bin").read_bytes() for r in exported_readers) == b"".join(bins)

    lines = tmp_path / "jsonl"
    assert cli("export", str(root), str(lines), "--format", "jsonl", "--target-shard-rows", "50").exit_code == 0
    written = json.loads((lines / "manifest.json").read_text())
    assert written["rows"] == manifest["rows"] and len(written["files"]) > 1
    assert sorted(table.column("id").to_pylist()) == sorted(
        row["id"] for path in sorted(lines.glob("data/*.jsonl.gz"))
        for row in map(json.loads, gzip.open(path, "rt")))


def reader_of(manifest: dict, entry: dict) -> MegatronReader:
    path = Path(manifest["dataset"]) / "versions" / manifest["version"] / entry["path"]
    return MegatronReader(str(path).removesuffix(".bin"))
