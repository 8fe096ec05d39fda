"""Readers on real files: every format, ids and lineage, slicing, and every kind of bad input."""

from __future__ import annotations

import gzip
import io
import json
from pathlib import Path

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from recipeflow.io import readers
from recipeflow.io.readers import (
    FileScan,
    InputNotFound,
    SourceShard,
    cut_shards,
    expand_input,
    infer_format,
    input_root,
    read_shard,
    scan_file,
)
from recipeflow.operators import document as doc

from tests.conftest import SAMPLE_WARC  # noqa: E402
LINEAGE = [doc.INPUT_NAME, doc.INPUT_FILE, doc.INPUT_RECORD]


# --- helpers --------------------------------------------------------------------------------


def write_jsonl(path: Path, records: list[object]) -> Path:
    """Write records as JSONL; bytes are written as they are (for bad lines)."""
    lines = [r if isinstance(r, bytes) else json.dumps(r).encode() for r in records]
    data = b"".join(line + b"\n" for line in lines)
    if path.name.endswith(".gz"):
        data = gzip.compress(data, mtime=0)
    elif path.name.endswith(".zst"):
        # Two frames: readers must read across them.
        half = len(data) // 2
        zc = zstandard.ZstdCompressor()
        data = zc.compress(data[:half]) + zc.compress(data[half:])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def shards_of(url: str, fmt: str, shard_size: int, name: str = "in", text_field: str = "text",
              id_field: str = "id", root: str | None = None) -> list[SourceShard]:
    scan = scan_file(url, fmt, shard_size)
    root = root if root is not None else str(Path(url).parent)
    return cut_shards(name, fmt, text_field, id_field, root, [scan], shard_size)


def read_all(shards: list[SourceShard], batch_size: int = 1000) -> tuple[pa.Table, pa.Table | None]:
    """Every document and unreadable row of the shards, concatenated."""
    docs, bad = [], []
    for shard in shards:
        for documents, unreadable in read_shard(shard, batch_size):
            docs.append(documents)
            if unreadable is not None:
                bad.append(unreadable)
    documents = pa.concat_tables(docs, promote_options="permissive")
    return documents, (pa.concat_tables(bad) if bad else None)


def sample_records(n: int) -> list[dict]:
    return [{"id": f"doc-{i}", "text": f"Document number {i}. " * 3, "lang": "en", "n": i}
            for i in range(n)]


def warc_record(writer: WARCWriter, uri: str, body: bytes, content_type: str,
                rec_type: str = "response"):
    if rec_type == "request":
        http = StatusAndHeaders("GET / HTTP/1.1", [("Accept", content_type)], is_http_request=True)
    elif rec_type == "response":
        http = StatusAndHeaders("200 OK", [("Content-Type", content_type)], protocol="HTTP/1.1")
    else:
        return writer.create_warc_record(uri, rec_type, payload=io.BytesIO(body),
                                         warc_content_type=content_type)
    return writer.create_warc_record(uri, rec_type, payload=io.BytesIO(body), http_headers=http)


def write_warc(path: Path, pages: list[tuple[str, bytes, str]], gzipped: bool = True) -> list[bytes]:
    """A WARC of response records; returns each record's bytes (one gzip member each)."""
    members = []
    for uri, body, content_type in pages:
        buffer = io.BytesIO()
        writer = WARCWriter(buffer, gzip=gzipped)
        writer.write_record(warc_record(writer, uri, body, content_type))
        members.append(buffer.getvalue())
    path.write_bytes(b"".join(members))
    return members


def html(i: int) -> bytes:
    return f"<html><body><p>Page {i}: caf\u00e9</p></body></html>".encode()


# --- formats and listing --------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, fmt",
    [
        ("a.jsonl", "jsonl"), ("a.json", "jsonl"), ("a.jsonl.gz", "jsonl"),
        ("a.jsonl.zst", "jsonl"), ("a.ndjson", "jsonl"), ("s3://b/x/A.JSONL", "jsonl"),
        ("a.parquet", "parquet"), ("a.warc", "warc"), ("a.warc.gz", "warc"),
        ("a.txt", "text"), ("a.txt.gz", "text"), ("a.md", "text"),
    ],
)
def test_infer_format(name: str, fmt: str) -> None:
    assert infer_format(name) == fmt


