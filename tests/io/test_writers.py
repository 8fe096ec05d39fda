"""Writers on real files: byte-identical output, round trips, and concat of drifting schemas."""

from __future__ import annotations

import datetime
import gzip
import hashlib
import json
from pathlib import Path

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from recipeflow.io import readers, writers
from recipeflow.io.writers import OUTPUT_FORMATS, WrittenFile, concat, read_table, write_table
from recipeflow.operators import document as doc
from recipeflow.operators.base import Rejection


def documents(n: int = 100) -> pa.Table:
    return pa.table({
        "id": [f"d{i}" for i in range(n)],
        "text": [f"Grüße, document {i} — ünïcödé" for i in range(n)],
        "score": [i / 3 for i in range(n)],
        "meta": [{"lang": "de", "tags": ["a", "b"]} for _ in range(n)],
        "input_record": pa.array(range(n), pa.int64()),
    })


@pytest.mark.parametrize("fmt", OUTPUT_FORMATS)
def test_identical_tables_give_identical_bytes(tmp_path: Path, fmt: str) -> None:
    first = write_table(documents(), str(tmp_path / "a" / f"part.{fmt}"), fmt)
    second = write_table(documents(), str(tmp_path / "b" / "deeper" / f"part.{fmt}"), fmt)
    one, two = Path(first.path).read_bytes(), Path(second.path).read_bytes()
    assert one == two
    assert first == WrittenFile(first.path, 100, len(one), hashlib.sha256(one).hexdigest())
    assert second.sha256 == first.sha256


def test_rewriting_the_same_path_gives_the_same_bytes(tmp_path: Path) -> None:
    url = str(tmp_path / "part.parquet")
    first = write_table(documents(), url)
    data = Path(url).read_bytes()
    second = write_table(documents(), url)
    assert Path(url).read_bytes() == data and second == first


def test_a_reader_never_sees_a_half_written_file(tmp_path: Path, monkeypatch) -> None:
    # Two runs that compute the same cache address (run.cache: false) write the same stage
    # output at once; one must never read the other's half-written file ("Parquet file size is
    # 0 bytes"). While a table is being written, the path still holds the previous whole file.
    url = str(tmp_path / "stage" / "shard-00000.parquet")
    write_table(documents(10), url)
    seen = []
    real_write = writers._write_row_groups

    def write_while_reading(tables, target, schema):
        rows = real_write(tables, target, schema)
        seen.append(read_table(url).num_rows)  # written, not yet in place
        return rows

    monkeypatch.setattr(writers, "_write_row_groups", write_while_reading)
    write_table(documents(100), url)
    assert seen == [10]
    assert read_table(url).num_rows == 100
    assert sorted(p.name for p in (tmp_path / "stage").iterdir()) == ["shard-00000.parquet"]


def test_parquet_round_trip_and_zstd(tmp_path: Path) -> None:
    table = documents(40_000)
    written = write_table(table, str(tmp_path / "part.parquet"))
    assert read_table(written.path).equals(table)
    metadata = pq.ParquetFile(written.path).metadata
    assert metadata.row_group(0).column(0).compression == "ZSTD"
    assert metadata.num_row_groups > 1  # small row groups, so readers of a slice load less


def test_jsonl_gz_lines_keep_column_order_and_unicode(tmp_path: Path) -> None:
    table = pa.table({
        "text": ["héllo"], "id": ["x"],
        "when": pa.array([datetime.datetime(2024, 5, 1, 12, 0)], pa.timestamp("us")),
        "n": pa.array([None], pa.int64()),
    })
    written = write_table(table, str(tmp_path / "out.jsonl.gz"), "jsonl.gz")
    raw = Path(written.path).read_bytes()
    assert raw[4:8] == b"\x00\x00\x00\x00"  # gzip mtime 0
    text = gzip.decompress(raw).decode("utf-8")
    assert text == '{"text": "héllo", "id": "x", "when": "2024-05-01T12:00:00", "n": null}\n'
    assert list(json.loads(text)) == ["text", "id", "when", "n"]


