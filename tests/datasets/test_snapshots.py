"""A version is the corpus: a refresh deduplicated against history commits its parent's files
plus its new ones; every reader (inputs, diff, trace, lineage, retention, the dataset card,
`datasets`, DuckDB, Polars, publish) follows the snapshot. Real recipe runs (Prefect's engine,
embedded server), real readers, a real S3 server (moto) for concurrent commits."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import duckdb
import polars as pl
import pyarrow.parquet as pq
import pytest
import yaml
from click.testing import CliRunner

from recipeflow.cli import main
from recipeflow.datasets import hub, versions
from recipeflow.datasets.diff import diff_versions
from recipeflow.datasets.lineage import dataset_lineage, render_text
from recipeflow.datasets.trace import trace_document
from recipeflow.engine.inputs import resolve_input
from recipeflow.orchestration.runner import run_recipe
from recipeflow.recipe.errors import RecipeInvalid
from recipeflow.recipe.loading import load_recipe
from recipeflow.recipe.models import InputSpec
from recipeflow.datasets.cache_admin import collect_garbage
from tests.s3 import s3_endpoint

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")


def page(i: int, lang: str = "en", **extra) -> dict:
    words = " ".join(f"w{i}x{j}" for j in range(50))
    return {"id": f"p{i}", "text": f"Page {i}. {words}", "lang": lang, **extra}


def write_jsonl(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def corpus_recipe(tmp_path: Path, **output) -> Path:
    recipe = {
        "name": "snap-corpus",
        "inputs": {"crawl": {"path": "crawl/*.jsonl"}},  # relative: provenance must not name this machine
        "process": [{"text_length_filter": {"min_length": 60}}, {"exact_dedup": {"scope": "history"}}],
        "output": {"path": "corpus", "keep_rejected": True, "license": "cc-by-4.0", **output},
        "run": {"shard_size": 10, "workers": 1},
    }
    path = tmp_path / "corpus.yaml"
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    return path


def run(recipe: Path) -> dict:
    [manifest] = run_recipe(str(recipe), progress=False, base_dir=str(recipe.parent))
    return manifest


@pytest.fixture(scope="module")
def refreshed(tmp_path_factory, prefect_api):
    """Version 1 (20 pages in English and French, one too short), then a refresh with 5 new
    pages and 2 copies of old ones under new ids."""
    tmp = tmp_path_factory.mktemp("snap")
    crawl = tmp / "crawl"
    crawl.mkdir()
    write_jsonl(crawl / "day1.jsonl", [page(i, "fr" if i % 4 == 0 else "en") for i in range(20)]
                + [{"id": "tiny", "text": "short", "lang": "en"}])
    recipe = corpus_recipe(tmp, columns={"drop": ["stat_*"]})
    v1 = run(recipe)
    write_jsonl(crawl / "day2.jsonl", [page(i) for i in range(20, 25)]
                + [dict(page(i), id=f"copy{i}") for i in (1, 2)])
    v2 = run(recipe)
    return tmp, recipe, v1, v2


def test_a_refresh_commits_the_parent_snapshot_plus_its_new_files(refreshed):
    tmp, _, v1, v2 = refreshed
    root = str(tmp / "corpus")
    assert v1["rows"] == 20 and not v1["snapshot"]["stacked"] and all(f["new"] for f in v1["files"])
    assert v2["parent"] == v1["version"] and v2["snapshot"]["stacked"]
    assert (v2["rows"], v2["snapshot"]["new_rows"], v2["snapshot"]["parent_rows"]) == (25, 5, 20)
    inherited = [f for f in v2["files"] if not f["new"]]
    # The parent's files are listed, not copied: same entries, in the parent's folder.
    assert [(f["path"], f["sha256"]) for f in inherited] == [(f["path"], f["sha256"]) for f in v1["files"]]
    assert {f["version"] for f in inherited} == {v1["version"]}
    own = Path(versions.version_path(root, v2["version"])) / "data"
    assert sorted(p.name for p in own.iterdir()) == [f["path"].split("/")[-1] for f in v2["files"] if f["new"]]
    assert v2["snapshot"]["parent_files"] == [f"versions/{v1['version']}/{f['path']}" for f in v1["files"]]

    # ROOT reads the snapshot; ROOT@VERSION the version asked for.
    latest = resolve_input(InputSpec(path=root))
    assert sum(pq.read_metadata(u).num_rows for u in latest.urls) == 25
    first = resolve_input(InputSpec(path=f"{root}@{v1['version']}"))
    assert sum(pq.read_metadata(u).num_rows for u in first.urls) == 20

    # Rejected: the parent's plus the refresh's new rejections (the copies), not its old pages again.
    rejected_ids = [i for f in v2["rejected_files"]
                    for i in pq.read_table(versions.entry_url(root, v2["version"], f)).column("id").to_pylist()]
    assert sorted(rejected_ids) == ["copy1", "copy2", "tiny"]


def test_one_schema_per_split_and_the_columns_chosen(refreshed):
    tmp, _, v1, v2 = refreshed
    root = str(tmp / "corpus")
    for key in ("files", "rejected_files"):
        schemas = {pq.read_schema(versions.entry_url(root, v2["version"], f)) for f in v2[key]}
        assert len({tuple((f.name, str(f.type)) for f in s) for s in schemas}) == 1, key
    data_columns = pq.read_schema(versions.entry_url(root, v2["version"], v2["files"][0])).names
    assert not [c for c in data_columns if c.startswith("stat_")]  # output.columns drop: [stat_*]
    rejected_columns = pq.read_schema(versions.entry_url(root, v2["version"], v2["rejected_files"][0])).names
    assert {"rejected_by", "reject_reason", "reject_detail"} <= set(rejected_columns)


def test_provenance_is_relative_to_the_declared_input_root(refreshed):
    tmp, _, _, v2 = refreshed
    root = str(tmp / "corpus")
    for f in v2["files"] + v2["rejected_files"]:
        table = pq.read_table(versions.entry_url(root, v2["version"], f))
        assert set(table.column("input_file").to_pylist()) <= {"day1.jsonl", "day2.jsonl"}
        for column in table.columns:  # no string anywhere names this machine's folders
            if str(column.type) == "string":
                assert not any(str(tmp) in (v or "") for v in column.to_pylist())
    [inp] = v2["inputs"]
    assert inp["path"] == "crawl/*.jsonl"
    assert [f["url"] for f in inp["files"]] == ["day1.jsonl", "day2.jsonl"]
    assert str(tmp) not in (tmp / "corpus" / "README.md").read_text()


def test_diff_trace_and_lineage_follow_the_snapshot(refreshed):
    tmp, _, v1, v2 = refreshed
    root = str(tmp / "corpus")
    d = diff_versions(root, "parent", "latest").documents
    assert (d.added, d.removed, d.changed, d.unchanged) == (5, 0, 0, 20)
    # A page published by version 1 and held by version 2: traced to the run that read it.
    old = trace_document(root, "p3")
    assert (old.version, old.input["file"], old.input["sha256"]) == (
        v2["version"], "day1.jsonl", v1["inputs"][0]["files"][0]["sha256"])
    new = trace_document(root, "p21")
    assert new.input["file"] == "day2.jsonl" and new.input["sha256"] == v2["inputs"][0]["files"][1]["sha256"]
    tree = dataset_lineage(root)
    assert tree["rows_by_version"] == {v1["version"]: 20, v2["version"]: 5}
    assert tree["parent_snapshot"]["version"] == v1["version"]
    assert f"20 from {v1['version']}" in render_text(tree)


class RecordedWarnings(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def test_the_root_is_a_hugging_face_dataset_repository(refreshed):
    import datasets

    tmp, _, v1, v2 = refreshed
    root = tmp / "corpus"
    text = (root / "README.md").read_text()
    meta = yaml.safe_load(text.split("---")[1])
    assert meta["license"] == "cc-by-4.0" and meta["language"] == ["en", "fr"]
    assert meta["size_categories"] == ["n<1K"] and meta["pretty_name"] == "snap-corpus"
    configs = {c["config_name"]: c for c in meta["configs"]}
    assert set(configs) == {"default", v1["version"], v2["version"], "rejected"}
    assert "| main.process[1] | exact_dedup |" in text and "day2.jsonl" in text

    cache_dir = str(tmp / "hf-cache")
    latest = datasets.load_dataset(str(root), cache_dir=cache_dir)
    assert list(latest) == ["train"] and latest["train"].num_rows == 25
    # `datasets` reads the card's split sizes whole: a `splits` it finds malformed is logged.
    warnings = RecordedWarnings()
    logging.getLogger("datasets").addHandler(warnings)
    try:
        builder = datasets.load_dataset_builder(str(root), v1["version"], cache_dir=cache_dir)
    finally:
        logging.getLogger("datasets").removeHandler(warnings)
    assert builder.info.splits["train"].num_examples == 20 and warnings.messages == []
    assert datasets.load_dataset(str(root), v1["version"], cache_dir=cache_dir)["train"].num_rows == 20
    rejected = datasets.load_dataset(str(root), "rejected", cache_dir=cache_dir)["train"]
    assert rejected.num_rows == 3 and "reject_reason" in rejected.column_names
    assert (root / "cache").is_dir() and (root / "history").is_dir()  # there, and not read

    files = [versions.entry_url(str(root), v2["version"], f) for f in v2["files"]]
    assert duckdb.sql(f"select count(*), count(distinct lang) from read_parquet({files!r})").fetchall() == [(25, 2)]
    rejected_files = [versions.entry_url(str(root), v2["version"], f) for f in v2["rejected_files"]]
    assert pl.scan_parquet(rejected_files).select(pl.len()).collect().item() == 3
    assert pl.scan_parquet(files).filter(pl.col("lang") == "fr").collect().height == 5


def test_publish_writes_the_snapshot_and_its_card_to_a_folder(refreshed, tmp_path):
    import datasets

    tmp, _, v1, v2 = refreshed
    root = str(tmp / "corpus")
    target = tmp_path / "published"
    result = CliRunner().invoke(main, ["publish", f"{root}@{v2['version']}", "--to", f"file://{target}"])
    assert result.exit_code == 0, result.output
    version, plan = hub.plan_upload(f"{root}@{v2['version']}")
    written = sorted(str(p.relative_to(target)) for p in target.rglob("*") if p.is_file())
    assert written == sorted(f.repo_path for f in plan)
    assert f"versions/{v1['version']}/data/part-00000.parquet" in written  # a shared file, at its path
    assert datasets.load_dataset(str(target), cache_dir=str(tmp_path / "c"))["train"].num_rows == 25
    # The Hub commit is made of the same files (the real client's operations; the Hub itself
    # is not reachable from the tests).
    operations = hub.hub_operations(plan)
    assert sorted(op.path_in_repo for op in operations) == written
    bad = CliRunner().invoke(main, ["publish", root, "--to", "hf://models/org/name"])
    assert bad.exit_code != 0 and "hf://datasets/ORG/NAME" in bad.output


def test_retention_keeps_every_file_a_kept_version_lists(tmp_path, prefect_api):
    crawl = tmp_path / "crawl"
    crawl.mkdir()
    recipe = corpus_recipe(tmp_path, keep_last=1)
    made = []
    for day in range(3):
        # Day 1 brings a new metadata field: version 2 cannot share version 1's files as they
        # are (one schema per split), so it writes its own copies of them with the new column.
        extra = {"source": "feed"} if day == 1 else {}
        write_jsonl(crawl / f"day{day}.jsonl", [page(i, **extra) for i in range(day * 10, day * 10 + 10)])
        made.append(run(recipe))
    v1, v2, v3 = made
    root = str(tmp_path / "corpus")
    [kept] = versions.committed_manifests(root)
    assert kept["version"] == v3["version"] and kept["rows"] == 30
    assert v3["deleted_versions"] == [v2["version"]]
    rewritten = [f for f in v2["files"] if f.get("rewritten_from")]
    assert [f["rewritten_from"] for f in rewritten] == [f"versions/{v1['version']}/data/part-00000.parquet"]
    # Version 3 shares version 2's files (deleted version: its manifest is gone, its files stay).
    assert {f["version"] for f in kept["files"]} == {v2["version"], v3["version"]}
    for f in kept["files"] + kept["rejected_files"]:
        assert Path(versions.entry_url(root, kept["version"], f)).is_file()
    assert not Path(versions.version_path(root, v1["version"])).exists()  # nothing of it is listed
    assert not Path(versions.manifest_path(root, v2["version"])).exists()
    table = pl.scan_parquet([versions.entry_url(root, kept["version"], f) for f in kept["files"]]).collect()
    assert table.height == 30 and table.filter(pl.col("source") == "feed").height == 10
    meta = yaml.safe_load((tmp_path / "corpus" / "README.md").read_text().split("---")[1])
    assert [c["config_name"] for c in meta["configs"]] == ["default", kept["version"]]
    # The deleted version's folder is "retired", not unfinished: `cache gc` leaves it.
    states = {f.name: f.state for f in versions.version_folders(root)}
    assert states == {v2["version"]: "retired", v3["version"]: "committed"}
    gc = collect_garbage(root, older_than_hours=0)
    assert not gc.removed_versions
    for f in kept["files"] + kept["rejected_files"]:
        assert Path(versions.entry_url(root, kept["version"], f)).is_file()


def test_a_bad_column_pattern_is_a_recipe_error(tmp_path):
    recipe = corpus_recipe(tmp_path, columns={"drop": ["stat_{x}"]})
    with pytest.raises(RecipeInvalid, match="output.columns.drop"):
        load_recipe(str(recipe))
    recipe = corpus_recipe(tmp_path, columns={"drop": ["t*"]})
    with pytest.raises(RecipeInvalid, match="would drop 'text'"):
        load_recipe(str(recipe))


def _stacked(version: str, parent: str) -> dict:
    return {"version": version, "created_at": "2026-12-06T00:00:00+00:00", "parent": parent,
            "snapshot": {"stacked": True}, "files": [], "rows": 0, "recipe_name": "r"}


@pytest.mark.parametrize("store", ["local", "s3"])
def test_concurrent_commits_on_one_parent_cannot_both_win(tmp_path, store):
    def check(root: str) -> None:
        versions.commit(root, "v1", {**_stacked("v1", None), "snapshot": {"stacked": False}})
        versions.commit(root, "v2a", _stacked("v2a", "v1"))
        with pytest.raises(versions.CommitConflict, match="version v2a was committed on top of the same parent v1"):
            versions.commit(root, "v2b", _stacked("v2b", "v1"))
        with pytest.raises(FileExistsError):  # a manifest is never overwritten
            versions.commit(root, "v1", {**_stacked("v1", None), "snapshot": {"stacked": False}})
        assert [m["version"] for m in versions.committed_manifests(root)] == ["v1", "v2a"]

    if store == "local":
        check(str(tmp_path / "ds"))
        return
    import s3fs

    with s3_endpoint("recipeflow-snap"):
        s3fs.S3FileSystem.clear_instance_cache()
        check("s3://recipeflow-snap/ds")
        s3fs.S3FileSystem.clear_instance_cache()


def test_a_json_lines_snapshot_loads_with_the_declared_features(tmp_path, prefect_api):
    import datasets

    crawl = tmp_path / "crawl"
    crawl.mkdir()
    write_jsonl(crawl / "day1.jsonl", [page(i) for i in range(8)] + [{"id": "tiny", "text": "short"}])
    recipe = corpus_recipe(tmp_path, format="jsonl.gz")
    v1 = run(recipe)
    # The refresh's rejections (a copy: reject_detail set, reject_value null) differ in their
    # JSON from version 1's (a short text: reject_value set, reject_detail null).
    write_jsonl(crawl / "day2.jsonl", [page(i) for i in range(8, 11)] + [dict(page(2), id="copy2")])
    v2 = run(recipe)
    assert v2["snapshot"]["stacked"] and v2["rows"] == 11 and v1["rows"] == 8
    root = tmp_path / "corpus"
    meta = yaml.safe_load((root / "README.md").read_text().split("---")[1])
    info = {i["config_name"]: i for i in meta["dataset_info"]}
    assert {"name": "reject_detail", "dtype": "string"} in info["rejected"]["features"]
    cache_dir = str(tmp_path / "hf-cache")
    assert datasets.load_dataset(str(root), cache_dir=cache_dir)["train"].num_rows == 11
    rejected = datasets.load_dataset(str(root), "rejected", cache_dir=cache_dir)["train"]
    assert sorted(rejected["id"]) == ["copy2", "tiny"]
