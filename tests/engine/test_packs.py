"""A batch task's shards share files ("packs"): each shard's part reads back as its documents,
the commit reads a pack's parts as one, a removed pack makes its shards work to do again, and a
run of many small shards publishes what a run of few big shards does."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from recipeflow.datasets.cache_admin import collect_garbage
from recipeflow.engine import execute, packs
from recipeflow.engine.cache_address import CacheEntry
from recipeflow.engine.stored_results import StoredResults
from recipeflow.io import storage, writers
from recipeflow.orchestration.runner import run_recipe

SAMPLE_JSONL = Path(__file__).resolve().parents[2] / "recipes" / "samples" / "debian-handbook-sample.jsonl.gz"


def _docs(start: int, rows: int, extra: str | None = None) -> pa.Table:
    columns = {"id": [f"d{i}" for i in range(start, start + rows)], "text": [f"text {i}" for i in range(start, start + rows)]}
    if extra:
        columns[extra] = list(range(rows))
    return pa.table(columns)


def _tables(kept: pa.Table, rejected: pa.Table | None = None) -> execute.StageTables:
    return execute.StageTables(kept=kept, rejected=rejected, unreadable=None, counts=[{"step": "s"}], reports={})


def _entry(i: int) -> CacheEntry:
    return CacheEntry("stages", f"{i:064x}")


def test_parts_read_back_as_each_shards_documents(tmp_path: Path) -> None:
    big = packs.GROUP_ROWS + 5  # a shard big enough for row groups of its own
    shards = [
        _tables(_docs(0, 3), rejected=_docs(100, 2)),
        _tables(_docs(3, 0)),  # everything filtered out: an empty part
        _tables(_docs(10, big)),
        _tables(_docs(20_000, 4)),
        _tables(_docs(30_000, 2, extra="score")),  # other columns: a new pack
        _tables(_docs(40_000, 1, extra="score")),
    ]
    root = str(tmp_path / "cache")
    written = packs.stage_packs(root)
    outputs: dict[int, object] = {}
    for i, tables in enumerate(shards):
        outputs.update(written.add(i, _entry(i), execute.stage_streams(tables), (f"shard-{i}", tables.counts, tables.reports)))
        if i < 4:
            assert not outputs  # nothing is finished before its pack is in place
    outputs.update(written.close())

    assert sorted(outputs) == list(range(len(shards)))
    for i, tables in enumerate(shards):
        output = outputs[i]
        path, rows = writers.split_part(output.kept)
        assert rows is not None and output.kept_rows == len(tables.kept) == len(rows)
        assert writers.read_table(output.kept).select(["id", "text"]).to_pylist() == tables.kept.select(["id", "text"]).to_pylist()
        assert writers.row_count(output.kept) == len(tables.kept)
        # Each shard's result is found by its own entry, in its pack's one result file.
        [where] = StoredResults(root).locate([_entry(i)])
        assert where == str(Path(writers.split_part(output.kept)[0]).parent / "result.json")
        assert execute.stage_output(StoredResults(root).read(_entry(i), where)) == output
        assert not (Path(root) / "stages" / _entry(i).address).exists()  # no file per shard
    assert writers.read_table(outputs[0].rejected).equals(shards[0].rejected)
    assert outputs[1].rejected is None

    kept = [outputs[i].kept for i in range(len(shards))]
    packed_files = {writers.split_part(k)[0] for k in kept}
    assert len(packed_files) == 2  # rolled once, where the columns changed
    assert all(Path(p).parent.parent.name == packs.KIND for p in packed_files)
    assert outputs[0].cache_entries() == {"packs/" + Path(writers.split_part(kept[0])[0]).parent.name, *(
        {"packs/" + Path(writers.split_part(outputs[0].rejected)[0]).parent.name})}
    # Small shards share a row group; the big one has its own.
    first = pq.ParquetFile(writers.split_part(kept[0])[0]).metadata
    assert first.num_rows == 3 + big + 4 and first.num_row_groups == 3
    # The commit reads a pack's consecutive parts as one.
    joined = writers.coalesce_parts(kept)
    assert len(joined) == 2
    assert writers.concat([writers.read_table(p) for p in joined]).num_rows == sum(len(t.kept) for t in shards)
    # ... up to a size, so that a reader does not hold a whole pack at once.
    capped = writers.coalesce_parts(kept, max_rows=10)
    assert len(capped) == 4 and all(writers.row_count(p) <= 10 or p in kept for p in capped)
    assert writers.concat([writers.read_table(p) for p in capped]).equals(writers.concat([writers.read_table(p) for p in joined]))
    assert not list((Path(root) / packs.KIND / storage.STAGING_DIR).iterdir())  # staging files placed


def test_a_full_pack_finishes_its_shards_early_and_a_failed_batch_leaves_nothing(tmp_path: Path) -> None:
    root = str(tmp_path / "cache")
    written = packs.stage_packs(root, pack_bytes=1)  # every shard fills a pack
    tables = _tables(_docs(0, 5))
    assert [i for i, _ in written.add(0, _entry(0), execute.stage_streams(tables), ("a", tables.counts, tables.reports))] == [0]

    def make(i: int):
        if i == 2:
            raise RuntimeError("a worker fails half-way")
        tables = _tables(_docs(10 * i, 5))
        return _entry(i), execute.stage_streams(tables), (f"s{i}", tables.counts, tables.reports)

    with pytest.raises(RuntimeError):
        packs.stage_packs(root).run(3, lambda i: None, make)
    assert StoredResults(root).locate([_entry(0), _entry(1)]) == [
        str(Path(root) / packs.KIND / next(p.name for p in (Path(root) / packs.KIND).iterdir() if p.name != storage.STAGING_DIR) / "result.json"),
        None,  # its pack was never put in place
    ]
    assert not list((Path(root) / packs.KIND / storage.STAGING_DIR).iterdir())


def test_a_shard_whose_pack_was_removed_is_work_to_do(tmp_path: Path) -> None:
    root = str(tmp_path / "cache")
    tables = _tables(_docs(0, 5))
    [output] = packs.stage_packs(root).run(1, lambda i: None, lambda i: (_entry(0), execute.stage_streams(tables), ("a", tables.counts, tables.reports)))
    [where] = StoredResults(root).locate([_entry(0)])
    assert execute.stage_output(StoredResults(root).read(_entry(0), where)) == output
    storage.remove(str(Path(writers.split_part(output.kept)[0]).parent), recursive=True)
    assert StoredResults(root).locate([_entry(0)]) == [None]
    assert StoredResults(root).read(_entry(0), where) is None  # a batch handed the old place


def test_a_shard_done_alone_is_found_by_its_own_result_file(tmp_path: Path) -> None:
    """A shard that a GPU pool's task did alone (its own entry's files and result.json) is found
    beside packed ones; an own result naming a removed pack's part is work to do."""
    root = str(tmp_path / "cache")
    alone = CacheEntry("stages", "a" * 64)
    kept = writers.write_table(_docs(0, 2), f"{alone.folder(root)}/kept.parquet").path
    storage.write_json(f"{alone.folder(root)}/result.json", {"key": "k", "address": alone.address, "kept": kept, "kept_rows": 2})
    tables = _tables(_docs(10, 3))
    [packed] = packs.stage_packs(root).run(1, lambda i: None, lambda i: (_entry(0), execute.stage_streams(tables), ("b", [], {})))
    unfinished = CacheEntry("stages", "c" * 64)  # its files, but no result.json yet
    writers.write_table(_docs(5, 1), f"{unfinished.folder(root)}/kept.parquet")
    found = StoredResults(root).locate([alone, _entry(0), _entry(1), unfinished])
    assert found[0] == f"{alone.folder(root)}/result.json" and found[1] and found[2:] == [None, None]
    assert execute.stored_stage(alone, root).kept == kept
    assert execute.stage_output(StoredResults(root).read(_entry(0), found[1])) == packed
    old = CacheEntry("stages", "b" * 64)  # written before packs held their shards' results
    storage.write_json(f"{old.folder(root)}/result.json", {"key": "o", "address": old.address, "kept": packed.kept, "kept_rows": 3})
    assert execute.stored_stage(old, root) == dataclasses.replace(packed, key="o", address=old.address, counts=[], reports={})
    storage.remove(str(Path(writers.split_part(packed.kept)[0]).parent), recursive=True)
    assert execute.stored_stage(old, root) is None


