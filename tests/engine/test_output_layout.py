"""Output layout: seeded global shuffle, files of about equal documents or tokens, partitions,
Megatron pairs (read back with the reader of the format), Parquet with token_ids for datasets."""

from __future__ import annotations

import glob

import numpy as np
import pyarrow as pa

from recipeflow.engine import output_layout
from recipeflow.io import megatron, writers
from recipeflow.recipe.models import OutputSpec


def documents(n: int = 100) -> pa.Table:
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 40, n)
    return pa.table({
        "id": [f"d{i}" for i in range(n)],
        "text": [f"text {i}" for i in range(n)],
        "n_tokens": pa.array(lengths, pa.int64()),
        "token_ids": pa.array([list(range(i, i + int(k))) for i, k in enumerate(lengths)], pa.list_(pa.uint32())),
        "phase": ["stable" if i % 10 else "anneal" for i in range(n)],
    })


def stage_files(tmp_path, table: pa.Table, parts: int = 4) -> list[str]:
    """The table as stage outputs (shards), as the engine leaves them."""
    size = -(-len(table) // parts)
    return [writers.write_table(table.slice(i, size), str(tmp_path / f"stage-{i}.parquet")).path
            for i in range(0, len(table), size)]


def read_ids(files: list[output_layout.LaidFile]) -> list[str]:
    return [i for f in files for i in writers.read_table(f.path).column("id").to_pylist()]


def test_shuffle_is_global_seeded_and_deterministic(tmp_path):
    paths = stage_files(tmp_path, documents())
    spec = OutputSpec(path=str(tmp_path), shuffle={"seed": 5}, target_shard_rows=25)
    first = output_layout.write_data(paths, str(tmp_path / "a"), spec)
    again = output_layout.write_data(paths, str(tmp_path / "b"), spec)
    other = output_layout.write_data(paths, str(tmp_path / "c"), OutputSpec(path=str(tmp_path), shuffle={"seed": 6}, target_shard_rows=25))
    ids = read_ids(first)
    assert ids == read_ids(again) != read_ids(other)
    assert sorted(ids) == sorted(documents().column("id").to_pylist())
    # Global: the first output file mixes documents of every input shard.
    shards_in_first = {int(i[1:]) // 25 for i in writers.read_table(first[0].path).column("id").to_pylist()}
    assert shards_in_first == {0, 1, 2, 3}
    assert [f.sha256 for f in first] == [f.sha256 for f in again]


def test_files_of_about_equal_rows_or_tokens(tmp_path):
    paths = stage_files(tmp_path, documents())
    by_rows = output_layout.write_data(paths, str(tmp_path / "r"), OutputSpec(path="x", target_shard_rows=30))
    assert sorted(f.rows for f in by_rows) == [33, 33, 34]
    total = int(np.sum(documents().column("n_tokens").to_numpy()))
    by_tokens = output_layout.write_data(paths, str(tmp_path / "t"), OutputSpec(path="x", target_shard_tokens=total // 4))
    assert len(by_tokens) == 4 and sum(f.tokens for f in by_tokens) == total
    assert max(abs(f.tokens - total / 4) for f in by_tokens) <= 40  # within a document


def test_megatron_pairs_per_partition_read_back(tmp_path):
    table = documents()
    paths = stage_files(tmp_path, table)
    spec = OutputSpec(path="x", format="megatron", partition_by="phase", target_shard_rows=50)
    files = output_layout.write_data(paths, str(tmp_path / "m"), spec, vocab_size=50_000)
    assert {f.partition for f in files} == {"stable", "anneal"}
    counts = output_layout.partition_counts([f.entry(str(tmp_path / "m")) for f in files])
    assert counts["anneal"]["rows"] == 10 and counts["stable"]["rows"] == 90
    expected = dict(zip(table.column("id").to_pylist(), table.column("token_ids").to_pylist()))
    for f in files:
        reader = megatron.MegatronReader(f.path.removesuffix(".bin"))
        assert reader.dtype == np.uint16  # vocabulary under 65,500
        sidecar = writers.read_table(f.documents["path"])
        assert "token_ids" not in sidecar.column_names and "text" not in sidecar.column_names
        for i, doc_id in enumerate(sidecar.column("id").to_pylist()):
            assert reader.document(i).tolist() == expected[doc_id]
        assert f"phase={f.partition}" in f.path


def test_parquet_with_token_ids_loads_in_datasets(tmp_path):
    import datasets

    paths = stage_files(tmp_path, documents())
    files = output_layout.write_data(paths, str(tmp_path / "p"), OutputSpec(path="x"))
    loaded = datasets.load_dataset("parquet", data_files=[f.path for f in files], split="train",
                                   cache_dir=str(tmp_path / "hf"))
    assert len(loaded) == 100
    assert loaded[3]["token_ids"] == documents().column("token_ids")[3].as_py()
    assert sorted(glob.glob(str(tmp_path / "p" / "*.parquet"))) == sorted(f.path for f in files)


def test_megatron_output_needs_a_tokenize_step_keeping_ids(tmp_path):
    import pytest

    from recipeflow.recipe.errors import RecipeInvalid
    from recipeflow.recipe.validate import parse_recipe

    recipe = {
        "name": "m",
        "inputs": {"docs": {"path": str(tmp_path / "d.jsonl")}},
        "process": [{"tokenize": {"tokenizer": "smollm2"}}],
        "output": {"path": str(tmp_path / "out"), "format": "megatron"},
    }
    with pytest.raises(RecipeInvalid, match="keep_ids: true"):
        parse_recipe(recipe)
    recipe["process"][0]["tokenize"]["keep_ids"] = True
    assert parse_recipe(recipe).outputs["main"].format == "megatron"
    recipe["process"] = []
    recipe["output"] = {"path": str(tmp_path / "out"), "target_shard_tokens": "1e6"}
    with pytest.raises(RecipeInvalid, match="target_shard_tokens counts n_tokens"):
        parse_recipe(recipe)


def test_a_streamed_copy_reads_windows_bounded_by_count_and_stored_bytes():
    from recipeflow.engine.output_layout import _COPY_THREADS, _COPY_WINDOW_BYTES, _windows

    many_small = [f"s{i}" for i in range(20)]
    assert [len(w) for w in _windows(many_small, [1] * 20)] == [_COPY_THREADS, _COPY_THREADS, 20 - 2 * _COPY_THREADS]
    third = _COPY_WINDOW_BYTES // 3 + 1
    big = ["a", "b", "c", "d", "huge", "e"]
    assert list(_windows(big, [third, third, third, third, 5 * _COPY_WINDOW_BYTES, 1])) == [
        ["a", "b"], ["c", "d"], ["huge"], ["e"]]