def test_empty_table_and_unknown_format(tmp_path: Path) -> None:
    empty = documents(0)
    written = write_table(empty, str(tmp_path / "empty.parquet"))
    assert written.rows == 0 and read_table(written.path).schema.equals(empty.schema)
    with pytest.raises(ValueError, match="unknown output format 'csv'"):
        write_table(empty, str(tmp_path / "x.csv"), "csv")


def test_read_table_names_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="missing.parquet"):
        read_table(str(tmp_path / "missing.parquet"))


def test_write_through_another_fsspec_filesystem() -> None:
    url = "memory://rf-writers/out/part.parquet"
    try:
        written = write_table(documents(10), url)
        assert written.path == url and read_table(url).equals(documents(10))
        data = fsspec.filesystem("memory").cat("/rf-writers/out/part.parquet")
        assert hashlib.sha256(data).hexdigest() == written.sha256
    finally:
        fsspec.filesystem("memory").rm("/rf-writers", recursive=True)


def test_reader_output_round_trips_with_rejections(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_bytes(b'{"text": "ok", "meta": {}}\n{not json\n')
    scan = readers.scan_file(str(source), "jsonl", 10)
    shard, = readers.cut_shards("in", "jsonl", "text", "id", str(tmp_path), [scan], 10)
    (docs, unreadable), = readers.read_shard(shard)
    for table, name in [(docs, "docs.parquet"), (unreadable, "bad.parquet")]:
        written = write_table(table, str(tmp_path / "out" / name))
        assert read_table(written.path).equals(table)
    assert read_table(str(tmp_path / "out" / "bad.parquet")).column(doc.REJECT_REASON).to_pylist() == [
        doc.UNREADABLE]


# --- concat ---------------------------------------------------------------------------------


def test_concat_fills_missing_columns_and_promotes_nulls() -> None:
    first = pa.table({"text": ["a"], "id": ["1"], "lang": pa.nulls(1), "extra": [1]})
    second = pa.table({"id": ["2"], "text": ["b"], "lang": ["de"], "new": [True]})
    joined = concat([first, second])
    assert joined.column_names == ["id", "text", "lang", "extra", "new"]
    assert joined.schema.field("lang").type == pa.string()
    assert joined.to_pylist() == [
        {"id": "1", "text": "a", "lang": None, "extra": 1, "new": None},
        {"id": "2", "text": "b", "lang": "de", "extra": None, "new": True},
    ]


def test_concat_json_encodes_columns_whose_types_conflict() -> None:
    first = pa.table({"id": ["1"], "text": ["a"], "score": [1], "meta": [{"k": 1}]})
    second = pa.table({"id": ["2"], "text": ["b"], "score": ["high"], "meta": [{"k": 2}]})
    joined = concat([first, second])
    assert joined.column("score").to_pylist() == ["1", '"high"']
    assert joined.column("meta").to_pylist() == [{"k": 1}, {"k": 2}]  # compatible: untouched
    assert concat([first, second]).equals(joined)


def test_concat_merges_struct_fields_and_handles_empty_input() -> None:
    first = pa.table({"id": ["1"], "text": ["a"], "meta": [{"a": 1}]})
    second = pa.table({"id": ["2"], "text": ["b"], "meta": [{"b": "x"}]})
    assert concat([first, second]).column("meta").to_pylist() == [
        {"a": 1, "b": None}, {"a": None, "b": "x"}]
    empty = concat([])
    assert empty.num_rows == 0 and empty.column_names == ["id", "text"]


def test_concat_of_unreadable_and_rejected_batches() -> None:
    batch = pa.table({"id": ["1", "2"], "text": ["a", "b"]})
    dropped = doc.with_rejection(batch, "read", [Rejection("unreadable", detail="x")] * 2)
    other = doc.with_rejection(batch, "filter", [Rejection("too_short", "words", 3.0)] * 2)
    joined = concat([dropped, other])
    assert joined.num_rows == 4
    assert joined.column(doc.REJECT_VALUE).to_pylist() == [None, None, 3.0, 3.0]