@pytest.mark.parametrize("name", ["data/a.csv", "data/noext", "data/a.warc.zst"])
def test_infer_format_unknown_names_the_file_and_format_setting(name: str) -> None:
    with pytest.raises(ValueError) as error:
        infer_format(name)
    assert name in str(error.value)


def test_infer_format_unknown_extension_says_set_format() -> None:
    with pytest.raises(ValueError, match="set `format:`"):
        infer_format("x/data.csv")


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    for name in ["a.jsonl", "b.jsonl", "sub/c.jsonl", "sub/deep/d.jsonl", "notes.txt",
                 ".hidden.jsonl", "_SUCCESS", "sub/.cache/e.jsonl"]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text('{"text": "x"}\n')
    return tmp_path


def test_expand_input_directory_is_recursive_sorted_and_skips_hidden(tree: Path) -> None:
    assert expand_input(str(tree)) == [
        str(tree / n) for n in ["a.jsonl", "b.jsonl", "notes.txt", "sub/c.jsonl", "sub/deep/d.jsonl"]
    ]


def test_expand_input_globs(tree: Path) -> None:
    assert expand_input(str(tree / "*.jsonl")) == [str(tree / "a.jsonl"), str(tree / "b.jsonl")]
    assert expand_input(str(tree / "**/*.jsonl")) == [
        str(tree / n) for n in ["a.jsonl", "b.jsonl", "sub/c.jsonl", "sub/deep/d.jsonl"]
    ]
    assert expand_input(str(tree / "s*")) == [str(tree / "sub/c.jsonl"), str(tree / "sub/deep/d.jsonl")]


