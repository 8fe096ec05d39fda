"""JSONL (plain, ``.gz``, ``.zst``): one record per non-blank line."""


import json
import re
from dataclasses import dataclass
from typing import IO, Any, Iterator

from recipeflow.io import storage
from recipeflow.io.readers.formats import DECOMPRESSION_ERRORS, compression_of, decompressed
from recipeflow.io.readers.records import Row, default_id, unreadable_text
from recipeflow.io.readers.shards import FileSlice, SourceShard

def count_jsonl(stream: IO[bytes], url: str, shard_size: int) -> tuple[int, list[int]]:
    seekable = compression_of(url) is None
    records, offsets = 0, []
    for line in _nonblank_lines(decompressed(stream, url)):
        if seekable and records % shard_size == 0:
            offsets.append(line.offset)
        records += 1
    return records, offsets


@dataclass
class _Line:
    offset: int  # in the (decompressed) stream, relative to where reading started
    data: bytes
    error: str | None = None  # the stream broke here: nothing after it can be read


def _nonblank_lines(stream: IO[bytes], offset: int = 0) -> Iterator[_Line]:
    """The non-blank lines of a stream with their offsets. A corrupt compressed stream ends
    with one error line, so the damage is counted as one record rather than lost."""
    try:
        for line in stream:
            if line and not line.isspace():
                yield _Line(offset, line)
            offset += len(line)
    except DECOMPRESSION_ERRORS as error:
        yield _Line(offset, b"", f"the compressed file is corrupt from here on ({error}); "
                    "nothing after this point can be read")


def jsonl_rows(shard: SourceShard, piece: FileSlice) -> Iterator[Row]:
    with storage.open_binary(piece.url) as raw:
        if piece.byte_offset is not None:
            raw.seek(piece.byte_offset)
            stream, record = raw, piece.start
        else:
            stream, record = decompressed(raw, piece.url), 0
        for line in _nonblank_lines(stream):
            if record >= piece.stop:
                break
            if record >= piece.start:
                yield _jsonl_row(shard, piece.url, record, line)
            record += 1


# A JSON escape of a UTF-16 surrogate: json.loads lets a lone one through, Arrow cannot store it.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
_MISSING = object()


def _jsonl_row(shard: SourceShard, url: str, record: int, line: _Line) -> Row:
    fallback_id = default_id(shard, url, record)

    def bad(problem: str, doc_id: str = fallback_id) -> Row:
        return Row(record, url, doc_id, unreadable_text(line.data), problem=problem)

    if line.error:
        return bad(line.error)
    try:
        text = line.data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as error:
        return bad(f"invalid UTF-8 at byte {error.start} of the line")
    try:
        value = json.loads(text)
    except (ValueError, RecursionError) as error:
        return bad(f"malformed JSON: {error}")
    if not isinstance(value, dict):
        return bad(f"the line is a JSON {_json_kind(value)}, not an object")
    if _SURROGATE_ESCAPE.search(line.data) and not _is_encodable(value):
        return bad("the record holds a lone UTF-16 surrogate escape (\\udXXX), which is not "
                   "valid Unicode")
    raw_id = value.pop(shard.id_field, None) if shard.id_field else None
    doc_id = fallback_id if raw_id is None else id_string(raw_id)
    body = value.pop(shard.text_field, _MISSING)
    if body is _MISSING:
        fields = ", ".join(list(value)[:10]) or "none"
        return bad(f"no {shard.text_field!r} field (fields: {fields})", doc_id)
    if not isinstance(body, str):
        return bad(f"field {shard.text_field!r} is a JSON {_json_kind(body)}, not a string", doc_id)
    return Row(record, url, doc_id, body, value)


def _json_kind(value: Any) -> str:
    kinds = {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}
    return kinds.get(type(value), "number")


def _is_encodable(value: Any) -> bool:
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False


def id_string(value: Any) -> str:
    """An id value as a string: strings as they are, anything else as its JSON text."""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
