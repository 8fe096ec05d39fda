"""`recipeflow export` of a JSON-lines version that recorded no schema (written before versions
kept one): the types come from every row, not from the first batch alone."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import yaml
from click.testing import CliRunner

from recipeflow.cli import main
from recipeflow.datasets.version_reader import BATCH_ROWS
from recipeflow.orchestration.runner import run_recipe


def test_a_field_null_in_the_first_batch_keeps_its_later_values(tmp_path, prefect_api):
    docs = tmp_path / "docs.jsonl"
    rows = BATCH_ROWS + 10  # the field first has a value in the second batch
    with open(docs, "w") as f:
        for i in range(rows):
            note = f"note {i}" if i >= BATCH_ROWS else None
            f.write(json.dumps({"id": f"d{i:05d}", "text": f"document number {i}", "note": note, "n": i if i % 2 else i + 0.5}) + "\n")
    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump({
        "name": "old-jsonl", "inputs": {"docs": {"path": str(docs)}},
        "process": [{"normalize_whitespace": {}}],
        "output": {"path": str(tmp_path / "lines"), "format": "jsonl.gz"},
        "run": {"executor": "threads", "shard_size": 5000},
    }))
    [manifest] = run_recipe(str(recipe), progress=False)
    written = tmp_path / "lines" / "versions" / manifest["version"] / "manifest.json"
    old = json.loads(written.read_text())
    del old["schemas"]  # as a version written before versions kept their schema
    written.write_text(json.dumps(old))

    out = tmp_path / "exported"
    result = CliRunner().invoke(main, ["export", str(tmp_path / "lines"), str(out), "--format", "parquet"])
    assert result.exit_code == 0, result.output
    table = pa.concat_tables(pq.read_table(p) for p in sorted(out.rglob("*.parquet")))
    assert table.num_rows == rows
    assert table.schema.field("note").type == pa.string() and table.schema.field("n").type == pa.float64()
    notes = table.column("note").to_pylist()
    assert notes[BATCH_ROWS - 1] is None and notes[-1] == f"note {rows - 1}"