def test_expand_input_single_file_and_relative_path(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert expand_input(str(tree / ".hidden.jsonl")) == [str(tree / ".hidden.jsonl")]
    monkeypatch.chdir(tree)
    assert expand_input("sub/c.jsonl") == [str(tree / "sub/c.jsonl")]


@pytest.mark.parametrize("pattern", ["missing.jsonl", "*.parquet", "nothere/"])
def test_expand_input_no_match(tree: Path, pattern: str) -> None:
    path = str(tree / pattern)
    with pytest.raises(InputNotFound, match="nothing matched") as error:
        expand_input(path)
    assert path in str(error.value)


def test_expand_input_keeps_protocol_of_other_filesystems() -> None:
    fs = fsspec.filesystem("memory")
    fs.pipe("/rf-test/in/b.jsonl", b'{"text": "b"}\n')
    fs.pipe("/rf-test/in/a.jsonl", b'{"text": "a"}\n')
    try:
        urls = expand_input("memory://rf-test/in/*.jsonl")
        assert urls == ["memory:///rf-test/in/a.jsonl", "memory:///rf-test/in/b.jsonl"]
        assert input_root("memory://rf-test/in/*.jsonl") == "memory:///rf-test/in"
        scan = scan_file(urls[0], "jsonl", 10)
        shard, = cut_shards("m", "jsonl", "text", "id", input_root("memory://rf-test/in"), [scan], 10)
        documents, _ = read_all([shard])
        assert documents.column("id").to_pylist() == ["m/a.jsonl:0"]
    finally:
        fs.rm("/rf-test", recursive=True)


def test_input_root(tree: Path) -> None:
    assert input_root(str(tree / "sub/*.jsonl")) == str(tree / "sub")
    assert input_root(str(tree / "**/*.jsonl")) == str(tree)
    assert input_root(str(tree / "sub")) == str(tree / "sub")
    assert input_root(str(tree / "sub/c.jsonl")) == str(tree / "sub")


# --- JSONL ----------------------------------------------------------------------------------


def test_jsonl_documents_ids_metadata_and_lineage(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "part.jsonl", [
        {"id": "a", "text": "first", "lang": "en", "meta": {"score": 1.5, "tags": ["x"]}},
        {"text": "second, no id", "lang": "de"},
        {"id": None, "text": "null id"},
        {"id": 42, "text": "int id", "input_file": "spoofed", "extra": True},
    ])
    documents, unreadable = read_all(shards_of(str(path), "jsonl", 100, name="web", root=str(tmp_path)))
    assert unreadable is None
    assert documents.column_names == ["id", "text", "lang", "meta", "extra", *LINEAGE]
    assert documents.column("id").to_pylist() == ["a", "web/part.jsonl:1", "web/part.jsonl:2", "42"]
    assert documents.column("text").to_pylist() == ["first", "second, no id", "null id", "int id"]
    assert documents.column("meta").to_pylist()[0] == {"score": 1.5, "tags": ["x"]}
    assert documents.column(doc.INPUT_NAME).to_pylist() == ["web"] * 4
    assert documents.column(doc.INPUT_FILE).to_pylist() == [str(path)] * 4  # lineage wins
    assert documents.column(doc.INPUT_RECORD).to_pylist() == [0, 1, 2, 3]
    assert documents.schema.field(doc.INPUT_RECORD).type == pa.int64()


def test_jsonl_custom_text_and_id_fields(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "x.jsonl", [{"doc_id": "d1", "content": "hello", "url": "u"}])
    documents, _ = read_all(shards_of(str(path), "jsonl", 10, text_field="content", id_field="doc_id"))
    assert documents.to_pylist()[0] == {
        "id": "d1", "text": "hello", "url": "u",
        "input_name": "in", "input_file": str(path), "input_record": 0,
    }


def test_relative_path_ids_use_the_input_root(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "2024" / "05" / "p.jsonl", [{"text": "t"}])
    documents, _ = read_all(shards_of(str(path), "jsonl", 10, name="crawl", root=str(tmp_path)))
    assert documents.column("id").to_pylist() == ["crawl/2024/05/p.jsonl:0"]


@pytest.mark.parametrize("suffix", ["jsonl.gz", "jsonl.zst"])
def test_compressed_jsonl_reads_like_plain(tmp_path: Path, suffix: str) -> None:
    records = sample_records(25)
    plain = write_jsonl(tmp_path / "p.jsonl", records)
    packed = write_jsonl(tmp_path / f"p.{suffix}", records)
    scan = scan_file(str(packed), "jsonl", 10)
    assert scan.records == 25 and scan.offsets == ()
    assert scan.size == packed.stat().st_size
    plain_docs, _ = read_all(shards_of(str(plain), "jsonl", 10))
    packed_docs, _ = read_all(shards_of(str(packed), "jsonl", 10))
    assert packed_docs.drop_columns([doc.INPUT_FILE]).equals(plain_docs.drop_columns([doc.INPUT_FILE]))


def test_scan_checksum_size_and_offsets_of_plain_jsonl(tmp_path: Path) -> None:
    import hashlib

    path = write_jsonl(tmp_path / "p.jsonl", [b"", *[json.dumps(r).encode() for r in sample_records(7)]])
    scan = scan_file(str(path), "jsonl", 3)
    data = path.read_bytes()
    assert scan == FileScan(str(path), "jsonl", len(data), hashlib.sha256(data).hexdigest(), 7,
                            scan.offsets)
    lines = data.split(b"\n")
    starts = [sum(len(l) + 1 for l in lines[:i]) for i in range(len(lines))]
    assert scan.offsets == (starts[1], starts[4], starts[7])  # record 0 is after the blank line


@pytest.mark.parametrize("name", ["p.jsonl", "p.jsonl.gz"])
def test_slices_read_the_same_records_as_one_shard(tmp_path: Path, name: str) -> None:
    records: list[object] = []
    for i, r in enumerate(sample_records(23)):
        records.append(r)
        if i % 5 == 0:
            records.append(b"   ")  # blank lines are no records
    records.insert(8, b"{broken")
    path = write_jsonl(tmp_path / name, records)
    whole = shards_of(str(path), "jsonl", 1000)
    pieces = shards_of(str(path), "jsonl", 4)
    assert len(whole) == 1 and len(pieces) == 6
    assert [p.slices[0].start for p in pieces] == [0, 4, 8, 12, 16, 20]
    assert all((p.slices[0].byte_offset is None) == name.endswith(".gz") for p in pieces)
    assert pieces[1].key == f"in/{name}:4-8"
    whole_docs, whole_bad = read_all(whole)
    piece_docs, piece_bad = read_all(pieces, batch_size=3)
    assert piece_docs.equals(whole_docs)
    assert piece_bad.equals(whole_bad)
    # list index 8 is record 6: the blank lines before it are not records
    assert whole_docs.num_rows == 23 and whole_bad.column(doc.INPUT_RECORD).to_pylist() == [6]


def test_batches_are_bounded_and_in_order(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "p.jsonl", sample_records(10))
    shard, = shards_of(str(path), "jsonl", 100)
    batches = [d for d, _ in read_shard(shard, batch_size=4)]
    assert [b.num_rows for b in batches] == [4, 4, 2]
    assert pa.concat_tables(batches).column(doc.INPUT_RECORD).to_pylist() == list(range(10))


BAD_LINES = [
    (b'{"text": "unterminated', "malformed JSON"),
    (b'["text", "an array"]', "JSON array, not an object"),
    (b'"just a string"', "JSON string, not an object"),
    (b'{"text": "caf\xe9"}', "invalid UTF-8"),
    (b'{"id": "no-text", "body": "x"}', "no 'text' field"),
    (b'{"text": 12}', "JSON number, not a string"),
    (b'{"text": null}', "JSON null, not a string"),
    (b'{"text": ["a"]}', "JSON array, not a string"),
    (b'{"text": "lone \\ud800 surrogate"}', "surrogate"),
    (b'{"id": "\\udc00", "text": "surrogate in the id"}', "surrogate"),
]


def test_every_bad_record_is_counted_as_unreadable(tmp_path: Path) -> None:
    records: list[object] = [{"text": "good 0"}]
    for line, _ in BAD_LINES:
        records += [line, {"text": "good"}]
    path = write_jsonl(tmp_path / "bad.jsonl", records)
    shards = shards_of(str(path), "jsonl", 1000, name="in")
    assert scan_file(str(path), "jsonl", 1000).records == 1 + 2 * len(BAD_LINES)
    documents, unreadable = read_all(shards)
    assert documents.num_rows == 1 + len(BAD_LINES)
    assert unreadable.num_rows == len(BAD_LINES)
    assert unreadable.column_names == ["id", "text", *LINEAGE, *doc.REJECTION_COLUMNS]
    bad_records = [1 + 2 * i for i in range(len(BAD_LINES))]
    assert unreadable.column(doc.INPUT_RECORD).to_pylist() == bad_records
    assert unreadable.column(doc.INPUT_FILE).to_pylist() == [str(path)] * len(BAD_LINES)
    assert set(unreadable.column(doc.REJECTED_BY).to_pylist()) == {"read"}
    assert set(unreadable.column(doc.REJECT_REASON).to_pylist()) == {doc.UNREADABLE}
    for detail, (line, expected) in zip(unreadable.column(doc.REJECT_DETAIL).to_pylist(), BAD_LINES):
        assert expected in detail, (line, detail)
    ids = unreadable.column("id").to_pylist()
    assert ids[0] == "in/bad.jsonl:1" and ids[4] == "no-text"  # the record's own id when it has one
    assert unreadable.column("text").to_pylist()[3] == '{"text": "caf\ufffd"}'


def test_a_batch_without_bad_records_has_no_unreadable_table(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "p.jsonl", [{"text": "a"}, b"nope", {"text": "b"}])
    shard, = shards_of(str(path), "jsonl", 10)
    results = list(read_shard(shard, batch_size=1))
    assert [u is None for _, u in results] == [True, False, True]
    assert results[1][0].num_rows == 0 and results[1][0].column_names[:2] == ["id", "text"]


@pytest.mark.parametrize("name", ["p.jsonl.gz", "p.jsonl.zst"])
def test_truncated_compressed_jsonl_keeps_what_came_before_and_counts_the_rest_as_one_record(
    tmp_path: Path, name: str
) -> None:
    path = write_jsonl(tmp_path / name, sample_records(2000))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # truncated mid-stream
    scan = scan_file(str(path), "jsonl", 500)
    documents, unreadable = read_all(cut_shards("in", "jsonl", "text", "id", str(tmp_path), [scan], 500))
    assert documents.num_rows + unreadable.num_rows == scan.records
    assert unreadable.num_rows == 1 and "corrupt" in unreadable.column(doc.REJECT_DETAIL)[0].as_py()
    assert documents.column(doc.INPUT_RECORD).to_pylist() == list(range(documents.num_rows))


def test_unreadable_text_is_capped(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "p.jsonl", [b"[" + b"1," * 1_500_000])
    documents, unreadable = read_all(shards_of(str(path), "jsonl", 10))
    assert documents.num_rows == 0
    assert len(unreadable.column("text")[0].as_py()) == readers.MAX_UNREADABLE_TEXT_BYTES


def test_a_20_mb_document(tmp_path: Path) -> None:
    big = "word " * 4_000_000
    path = write_jsonl(tmp_path / "big.jsonl", [{"text": "small"}, {"text": big, "id": "big"}])
    assert scan_file(str(path), "jsonl", 1).records == 2
    documents, unreadable = read_all(shards_of(str(path), "jsonl", 1))
    assert unreadable is None
    assert documents.column("text")[1].as_py() == big


@pytest.mark.parametrize("content", [b"", b"\n\n  \n"])
def test_empty_files_give_nothing(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "empty.jsonl"
    path.write_bytes(content)
    scan = scan_file(str(path), "jsonl", 10)
    assert scan.records == 0 and scan.offsets == ()
    assert cut_shards("in", "jsonl", "text", "id", str(tmp_path), [scan], 10) == []


def test_mixed_type_fields_become_json_strings_deterministically(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "p.jsonl", [
        {"text": "a", "mixed": 1, "nested": {"k": 1}, "empty": {}},
        {"text": "b", "mixed": "one", "nested": {"k": "x"}, "empty": {}},
        {"text": "c"},
    ])
    first, _ = read_all(shards_of(str(path), "jsonl", 10))
    second, _ = read_all(shards_of(str(path), "jsonl", 10))
    assert first.equals(second)
    assert first.column("mixed").to_pylist() == ["1", '"one"', None]
    assert first.column("nested").to_pylist() == ['{"k":1}', '{"k":"x"}', None]
    assert first.column("empty").to_pylist() == ["{}", "{}", None]  # Parquet has no empty struct


def test_a_json_text_with_bom_and_crlf(tmp_path: Path) -> None:
    path = tmp_path / "p.jsonl"
    path.write_bytes(b'\xef\xbb\xbf{"text": "one"}\r\n{"text": "two"}\r\n')
    documents, unreadable = read_all(shards_of(str(path), "jsonl", 10))
    assert unreadable is None and documents.column("text").to_pylist() == ["one", "two"]


# --- Parquet --------------------------------------------------------------------------------


@pytest.fixture
def parquet_file(tmp_path: Path) -> Path:
    table = pa.table({
        "id": pa.array([i if i % 7 else None for i in range(50)], pa.int64()),
        "text": pa.array([None if i == 13 else f"row {i}" for i in range(50)], pa.string()),
        "score": pa.array([i / 2 for i in range(50)], pa.float32()),
        "input_name": pa.array(["spoof"] * 50),
    })
    path = tmp_path / "t.parquet"
    pq.write_table(table, path, row_group_size=8)
    return path


def test_parquet_documents_keep_types_ids_and_lineage(parquet_file: Path) -> None:
    documents, unreadable = read_all(shards_of(str(parquet_file), "parquet", 1000, name="pq"))
    assert documents.column_names == ["id", "text", "score", *LINEAGE]
    assert documents.schema.field("score").type == pa.float32()
    assert documents.num_rows == 49
    ids = documents.column("id").to_pylist()
    assert ids[:3] == ["pq/t.parquet:0", "1", "2"] and ids[7] == "pq/t.parquet:7"
    assert documents.column(doc.INPUT_NAME).to_pylist() == ["pq"] * 49
    assert unreadable.column(doc.INPUT_RECORD).to_pylist() == [13]
    assert "'text' is null" in unreadable.column(doc.REJECT_DETAIL)[0].as_py()


def test_parquet_slices_read_the_same_rows(parquet_file: Path) -> None:
    scan = scan_file(str(parquet_file), "parquet", 12)
    assert scan.records == 50 and scan.offsets == ()
    pieces = shards_of(str(parquet_file), "parquet", 12)
    assert [(p.slices[0].start, p.slices[0].stop) for p in pieces] == [
        (0, 12), (12, 24), (24, 36), (36, 48), (48, 50)]
    whole_docs, whole_bad = read_all(shards_of(str(parquet_file), "parquet", 1000))
    piece_docs, piece_bad = read_all(pieces, batch_size=5)
    assert piece_docs.equals(whole_docs) and piece_bad.equals(whole_bad)


def test_parquet_without_text_column_and_not_parquet(tmp_path: Path) -> None:
    path = tmp_path / "notext.parquet"
    pq.write_table(pa.table({"body": ["a", "b"]}), path)
    documents, unreadable = read_all(shards_of(str(path), "parquet", 10))
    assert documents.num_rows == 0 and unreadable.num_rows == 2
    assert "no 'text' column" in unreadable.column(doc.REJECT_DETAIL)[0].as_py()
    junk = tmp_path / "junk.parquet"
    junk.write_bytes(b"this is not parquet at all")
    documents, unreadable = read_all(shards_of(str(junk), "parquet", 10))
    assert documents.num_rows == 0 and unreadable.num_rows == 1
    assert "not a readable Parquet file" in unreadable.column(doc.REJECT_DETAIL)[0].as_py()




def corrupt_parquet(path: Path, rows: int = 500) -> Path:
    """A Parquet file of ``rows`` rows in row groups of 100 whose middle 4 KiB are zeroed;
    the footer stays intact, so only the pages under the zeros are corrupt."""
    texts = [f"row {i} " + "word " * (i % 13 + 20) for i in range(rows)]
    pq.write_table(pa.table({"id": [str(i) for i in range(rows)], "text": texts}), path,
                   row_group_size=100, compression="snappy")
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle - 2048:middle + 2048] = bytes(4096)
    path.write_bytes(bytes(data))
    return path


def test_a_corrupt_parquet_row_group_becomes_counted_unreadable_records(tmp_path: Path) -> None:
    bad = corrupt_parquet(tmp_path / "bad.parquet")
    good = tmp_path / "good.parquet"
    pq.write_table(pa.table({"id": ["g0", "g1"], "text": ["fine one", "fine two"]}), good)
    shards = shards_of(str(bad), "parquet", 1000) + shards_of(str(good), "parquet", 1000)
    documents, unreadable = read_all(shards, batch_size=64)
    assert documents.num_rows + unreadable.num_rows == 502
    assert 0 < unreadable.num_rows < 500 and unreadable.num_rows % 100 == 0
    assert {"g0", "g1"} <= set(documents.column("id").to_pylist())
    # Every good row is read; the unreadable ones are whole row groups, each named with its rows.
    records = unreadable.column(doc.INPUT_RECORD).to_pylist()
    first = records[0]
    detail = unreadable.column(doc.REJECT_DETAIL)[0].as_py()
    assert first % 100 == 0 and f"rows {first}-{first + 99}" in detail and "bad.parquet" in detail
    assert set(unreadable.column(doc.INPUT_FILE).to_pylist()) == {str(bad)}
    kept = set(documents.column(doc.INPUT_RECORD).to_pylist()[:-2])
    assert kept.isdisjoint(records) and len(kept) + len(records) == 500
# --- WARC -----------------------------------------------------------------------------------


def test_sample_warc(tmp_path: Path) -> None:
    scan = scan_file(str(SAMPLE_WARC), "warc", 100)
    assert scan.records == 308 and len(scan.offsets) == 4 and scan.offsets[0] == 0
    whole = cut_shards("handbook", "warc", "text", "id", str(SAMPLE_WARC.parent),
                       [scan_file(str(SAMPLE_WARC), "warc", 1000)], 1000)
    documents, unreadable = read_all(whole)
    assert unreadable is None and documents.num_rows == 308
    assert documents.column_names == ["id", "text", "url", "warc_date", "content_type", *LINEAGE]
    first = documents.slice(0, 1).to_pylist()[0]
    assert first["url"].startswith("https://handbook.example.org/en-US/")
    assert len(first["id"]) == 36 and "<" not in first["id"]
    assert first["content_type"] == "text/html; charset=utf-8"
    assert "<html" in first["text"]
    german = [t for t, u in zip(documents.column("text").to_pylist(),
                                documents.column("url").to_pylist()) if "/de-DE/" in u]
    assert len(german) == 127 and any("ü" in t for t in german)
    # The bundled mirror copies: same page, other URL and id.
    by_url = dict(zip(documents.column("url").to_pylist(), documents.column("text").to_pylist()))
    mirrors = [u for u in by_url if u.startswith("https://mirror.example.org/")]
    assert len(mirrors) == 4
    for url in mirrors:
        assert by_url[url] == by_url[url.replace("mirror.example.org/debian-handbook",
                                                 "handbook.example.org")]
    pieces = cut_shards("handbook", "warc", "text", "id", str(SAMPLE_WARC.parent), [scan], 100)
    piece_docs, _ = read_all(pieces, batch_size=64)
    assert piece_docs.equals(documents)


def test_warc_counts_only_html_responses_and_decodes_charsets(tmp_path: Path) -> None:
    path = tmp_path / "mixed.warc.gz"
    buffer = io.BytesIO()
    writer = WARCWriter(buffer, gzip=True)
    writer.write_record(writer.create_warcinfo_record("mixed.warc.gz", {"software": "test"}))
    writer.write_record(warc_record(writer, "https://e.org/img.png", b"\x89PNG", "image/png"))
    writer.write_record(warc_record(writer, "https://e.org/latin1", "<p>Grüße</p>".encode("latin-1"),
                                    "text/html; charset=ISO-8859-1"))
    writer.write_record(warc_record(writer, "https://e.org/req", b"", "text/html", rec_type="request"))
    writer.write_record(warc_record(writer, "https://e.org/res", b"<p>x</p>", "text/html",
                                    rec_type="resource"))
    writer.write_record(warc_record(writer, "https://e.org/nocharset",
                                    "<html><head><meta charset='utf-8'></head><p>Straße über</p>"
                                    .encode("utf-8"), "application/xhtml+xml"))
    writer.write_record(warc_record(writer, "https://e.org/badlabel", b"<p>plain</p>",
                                    "text/html; charset=no-such-charset"))
    path.write_bytes(buffer.getvalue())
    scan = scan_file(str(path), "warc", 2)
    assert scan.records == 3 and len(scan.offsets) == 2
    documents, unreadable = read_all(shards_of(str(path), "warc", 2))
    assert unreadable is None
    assert documents.column("url").to_pylist() == ["https://e.org/latin1", "https://e.org/nocharset",
                                                   "https://e.org/badlabel"]
    texts = documents.column("text").to_pylist()
    assert texts[0] == "<p>Grüße</p>" and "Straße über" in texts[1] and texts[2] == "<p>plain</p>"
    assert documents.column(doc.INPUT_RECORD).to_pylist() == [0, 1, 2]


def test_a_broken_warc_record_costs_one_row_and_reading_goes_on(tmp_path: Path) -> None:
    path = tmp_path / "broken.warc.gz"
    members = write_warc(path, [(f"https://e.org/{i}", html(i), "text/html") for i in range(6)])
    garbage = gzip.compress(b"this is not a WARC record\r\n\r\n", mtime=0)
    truncated = members[5][: len(members[5]) // 2]
    path.write_bytes(b"".join(members[:2]) + garbage + b"".join(members[2:5]) + truncated)
    scan = scan_file(str(path), "warc", 3)
    assert scan.records == 7  # 5 pages, the garbage member, the truncated page
    documents, unreadable = read_all(shards_of(str(path), "warc", 3))
    assert documents.column("url").to_pylist() == [f"https://e.org/{i}" for i in range(5)]
    assert documents.column(doc.INPUT_RECORD).to_pylist() == [0, 1, 3, 4, 5]
    assert unreadable.column(doc.INPUT_RECORD).to_pylist() == [2, 6]
    details = unreadable.column(doc.REJECT_DETAIL).to_pylist()
    assert all(d.startswith("WARC record at byte ") for d in details)
    whole, whole_bad = read_all(shards_of(str(path), "warc", 100))
    assert whole.equals(documents) and whole_bad.equals(unreadable)




def test_warc_records_without_a_target_uri_say_what_is_wrong(tmp_path: Path) -> None:
    plain = write_warc(tmp_path / "plain.warc", [(f"https://e.org/{i}", html(i), "text/html")
                                                 for i in range(5)], gzipped=False)

    def without_uri(member: bytes, rec_type: str = "response") -> bytes:
        head, sep, block = member.partition(b"\r\n\r\n")
        lines = [line for line in head.split(b"\r\n") if not line.startswith(b"WARC-Target-URI")]
        lines = [b"WARC-Type: " + rec_type.encode() if line.startswith(b"WARC-Type") else line
                 for line in lines]
        return gzip.compress(b"\r\n".join(lines) + sep + block, mtime=0)

    path = tmp_path / "no-uri.warc.gz"
    good = [gzip.compress(member, mtime=0) for member in plain]
    path.write_bytes(good[0] + without_uri(plain[1]) + good[2] + without_uri(plain[3], "revisit")
                     + good[4])
    documents, unreadable = read_all(shards_of(str(path), "warc", 100))
    assert documents.column("url").to_pylist() == [f"https://e.org/{i}" for i in (0, 2, 4)]
    details = unreadable.column(doc.REJECT_DETAIL).to_pylist()
    assert len(details) == 2
    for detail, rec_type in zip(details, ["response", "revisit"]):
        assert f"a {rec_type} record without a WARC-Target-URI header" in detail, detail
        assert "NoneType" not in detail


def test_uncompressed_warc_with_garbage_between_records(tmp_path: Path) -> None:
    path = tmp_path / "plain.warc"
    members = write_warc(path, [(f"https://e.org/{i}", html(i), "text/html") for i in range(4)],
                         gzipped=False)
    path.write_bytes(members[0] + b"GARBAGE LINE\r\nmore junk\r\n\r\n" + b"".join(members[1:]))
    scan = scan_file(str(path), "warc", 2)
    documents, unreadable = read_all(shards_of(str(path), "warc", 2))
    assert documents.column("url").to_pylist() == [f"https://e.org/{i}" for i in range(4)]
    assert documents.num_rows + (unreadable.num_rows if unreadable else 0) == scan.records
    assert scan.offsets[0] == 0


def test_warc_as_a_single_gzip_stream_is_read_without_offsets(tmp_path: Path) -> None:
    path = tmp_path / "one-member.warc.gz"
    members = write_warc(tmp_path / "tmp.warc", [(f"https://e.org/{i}", html(i), "text/html")
                                                 for i in range(5)], gzipped=False)
    path.write_bytes(gzip.compress(b"".join(members), mtime=0))
    scan = scan_file(str(path), "warc", 2)
    assert scan.records == 5 and scan.offsets == ()
    pieces = shards_of(str(path), "warc", 2)
    documents, unreadable = read_all(pieces)
    assert unreadable is None
    assert documents.column("url").to_pylist() == [f"https://e.org/{i}" for i in range(5)]


# --- text -----------------------------------------------------------------------------------


def test_text_files_are_one_document_each_grouped_into_shards(tmp_path: Path) -> None:
    root = tmp_path / "books"
    (root / "b").mkdir(parents=True)
    (root / "a.txt").write_text("Alpha\n")
    (root / "b" / "c.md").write_text("# Gamma")
    (root / "b" / "d.txt.gz").write_bytes(gzip.compress("Delta é".encode(), mtime=0))
    (root / "e.txt").write_bytes(b"")
    (root / "f.txt").write_bytes(b"bad \xff byte")
    urls = expand_input(str(root))
    scans = [scan_file(u, "text", 2) for u in urls]
    assert [s.records for s in scans] == [1, 1, 1, 0, 1]
    shards = cut_shards("books", "text", "text", "id", input_root(str(root)), scans, 2)
    assert [len(s.slices) for s in shards] == [2, 2]
    assert shards[0].key == "books/a.txt:+2"
    documents, unreadable = read_all(shards)
    assert documents.column("id").to_pylist() == ["books/a.txt", "books/b/c.md", "books/b/d.txt.gz"]
    assert documents.column("text").to_pylist() == ["Alpha\n", "# Gamma", "Delta é"]
    assert documents.column(doc.INPUT_RECORD).to_pylist() == [0, 0, 0]
    assert unreadable.column("id").to_pylist() == ["books/f.txt"]
    assert unreadable.column("text").to_pylist() == ["bad \ufffd byte"]
    assert "invalid UTF-8" in unreadable.column(doc.REJECT_DETAIL)[0].as_py()


def test_cut_shards_rejects_scans_made_with_another_shard_size(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "p.jsonl", sample_records(10))
    scan = scan_file(str(path), "jsonl", 5)
    with pytest.raises(ValueError, match="another shard_size"):
        cut_shards("in", "jsonl", "text", "id", str(tmp_path), [scan], 3)
