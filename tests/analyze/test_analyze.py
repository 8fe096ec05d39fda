"""`recipeflow analyze`: filters in annotate mode as a real Prefect flow run (embedded server),
with exact counts on JSONL of known lengths and a check against a real run on the WARC sample."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import yaml
from click.testing import CliRunner

from recipeflow.datasets import versions
from recipeflow.io import writers
from recipeflow.analyze.model import AnalyzeError, SampleInput, ShardAnalysis
from recipeflow.analyze.sampling import MoreFiles, walk_sample
from recipeflow.orchestration.analyze_flow import analyze_recipe
from recipeflow.analyze.annotate import annotate_shard
from recipeflow.analyze.thresholds import match_thresholds, threshold_params
from recipeflow.analyze.analysis import summarise_node
from recipeflow.cli import main
from recipeflow.engine.shard_input import ShardInput
from recipeflow.engine.planner import OpRef
from recipeflow.orchestration.runner import run_recipe
from tests.conftest import SAMPLE_WARC

# Lengths of the documents, in input order; the last one shrinks to "a b" (3 characters) once
# whitespace is normalized, which the filters after normalize_whitespace must see.
LENGTHS = [50, 150, 250, 350, 6000, 80, 4000, 120, 7000, 290, 99, 100, 300, 5000, 5001]
SPACED = "a" + " " * 200 + "b"


def write_jsonl(path: Path, texts: list[str], bad_line_at: int | None = None) -> None:
    lines = [json.dumps({"id": f"{path.stem}-{i}", "text": t, "src": path.stem}) for i, t in enumerate(texts)]
    if bad_line_at is not None:
        lines.insert(bad_line_at, '{"id": "broken", "text": ')
    path.write_text("\n".join(lines) + "\n")


def write_recipe(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def read_artifacts(keys: list[str]):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    with get_client(sync_client=True) as client:
        return client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=keys)))


# -- pure parts ------------------------------------------------------------------------------


def test_thresholds_are_min_max_numeric_params_matched_to_statistics_by_name():
    params = {"min_length": 10, "max_length": None, "max_symbol_word_ratio": 0.1, "min_doc_words": 50,
              "max_avg_word_length": 10, "min_stop_words": 2, "lang": "en", "min_flag": True,
              "max_len": 9223372036854775807, "max_ratio": float("inf")}  # "no limit" stand-ins
    assert threshold_params(params) == {"min_length": 10, "max_symbol_word_ratio": 0.1,
                                        "min_doc_words": 50, "max_avg_word_length": 10, "min_stop_words": 2}
    matched, unmatched = match_thresholds({"min_length": 10, "max_length": 99}, ["text_length"])
    assert matched == {"text_length": {"min_length": 10, "max_length": 99}} and unmatched == {}
    stats = ["doc_words", "avg_word_length", "symbol_word_ratio", "text_length"]
    matched, unmatched = match_thresholds(threshold_params(params), stats)
    assert matched == {"doc_words": {"min_doc_words": 50}, "avg_word_length": {"max_avg_word_length": 10},
                       "symbol_word_ratio": {"max_symbol_word_ratio": 0.1}, "text_length": {}}
    # No statistic named like it, or two equally well: shown for the filter as a whole.
    assert unmatched == {"min_length": 10, "min_stop_words": 2}


def _input(key: str, records: int) -> SampleInput:
    return SampleInput(ShardInput(key=key, fingerprint=key), records)


def _done(key: str, limit: int | None, docs: int, truncated: bool) -> ShardAnalysis:
    return ShardAnalysis(key, limit, docs, truncated, 0, "unused")


def test_walk_takes_first_documents_and_asks_for_more_when_records_were_unreadable():
    entries = [_input("a", 4), _input("b", 4), _input("c", 4)]
    walk = walk_sample(entries, 6, {})
    assert walk.todo == [("a", 6), ("b", 2)] and walk.included == ["a", "b"]
    # a held one unreadable record: b must give 3 documents now, not 2.
    done = {"a": _done("a", 6, 3, False), "b": _done("b", 2, 2, True)}
    walk = walk_sample(entries, 6, done)
    assert walk.todo == [("b", 3)]
    done["b"] = _done("b", 3, 3, True)
    assert walk_sample(entries, 6, done).todo == []
    # Past the scanned files, the walk asks for the next files of that input.
    walk = walk_sample([_input("a", 4), MoreFiles("docs")], 6, {"a": _done("a", 6, 4, False)})
    assert walk.todo == [] and walk.scan_more == "docs"
    assert walk_sample(entries, None, {}).todo == [("a", None), ("b", None), ("c", None)]


def test_annotate_shard_follows_documents_through_a_mapper_that_drops_some(tmp_path):
    """Plain Python, no Prefect: html_extract drops an empty page; later filters never see it;
    the rejected stream holds each document once, at the first step that rejected it."""
    pages = [
        "<html><body></body></html>",
        "<html><body><p>" + "word " * 30 + "</p></body></html>",  # 149 characters of text
        "<html><body><p>short text here</p></body></html>",
    ]
    source = tmp_path / "pages.parquet"
    writers.write_table(pa.table({"id": ["empty", "long", "short"], "text": pages}), str(source))
    refs = tuple(
        OpRef("main", i, name, params)
        for i, (name, params) in enumerate([
            ("html_extract", {}), ("text_length_filter", {"min_length": 20}),
            ("exact_dedup", {}), ("text_length_filter", {"min_length": 0, "max_length": 100}),
        ])
    )
    inp = ShardInput(key="pages", fingerprint="pages", parquet=str(source))
    shard = annotate_shard(refs, inp, None, str(tmp_path / "work"), keep_streams=True)
    assert (shard.docs, shard.truncated, shard.kept_rows, shard.rejected_rows) == (3, False, 0, 3)
    rejected = writers.read_table(shard.rejected).to_pylist()
    assert [(r["id"], r["rejected_at"], r["reject_reason"]) for r in rejected] == [
        ("empty", "main.process[0]", "no_text"),
        ("short", "main.process[1]", "text_length_below_min"),
        ("long", "main.process[3]", "text_length_above_max"),
    ]
    node = summarise_node("main", ["pages"], refs, [shard])
    extract, minimum, dedup, maximum = node.steps
    assert (extract.docs_in, extract.dropped_alone, extract.dropped_in_sequence) == (3, 1, 1)
    assert (minimum.docs_in, minimum.dropped_alone, minimum.statistics[0].summary["max"]) == (2, 1, 149)
    assert not dedup.analysed
    assert (maximum.docs_in, maximum.docs_in_sequence, maximum.dropped_alone, maximum.dropped_in_sequence) == (2, 1, 1, 1)
    assert node.kept_in_sequence == 0


# -- flow runs -------------------------------------------------------------------------------


def test_jsonl_drops_alone_and_in_sequence_with_report_and_artifacts(tmp_path, prefect_api):
    texts = ["x" * n for n in LENGTHS] + [SPACED]
    write_jsonl(tmp_path / "docs.jsonl", texts)
    recipe = write_recipe(tmp_path / "r.yaml", {
        "name": "Known_Lengths.v1",
        "inputs": {"docs": {"path": str(tmp_path / "docs.jsonl")}},
        "process": [
            {"normalize_whitespace": {}},
            {"text_length_filter": {"min_length": 100}},
            {"text_length_filter": {"min_length": 300, "max_length": 5000}},
        ],
        "output": {"path": str(tmp_path / "dataset")},
        "run": {"shard_size": 5},
    })
    report = tmp_path / "report.html"
    result = analyze_recipe(str(recipe), sample=0, report=str(report), progress=False)

    [node] = result.analysis.nodes
    lengths = np.array(LENGTHS + [3])  # what the filters see: normalized text
    first, second = lengths < 100, (lengths < 300) | (lengths > 5000)
    assert node.documents == len(lengths) and node.kept_in_sequence == int((~first & ~second).sum())
    mapper, short, bounds = node.steps
    assert (mapper.kind, mapper.docs_in, mapper.dropped_alone) == ("mapper", 16, 0)
    assert (short.docs_in, short.dropped_alone, short.dropped_in_sequence) == (16, 4, 4)
    assert (bounds.docs_in, bounds.docs_in_sequence) == (16, 12)
    assert bounds.dropped_alone == int(second.sum()) == 12
    assert bounds.dropped_in_sequence == int((second & ~first).sum()) == 8
    assert bounds.reasons == {"text_length_above_max": 3, "text_length_below_min": 9}
    [stat] = bounds.statistics
    assert stat.name == "text_length" and stat.thresholds == {"min_length": 300, "max_length": 5000}
    for p in (1, 5, 25, 50, 95, 99):
        assert stat.summary[f"p{p}"] == pytest.approx(np.percentile(lengths, p))
    assert (stat.summary["min"], stat.summary["max"]) == (3, 7000)
    assert stat.summary["mean"] == pytest.approx(lengths.mean())
    assert sum(stat.histogram.counts) == 16

    # The report: self-contained, one SVG per statistic, thresholds marked.
    page = report.read_text()
    assert page.count("<svg") == 2 and "<script" not in page and "http-equiv" not in page
    assert "min_length=300" in page and "max_length=5000" in page and 'class="threshold"' in page
    assert not re.search(r'(src|href)="http', page)

    # The flow run's artifacts.
    artifacts = read_artifacts(["known-lengths-v1-analyze-table", "known-lengths-v1-analyze-report"])
    assert {a.key: a.type for a in artifacts} == {
        "known-lengths-v1-analyze-table": "table", "known-lengths-v1-analyze-report": "markdown"
    }
    table = next(a for a in artifacts if a.type == "table")
    rows = json.loads(table.data) if isinstance(table.data, str) else table.data
    row = next(r for r in rows if r["step"] == "main.process[2]")
    assert (row["statistic"], row["dropped_alone"], row["dropped_in_sequence"]) == ("text_length", 12, 8)
    assert row["p50"] == pytest.approx(np.percentile(lengths, 50)) and row["threshold"] == "min_length=300, max_length=5000"
    markdown = next(a for a in artifacts if a.type == "markdown").data
    assert "main.process[2]" in markdown and "text_length" in markdown

    # Nothing was committed, nor written to the output root.
    assert versions.list_versions(str(tmp_path / "dataset")) == []
    assert not (tmp_path / "dataset").exists()


def test_graph_sample_of_first_documents_and_rejected_stream(tmp_path, prefect_api):
    """Three files, an unreadable line in the first: the sample of 10 documents reaches into
    the third file (scanned only then); `clean.rejected` feeds exactly what `clean` rejected;
    a routed node samples only what its route takes."""
    folder = tmp_path / "docs"
    folder.mkdir()
    lengths = list(range(10, 160, 10))  # 15 documents, 10..150 characters, in input order
    write_jsonl(folder / "a.jsonl", ["x" * n for n in lengths[:4]], bad_line_at=2)
    write_jsonl(folder / "b.jsonl", ["x" * n for n in lengths[4:9]])
    write_jsonl(folder / "c.jsonl", ["x" * n for n in lengths[9:]])
    recipe = write_recipe(tmp_path / "g.yaml", {
        "name": "graph",
        "inputs": {"docs": {"path": str(folder)}},
        "nodes": {
            "clean": {"from": "docs", "process": [{"text_length_filter": {"min_length": 45}}, {"exact_dedup": {}}]},
            "short": {"from": "clean.rejected", "process": [{"text_length_filter": {"min_length": 0, "max_length": 25}}]},
            "copy": {"from": "clean", "process": []},
            "only_b": {"from": "docs", "route": {"field": "src", "values": ["b"]},
                       "process": [{"text_length_filter": {"min_length": 75}}]},
        },
        "outputs": {"clean": {"path": str(tmp_path / "clean")}, "copy": {"path": str(tmp_path / "copy")}},
        "run": {"shard_size": 2, "workers": 1},
    })
    result = analyze_recipe(str(recipe), sample=10, report=str(tmp_path / "g.html"), progress=False)

    clean, short, only_b = result.analysis.nodes
    assert result.analysis.skipped_nodes == ["copy"]
    sample = np.array(lengths[:10])  # the first 10 readable documents
    assert (clean.name, clean.documents, clean.unreadable) == ("clean", 10, 1)
    [stat] = clean.steps[0].statistics
    assert (stat.summary["min"], stat.summary["max"]) == (10, 100)
    assert clean.steps[0].dropped_alone == int((sample < 45).sum()) == 4
    assert clean.steps[1].note == "not analysed (barrier)"
    # `short` reads the 4 documents `clean` rejected (10..40 characters), nothing else.
    assert (short.name, short.documents) == ("short", 4)
    assert short.steps[0].dropped_alone == short.steps[0].dropped_in_sequence == 2
    assert short.steps[0].statistics[0].summary["max"] == 40
    # A routed node samples the documents its route takes: all 5 of b.jsonl (50..90).
    assert (only_b.documents, only_b.steps[0].dropped_alone) == (5, 3)
    assert only_b.steps[0].statistics[0].summary["min"] == 50
    assert Path(tmp_path / "g.html").read_text().count("<svg") == 3


def test_cli_on_the_warc_sample_matches_a_real_run(tmp_path, prefect_api, monkeypatch):
    monkeypatch.chdir(tmp_path)
    data = {
        "name": "pages",
        "inputs": {"pages": {"path": str(SAMPLE_WARC)}},
        "process": [
            {"html_extract": {}},
            {"normalize_whitespace": {}},
            {"text_length_filter": {"min_length": 100}},
            {"exact_dedup": {}},
        ],
        "output": {"path": str(tmp_path / "dataset")},
        "run": {"shard_size": 100},
    }
    recipe = write_recipe(tmp_path / "pages.yaml", data)
    result = CliRunner().invoke(
        main,
        ["analyze", str(recipe), "--no-progress", "--sample", "0",
         "--set", "process.2.text_length_filter.min_length=1500"],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    out = result.output
    for column in ("statistic", "p5", "p50", "p95", "threshold", "dropped alone", "dropped in sequence"):
        assert column in out
    line = next(l for l in out.splitlines() if "main.process[2]" in l)
    assert "text_length" in line and "min_length=1500" in line
    assert re.search(r"main\.process\[3\]\s+exact_dedup\s+not analysed \(barrier\)", out)
    report = tmp_path / "analyze-pages.html"  # the default: in the current directory
    assert f"report written to {report}" in out
    assert report.read_text().count("<svg") == 1
    assert not (tmp_path / "dataset").exists()

    # The drops in sequence are what a real run rejects at that step.
    dropped = int(re.search(r"min_length=1500\s+(\d+) \(", line).group(1))
    in_sequence = int(re.findall(r"(\d+) \([\d.]+%\)", line)[-1])
    [manifest] = run_recipe(str(recipe), ["process.2.text_length_filter.min_length=1500"], progress=False)
    real = next(o for o in manifest["operators"] if o["step"] == "main.process[2]")
    assert real["rejected"] == in_sequence == dropped > 0


def test_cli_errors_for_people(tmp_path):
    recipe = write_recipe(tmp_path / "r.yaml", {
        "name": "missing", "inputs": {"docs": {"path": str(tmp_path / "nothing-*.jsonl")}},
        "process": [{"text_length_filter": {}}], "output": {"path": str(tmp_path / "out")},
    })
    result = CliRunner().invoke(main, ["analyze", str(recipe)])
    assert result.exit_code == 2 and "inputs.docs.path" in result.output and "nothing matched" in result.output
    write_jsonl(tmp_path / "d.jsonl", ["text"])
    recipe.write_text(recipe.read_text().replace("nothing-*.jsonl", "d.jsonl"))
    result = CliRunner().invoke(main, ["analyze", str(recipe), "--report", str(tmp_path / "no" / "r.html")])
    assert result.exit_code == 2 and "does not exist" in result.output
    result = CliRunner().invoke(main, ["analyze", str(recipe), "--sample", "-1"])
    assert result.exit_code == 2 and "--sample" in result.output
    with pytest.raises(AnalyzeError):
        analyze_recipe(str(recipe), sample=-1)


def test_analyze_routes_by_what_language_id_writes(tmp_path, prefect_api):
    """A route reads the `lang` that language_id writes in the same run, not the input's own
    label (here absent): analyze samples each route as a run would route it."""
    import gzip

    from recipeflow.orchestration.runner import run_recipe
    from tests.conftest import REPO

    source = REPO / "recipes" / "samples" / "debian-handbook-multilingual.jsonl.gz"
    docs = tmp_path / "docs.jsonl"
    with gzip.open(source, "rt", encoding="utf-8") as f:
        records = [json.loads(line) for line in f]
    docs.write_text("".join(json.dumps({"id": r["id"], "text": r["text"]}) + "\n" for r in records))
    recipe = tmp_path / "routed.yaml"
    recipe.write_text(yaml.safe_dump({
        "name": "routed",
        "inputs": {"docs": {"path": str(docs)}},
        "nodes": {
            "identified": {"from": "docs", "process": [{"language_id": {}}]},
            "en": {"from": "identified", "route": {"field": "lang", "values": ["en"]},
                   "process": [{"text_length_filter": {"min_length": 200}}]},
            "de": {"from": "identified", "route": {"field": "lang", "values": ["de"]},
                   "process": [{"text_length_filter": {"min_length": 200}}]},
        },
        "outputs": {"en": {"path": str(tmp_path / "en")}, "de": {"path": str(tmp_path / "de")}},
        "run": {"executor": "threads", "workers": 1},
    }))
    analysis = analyze_recipe(str(recipe), sample=0, report=str(tmp_path / "r.html"), progress=False).analysis
    sampled = {n.name: n.documents for n in analysis.nodes}
    manifests = {m["node"]: m for m in run_recipe(str(recipe), progress=False)}
    routed = {
        node: next(op["docs_out"] for op in m["operators"] if op["operator"] == "route")
        for node, m in manifests.items()
    }
    assert sampled["en"] == routed["en"] and sampled["de"] == routed["de"]
    assert routed["en"] > 40 and routed["de"] > 40  # language_id, not the (absent) labels