def _recipe(tmp_path: Path, name: str, shard_size: int, keep_rejected: bool = True) -> str:
    data = {
        "name": "packs",
        "inputs": {"docs": {"path": str(SAMPLE_JSONL), "format": "jsonl"}},
        "process": [{"text_length_filter": {"min_length": 2000}}, {"exact_dedup": {}}],
        "output": {"path": str(tmp_path / name), "keep_rejected": keep_rejected},
        "run": {"shard_size": shard_size, "tasks_per_stage": 3, "executor": "threads"},
    }
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


def _published(manifest: dict, key: str = "files") -> pa.Table:
    root = manifest["dataset"]
    tables = [pq.read_table(f"{root}/versions/{manifest['version']}/{e['path']}") for e in manifest[key]]
    return pa.concat_tables(tables).select(["id", "text"])


def test_many_small_shards_publish_what_few_big_ones_do_and_gc_keeps_their_packs(tmp_path: Path, prefect_api) -> None:
    [few] = run_recipe(_recipe(tmp_path, "few", 10_000), progress=False)
    [many] = run_recipe(_recipe(tmp_path, "many", 7), progress=False)

    assert many["rows"] == few["rows"] > 0 and many["rejected_rows"] == few["rejected_rows"] > 0
    assert _published(many).equals(_published(few))
    assert _published(many, "rejected_files").equals(_published(few, "rejected_files"))
    used_packs = [e for e in many["cache_entries"] if e.startswith("packs/")]
    assert 6 <= len(used_packs) < 20  # a pack or two per batch task, not a file per shard
    # Every entry a version names holds files; no shard has a folder of its own.
    assert all(e.startswith(("packs/", "decisions/")) for e in many["cache_entries"])
    cache = tmp_path / "many" / "cache"
    assert not (cache / "signatures").exists() and not (cache / "stages").exists()
    pack = json.loads((cache / used_packs[0] / "result.json").read_text())
    assert len(pack["results"]) > 5 and list(pack["results"]) == pack["shards"]
    [(key, result)] = list(pack["results"].items())[:1]
    entry = CacheEntry(*key.split("/"))
    [where] = StoredResults(str(cache)).locate([entry])
    assert where == str(cache / used_packs[0] / "result.json")
    assert StoredResults(str(cache)).read(entry, where) == result

    # gc removes nothing a version uses: a new version (of the same stages) reuses every
    # shard from its packs.
    collect_garbage(str(tmp_path / "many"), older_than_hours=0)
    for entry in used_packs:
        assert list((tmp_path / "many" / "cache" / entry).glob("*.parquet"))
    [again] = run_recipe(_recipe(tmp_path, "many", 7, keep_rejected=False), progress=False)
    assert again["run"]["tasks"]["computed"] == 0
    assert [f["sha256"] for f in again["files"]] == [f["sha256"] for f in many["files"]]
