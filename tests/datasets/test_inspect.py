"""The inspection commands on real runs: diff, trace, lineage, cache ls / gc (local and S3)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import fsspec
import pytest
import yaml
from click.testing import CliRunner

from recipeflow.io import storage
from recipeflow.datasets import cache_admin
from recipeflow.datasets import versions
from recipeflow.datasets.cache_admin import collect_garbage, list_entries
from recipeflow.cli import main
from recipeflow.datasets.diff import diff_versions
from recipeflow.datasets.lineage import dataset_lineage
from recipeflow.orchestration.runner import run_recipe
from recipeflow.datasets.trace import trace_document
from recipeflow.datasets.version_reader import UnknownVersion
from tests.s3 import s3_endpoint

LONG = " is a document long enough to pass the length filter of these tests."
FIRST_DOCS = [
    {"id": "d1", "text": "one" + LONG, "source": "web"},
    {"id": "d2", "text": "two" + LONG, "source": "web"},
    {"id": "d3", "text": "tiny", "source": "web"},  # rejected: shorter than min_length
    {"id": "d4", "text": "four" + LONG, "source": "web"},  # gone in the second version
    {"id": "d5", "text": "one" + LONG, "source": "web"},  # rejected: duplicate of d1
    {"id": "d6", "text": "six" + LONG, "source": "web"},
]
SECOND_DOCS = [
    FIRST_DOCS[0],
    {"id": "d2", "text": "two, edited" + LONG, "source": "web"},
    FIRST_DOCS[2],
    FIRST_DOCS[4],
    FIRST_DOCS[5],
]
ADDED_DOCS = [
    {"id": "d7", "text": "seven" + LONG, "source": "forum"},
    {"id": "d8", "text": "eight" + LONG, "source": "forum"},
]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def run(tmp: Path, recipe: dict) -> dict:
    path = tmp / f"{recipe['name']}.yaml"
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    [manifest] = run_recipe(str(path), progress=False)
    return manifest


def docs_recipe(inputs: Path, root: Path) -> dict:
    return {
        "name": "docs",
        "inputs": {"docs": {"path": str(inputs / "*.jsonl"), "format": "jsonl"}},
        "process": [
            {"normalize_whitespace": {}},
            {"text_length_filter": {"min_length": 30}},
            {"exact_dedup": {}},
        ],
        "output": {"path": str(root), "keep_rejected": True},
        "run": {"executor": "threads", "workers": 2, "shard_size": 100},
    }


def derived_recipe(input_path: str, root: Path) -> dict:
    """A graph: `long` keeps texts of 73+ characters, `short` takes what `long` rejected, and
    `merged` (the output) unites them again, so a document's path shows in its trace."""
    return {
        "name": "derived",
        "inputs": {"base": {"path": input_path}},
        "nodes": {
            "long": {"from": "base", "process": [{"text_length_filter": {"min_length": 73}}]},
            "short": {"from": "long.rejected", "process": []},
            "merged": {"from": ["long", "short"], "process": []},
        },
        "outputs": {"merged": {"path": str(root), "keep_rejected": True}},
        "run": {"executor": "threads", "workers": 1, "shard_size": 100},
    }


def run_from_dataset(tmp: Path, base_root: Path, base_version: str, root: Path) -> dict:
    """A run whose input is one version of another dataset (`ROOT@VERSION`)."""
    return run(tmp, derived_recipe(f"{base_root}@{base_version}", root))


@dataclass
class Datasets:
    inputs: Path
    root: Path  # two versions: first, second
    first: dict
    second: dict
    derived_root: Path  # one version, read from `root` at `second`
    derived: dict


@pytest.fixture(scope="module")
def datasets(tmp_path_factory, prefect_api) -> Datasets:
    tmp = tmp_path_factory.mktemp("inspect")
    inputs = tmp / "inputs"
    inputs.mkdir()
    root = tmp / "docs"
    write_jsonl(inputs / "a.jsonl", FIRST_DOCS)
    first = run(tmp, docs_recipe(inputs, root))
    write_jsonl(inputs / "a.jsonl", SECOND_DOCS)
    write_jsonl(inputs / "b.jsonl", ADDED_DOCS)
    second = run(tmp, docs_recipe(inputs, root))
    derived_root = tmp / "derived"
    derived = run_from_dataset(tmp, root, second["version"], derived_root)
    return Datasets(inputs, root, first, second, derived_root, derived)


def invoke(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


# -- diff -------------------------------------------------------------------------------------


def test_diff_counts_and_ids_exactly(datasets):
    result = diff_versions(str(datasets.root), datasets.first["version"], datasets.second["version"])
    d = result.documents
    assert (d.added, d.removed, d.changed, d.unchanged) == (2, 1, 1, 2)
    assert d.added_ids == ["d7", "d8"] and d.removed_ids == ["d4"] and d.changed_ids == ["d2"]
    assert result.inputs == {
        "added": ["b.jsonl"],  # relative to the input's declared root (no machine's path)
        "removed": [],
        "changed": ["a.jsonl"],
    }
    assert not result.recipe_changed and result.columns == {"added": [], "removed": []}
    ops = {op["step"]: op for op in result.operators}
    assert ops["read:docs"]["a"] == {"docs_in": 6, "docs_out": 6}
    assert ops["read:docs"]["b"] == {"docs_in": 7, "docs_out": 7}
    dedup_reasons = {"reasons": {"exact_duplicate": 1}}  # documents removed per reason
    assert ops["main.process[2]"]["a"] == {"docs_in": 5, "docs_out": 4, **dedup_reasons}
    assert ops["main.process[2]"]["b"] == {"docs_in": 6, "docs_out": 5, **dedup_reasons}
    assert ops["main.process[2]"]["reasons"] == {"exact_duplicate": {"a": 1, "b": 1}}


def test_diff_conveniences_limit_and_cli(datasets):
    root = str(datasets.root)
    same = diff_versions(root, "parent", "latest")
    assert (same.a["version"], same.b["version"]) == (datasets.first["version"], datasets.second["version"])
    limited = diff_versions(root, datasets.first["version"], "latest", limit=1)
    assert limited.documents.added == 2 and limited.documents.added_ids == ["d7"]
    backwards = json.loads(invoke("diff", root, "latest", "parent", "--json").output)
    assert backwards["documents"]["added_ids"] == ["d4"] and backwards["documents"]["removed_ids"] == ["d7", "d8"]
    text = invoke("diff", root, "parent", "latest").output
    assert "2 added, 1 removed, 1 changed, 2 unchanged" in text and "d7, d8" in text


def test_diff_unknown_version_lists_the_known_ones(datasets):
    root = str(datasets.root)
    with pytest.raises(UnknownVersion) as err:
        diff_versions(root, "20000101-000000-000000", "latest")
    assert datasets.first["version"] in str(err.value) and datasets.second["version"] in str(err.value)
    with pytest.raises(UnknownVersion, match="no parent"):
        diff_versions(root, "parent", datasets.first["version"])
    result = CliRunner().invoke(main, ["diff", root, "nope", "latest"])
    assert result.exit_code == 1 and "known versions" in result.output


# -- trace ------------------------------------------------------------------------------------


def test_trace_kept_document(datasets):
    trace = trace_document(str(datasets.root), "d6")
    assert trace.version == datasets.second["version"] and trace.found_in == "data"
    a_file = datasets.inputs / "a.jsonl"
    assert trace.input["name"] == "docs" and trace.input["file"] == "a.jsonl"
    assert trace.input["record"] == 4  # 0-based line in the second a.jsonl
    assert trace.input["sha256"] == hashlib.sha256(a_file.read_bytes()).hexdigest()
    assert trace.rejection is None and trace.metadata == {"source": "web"}
    assert trace.statistics == {"stat_text_length": len("six" + LONG)}
    [path] = trace.paths
    [hop] = path
    assert hop["node"] == "main" and hop["read_from"] == "docs"
    assert [(s["step"], s["operator"], s["status"]) for s in hop["steps"]] == [
        ("read:docs", "read", "passed"),
        ("main.process[0]", "normalize_whitespace", "passed"),
        ("main.process[1]", "text_length_filter", "passed"),
        ("main.process[2]", "exact_dedup", "passed"),
    ]
    # An older version: the same document from the first a.jsonl.
    older = trace_document(str(datasets.root), "d6", version=datasets.first["version"])
    assert older.input["record"] == 5 and older.input["sha256"] != trace.input["sha256"]


def test_trace_rejected_documents_name_operator_reason_and_statistic(datasets):
    short = trace_document(str(datasets.root), "d3")
    assert short.found_in == "rejected"
    assert short.rejection == {
        "rejected_by": "text_length_filter",
        "rejected_at": "main.process[1]",
        "reason": "text_length_below_min",
        "statistic": "text_length",
        "value": 4.0,
        "detail": None,
    }
    assert [(s["step"], s["status"]) for s in short.paths[0][0]["steps"]] == [
        ("read:docs", "passed"), ("main.process[0]", "passed"), ("main.process[1]", "rejected"),
    ]
    duplicate = trace_document(str(datasets.root), "d5")
    assert duplicate.rejection["rejected_by"] == "exact_dedup"
    assert duplicate.rejection["rejected_at"] == "main.process[2]"
    text = invoke("trace", str(datasets.root), "d3").output
    assert "rejected by text_length_filter at main.process[1]: text_length_below_min (text_length = 4.0)" in text


def test_trace_unknown_document_says_where_it_looked(datasets):
    result = CliRunner().invoke(main, ["trace", str(datasets.root), "d404"])
    assert result.exit_code == 1
    assert "no document with id 'd404'" in result.output
    assert "data/part-00000.parquet" in result.output and "rejected file" in result.output
    as_json = json.loads(invoke("trace", str(datasets.root), "d7", "--json").output)
    assert as_json["input"]["file"] == "b.jsonl" and as_json["input"]["record"] == 0


def test_trace_follows_a_graph_through_a_rejected_stream(datasets):
    root = str(datasets.derived_root)
    # d1 (71 characters) was rejected by `long`, read from `long.rejected` by `short`, kept.
    via_short = trace_document(root, "d1")
    assert via_short.found_in == "data" and via_short.rejection is None
    [earlier] = via_short.earlier_rejections
    assert earlier["rejected_at"] == "long.process[0]" and earlier["reason"] == "text_length_below_min"
    assert earlier["value"] == len("one" + LONG)
    [path] = via_short.paths
    hops = [(h["node"], h["read_from"]) for h in path]
    assert hops == [("long", "base"), ("short", "long.rejected"), ("merged", "short")]
    steps = [(s["step"], s["status"]) for s in path[0]["steps"]]
    assert steps == [("read:base", "passed"), ("long.process[0]", "rejected")]
    # d7 (73 characters) went the other way.
    [path] = trace_document(root, "d7").paths
    assert [(h["node"], h["read_from"]) for h in path] == [("long", "base"), ("merged", "long")]
    assert [s["status"] for s in path[0]["steps"]] == ["passed", "passed"]
    text = invoke("trace", root, "d1").output
    assert "earlier: rejected by text_length_filter at long.process[0]" in text
    assert "node short (from long.rejected)" in text


# -- lineage ----------------------------------------------------------------------------------


def test_lineage_of_a_dataset_built_from_a_dataset(datasets):
    tree = dataset_lineage(str(datasets.derived_root))
    assert tree["version"] == datasets.derived["version"] and tree["recipe_name"] == "derived"
    assert tree["recipe_sha256"] == datasets.derived["recipe_sha256"]
    [inp] = tree["inputs"]
    assert (inp["dataset"], inp["version"]) == (str(datasets.root), datasets.second["version"])
    upstream = inp["upstream"]
    assert upstream["recipe_name"] == "docs" and upstream["recipe_sha256"] == datasets.second["recipe_sha256"]
    assert upstream["parent"] == datasets.first["version"]
    files = {f["url"]: f["sha256"] for f in upstream["inputs"][0]["files"]}
    assert files == {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in (datasets.inputs / "a.jsonl", datasets.inputs / "b.jsonl")
    }
    pinned = dataset_lineage(f"{datasets.root}@{datasets.first['version']}")
    assert pinned["version"] == datasets.first["version"] and pinned["parent"] is None
    text = invoke("lineage", str(datasets.derived_root)).output
    assert f"input base: dataset {datasets.root} @ {datasets.second['version']}" in text
    assert json.loads(invoke("lineage", str(datasets.derived_root), "--json").output) == json.loads(json.dumps(tree))
    # A document of the derived dataset names the dataset version it was read from.
    trace = trace_document(str(datasets.derived_root), "d7")
    assert (trace.input["dataset"], trace.input["version"]) == (str(datasets.root), datasets.second["version"])


def test_lineage_guards_against_cycles_and_missing_versions(tmp_path):
    # Versions are immutable, so only hand-made manifests can loop: two of them, each reading the other.
    a, b = tmp_path / "a", tmp_path / "b"
    for root, other in ((a, b), (b, a)):
        versions.commit(str(root), "v1", {
            "version": "v1", "created_at": "2026-01-01T00:00:00+00:00", "parent": None,
            "recipe_name": root.name, "recipe_sha256": "0" * 64, "rows": 0,
            "inputs": [
                {"name": name, "path": f"{other}@{v}", "format": "parquet",
                 "dataset": str(other), "version": v, "files": []}
                for name, v in (("up", "v1"), ("gone", "v9"))
            ],
        })
    tree = dataset_lineage(f"{a}@v1")
    b_node = tree["inputs"][0]["upstream"]
    assert b_node["recipe_name"] == "b"
    assert b_node["inputs"][0]["upstream"] == {"dataset": str(a), "version": "v1", "cycle": True}
    assert "not committed" in tree["inputs"][1]["upstream"]["missing"]
    assert "(cycle" in invoke("lineage", f"{a}@v1").output
    with pytest.raises(UnknownVersion, match="known versions of .*: v1"):
        dataset_lineage(f"{a}@v2")


# -- cache ------------------------------------------------------------------------------------

HOUR = 3600


def fake_entry(root: Path, kind: str, address: str, age_hours: float) -> Path:
    """An entry no version uses (as a killed or superseded run leaves), last written ``age_hours`` ago."""
    folder = root / "cache" / kind / address
    folder.mkdir(parents=True)
    (folder / "kept.parquet").write_bytes(b"x" * 100)
    (folder / "result.json").write_text("{}")
    stamp = time.time() - age_hours * HOUR
    for f in folder.iterdir():
        os.utime(f, (stamp, stamp))
    return folder


def age(folder: Path, hours: float) -> None:
    stamp = time.time() - hours * HOUR
    for f in folder.iterdir():
        os.utime(f, (stamp, stamp))


def test_cache_ls_and_gc(datasets, tmp_path):
    root = tmp_path / "derived"
    shutil.copytree(datasets.derived_root, root)
    used = versions.read_manifest(str(root), datasets.derived["version"])["cache_entries"]
    assert used and all(k.split("/")[0] in cache_admin.KINDS for k in used)
    old_used = root / "cache" / used[0]
    age(old_used, 48)
    stale = fake_entry(root, "stages", "f" * 64, age_hours=48)
    recent = fake_entry(root, "signatures", "e" * 64, age_hours=1)

    entries = {e.key: e for e in list_entries(str(root))}
    assert set(entries) == set(used) | {f"stages/{'f' * 64}", f"signatures/{'e' * 64}"}
    assert entries[used[0]].used_by == [datasets.derived["version"]] and entries[used[0]].complete
    assert entries[f"stages/{'f' * 64}"].used_by == [] and entries[f"stages/{'f' * 64}"].bytes == 102
    listed = json.loads(invoke("cache", "ls", str(root), "--json").output)
    assert listed["totals"]["entries"] == len(used) + 2 and listed["totals"]["unused"]["entries"] == 2

    dry = json.loads(invoke("cache", "gc", str(root), "--dry-run", "--json").output)
    assert [e["address"] for e in dry["removed"]] == ["f" * 64] and dry["dry_run"]
    assert stale.exists()

    text = invoke("cache", "gc", str(root)).output
    assert "removed 1 entries" in text
    assert not stale.exists() and recent.exists() and old_used.exists()
    assert {e.key for e in list_entries(str(root))} == set(used) | {f"signatures/{'e' * 64}"}
    # A lower threshold takes the recent unused entry too; used ones always stay.
    assert [e.key for e in collect_garbage(str(root), older_than_hours=0).removed] == [f"signatures/{'e' * 64}"]
    assert {e.key for e in list_entries(str(root))} == set(used)


# -- S3 ---------------------------------------------------------------------------------------

BUCKET = "recipeflow-inspect"


@pytest.fixture
def s3_copy(datasets):
    """The two-version dataset and its cache, copied to a bucket of a local S3 server."""
    import s3fs

    with s3_endpoint(BUCKET):
        s3fs.S3FileSystem.clear_instance_cache()  # no client of another test's endpoint
        fs = fsspec.filesystem("s3", skip_instance_cache=True)
        fs.put(str(datasets.root), f"{BUCKET}/docs", recursive=True)
        yield f"s3://{BUCKET}/docs"
        s3fs.S3FileSystem.clear_instance_cache()


def test_inspection_on_s3(datasets, s3_copy):
    root = s3_copy
    d = diff_versions(root, "parent", "latest").documents
    assert (d.added_ids, d.removed_ids, d.changed_ids) == (["d7", "d8"], ["d4"], ["d2"])
    trace = trace_document(root, "d3")
    assert trace.rejection["reason"] == "text_length_below_min" and trace.root == root
    assert dataset_lineage(root)["version"] == datasets.second["version"]

    entries = list_entries(root)
    assert entries and all(e.modified > time.time() - HOUR for e in entries)
    assert len(entries) == len(list_entries(str(datasets.root)))
    manifest = versions.read_manifest(root, datasets.second["version"])
    keep = [e.key for e in entries][:2]
    manifest["cache_entries"] = keep  # the second version "used" two entries; the first none
    storage.write_json(versions.manifest_path(root, manifest["version"]), manifest)  # edited by hand
    first = versions.read_manifest(root, datasets.first["version"])
    first.pop("cache_entries", None)
    storage.write_json(versions.manifest_path(root, first["version"]), first)

    assert collect_garbage(root).removed == []  # everything is newer than 24 h
    removed = collect_garbage(root, older_than_hours=0)
    assert {e.key for e in removed.removed} == {e.key for e in entries} - set(keep)
    assert [e.key for e in list_entries(root)] == keep


def test_diff_says_what_changed_in_the_recipe():
    from recipeflow.datasets.diff import recipe_changes

    a = {"name": "r", "nodes": {"main": {"process": [{"text_length_filter": {"min_length": 500}}]}}, "run": {"workers": 2}}
    b = {"name": "r", "nodes": {"main": {"process": [{"text_length_filter": {"min_length": 800}}]}}, "run": {"workers": 2, "cache": False}}
    assert recipe_changes(a, b) == [
        "nodes.main.process[0].text_length_filter.min_length: 500 → 800",
        "+ run.cache: false",
    ]
