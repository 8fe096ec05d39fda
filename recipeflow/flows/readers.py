"""Reading inputs: list the files, scan each once, cut shards, read a shard as Arrow batches.

Formats: JSONL (plain, ``.gz``, ``.zst``), Parquet, WARC (``response`` records holding HTML)
and plain text (one document per file). All I/O goes through fsspec, so a local path and an
``s3://`` URL read alike. Plain Python: nothing here imports Prefect.

A record that cannot be read (bad JSON, invalid UTF-8, no text field, a broken WARC record, a
corrupt compressed stream) never stops a run: it becomes a row of the ``unreadable`` table, with
the lineage columns and the reason, so it is counted and can be inspected.

Scanning and reading share the code that finds records, so the record numbers that
:func:`scan_file` counts and :func:`cut_shards` slices are exactly those :func:`read_shard`
yields.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import posixpath
import re
import zlib
from dataclasses import dataclass, field
from typing import IO, Any, Iterator, Sequence

import fsspec
import fsspec.compression
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import zstandard
from fsspec.core import url_to_fs
from fsspec.implementations.local import LocalFileSystem
from fsspec.utils import infer_compression
from resiliparse.parse.encoding import bytes_to_str, detect_encoding
from warcio.archiveiterator import ArchiveIterator
from warcio.limitreader import LimitReader
from warcio.recordloader import ArcWarcRecord

from recipeflow.operators import document as doc
from recipeflow.operators.base import Rejection

FORMATS = ("jsonl", "parquet", "warc", "text")

# The operator name that unreadable records carry in the rejection columns.
READ_OPERATOR = "read"
# Unreadable rows keep at most this much of the raw record, so one huge bad line stays cheap.
MAX_UNREADABLE_TEXT_BYTES = 1 << 20
# A batch ends early once its text reaches this size, so a few huge documents cannot make a
# batch too big for memory (or for one Arrow string array).
MAX_BATCH_TEXT_BYTES = 64 << 20
_CHUNK = 1 << 20

_RESERVED_COLUMNS = frozenset((doc.ID, doc.TEXT, *doc.LINEAGE_COLUMNS))
_HTML_TYPES = frozenset(("text/html", "application/xhtml+xml"))
_GLOB_CHARS = ("*", "?", "[")


# --------------------------------------------------------------------------------------------
# Formats
# --------------------------------------------------------------------------------------------

_FORMAT_BY_EXTENSION = {
    ".jsonl": "jsonl",
    ".json": "jsonl",
    ".ndjson": "jsonl",
    ".parquet": "parquet",
    ".warc": "warc",
    ".txt": "text",
    ".md": "text",
}
# Compressions each format may come in (WARC handles gzip itself: one member per record).
_COMPRESSIONS_BY_FORMAT = {
    "jsonl": (".gz", ".zst"),
    "text": (".gz", ".zst"),
    "warc": (".gz",),
    "parquet": (),
}


def infer_format(url: str) -> str:
    """The input format named by a file's extension: ``jsonl``, ``parquet``, ``warc`` or ``text``.

    ``.jsonl``, ``.json``, ``.ndjson`` (optionally ``.gz``/``.zst``) are JSONL; ``.parquet``;
    ``.warc``/``.warc.gz``; ``.txt``/``.md`` (optionally ``.gz``/``.zst``) are text.
    """
    name = posixpath.basename(url.rstrip("/")).lower()
    stem, compression = _split_compression(name)
    fmt = _FORMAT_BY_EXTENSION.get(posixpath.splitext(stem)[1])
    if fmt is not None and compression and compression not in _COMPRESSIONS_BY_FORMAT[fmt]:
        allowed = ", ".join(_COMPRESSIONS_BY_FORMAT[fmt]) or "none"
        raise ValueError(
            f"input file {url!r}: {fmt} files cannot be read with {compression} compression "
            f"(supported: {allowed}); decompress it or recompress it"
        )
    if fmt is None:
        raise ValueError(
            f"cannot tell the format of input file {url!r} from its extension; set `format:` "
            f"on the input in the recipe (one of: {', '.join(FORMATS)})"
        )
    return fmt


def _split_compression(name: str) -> tuple[str, str]:
    """``a.jsonl.gz`` -> (``a.jsonl``, ``.gz``); no compression suffix -> (name, "")."""
    for suffix in (".gz", ".zst"):
        if name.endswith(suffix):
            return name[: -len(suffix)], suffix
    return name, ""


# --------------------------------------------------------------------------------------------
# Listing inputs
# --------------------------------------------------------------------------------------------


class InputNotFound(ValueError):
    """An input path or glob matched no file."""


def expand_input(path: str) -> list[str]:
    """The files an input path names, sorted: a file, a directory (recursively) or a glob.

    Local paths come back absolute; other filesystems keep their protocol (``s3://...``).
    Inside directories and globs, files and folders whose names start with ``.`` or ``_``
    (``.DS_Store``, ``_SUCCESS``, ``.crc`` files) are skipped, as Arrow datasets do; a file
    named explicitly is always kept.
    """
    fs, stripped = url_to_fs(path)
    if not _has_glob(stripped) and fs.isfile(stripped):
        return [_full_url(fs, stripped)]
    base = _root_path(fs, stripped)
    files: set[str] = set()
    for match, is_dir in _matches(fs, stripped):
        files.update(fs.find(match) if is_dir else [match])
    kept = sorted(_full_url(fs, f) for f in files if not _is_hidden(f, base))
    if not kept:
        raise InputNotFound(
            f"nothing matched the input path {path!r} (no file there, or only hidden files "
            f"starting with '.' or '_'); check the input's `path:` in the recipe"
        )
    return kept


def _matches(fs: fsspec.AbstractFileSystem, stripped: str) -> list[tuple[str, bool]]:
    """(path, is a directory) for each glob match, or the directory itself; nothing when the
    path does not exist."""
    if _has_glob(stripped):
        found = fs.glob(stripped, detail=True)
        return sorted((path, info.get("type") == "directory") for path, info in found.items())
    return [(stripped, True)] if fs.isdir(stripped) else []


def input_root(path: str) -> str:
    """The directory an input path is relative to: the part of a glob before its first
    wildcard, a directory itself, or a file's parent. Ids derive relative paths from it."""
    fs, stripped = url_to_fs(path)
    return _full_url(fs, _root_path(fs, stripped))


def _root_path(fs: fsspec.AbstractFileSystem, stripped: str) -> str:
    if _has_glob(stripped):
        parts = stripped.split("/")
        first_glob = next(i for i, part in enumerate(parts) if _has_glob(part))
        return "/".join(parts[:first_glob]) or "/"
    if fs.isdir(stripped):
        return stripped.rstrip("/") or "/"
    return fs._parent(stripped)


def _has_glob(path: str) -> bool:
    return any(char in path for char in _GLOB_CHARS)


def _is_hidden(path: str, base: str) -> bool:
    relative = path[len(base) :].lstrip("/") if path.startswith(base) else posixpath.basename(path)
    return any(part.startswith((".", "_")) for part in relative.split("/"))


def _full_url(fs: fsspec.AbstractFileSystem, path: str) -> str:
    """Local paths stay plain absolute paths; other filesystems keep their protocol."""
    return path if isinstance(fs, LocalFileSystem) else fs.unstrip_protocol(path)


def relative_path(url: str, root: str) -> str:
    """``url`` relative to ``root`` (the file name when it is not under root)."""
    prefix = root.rstrip("/") + "/"
    return url[len(prefix) :] if url.startswith(prefix) else posixpath.basename(url)


# --------------------------------------------------------------------------------------------
# Scanning
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FileScan:
    """What one pass over a file found: its checksum and where its records are.

    ``offsets[k]`` is the byte offset (in the raw file) of record ``k * shard_size`` when the
    file can be entered at a record (uncompressed JSONL, WARC with one gzip member per record
    or uncompressed); empty when it cannot, and a slice is then read by skipping records.
    """

    url: str
    format: str
    size: int
    sha256: str
    records: int
    offsets: tuple[int, ...]


def scan_file(url: str, fmt: str, shard_size: int) -> FileScan:
    """Checksum a file's raw bytes and count its records, in one pass.

    Records: JSONL non-blank lines; Parquet rows; WARC ``response`` records with an HTML
    content type (plus any record that fails to parse); text: 1 (0 for an empty file).
    """
    _check_format(fmt)
    if shard_size < 1:
        raise ValueError(f"shard_size must be at least 1, got {shard_size}")
    with fsspec.open(url, "rb") as raw:
        hashed = _HashingFile(raw)
        stream = io.BufferedReader(hashed, _CHUNK)
        if fmt == "jsonl":
            records, offsets = _count_jsonl(stream, url, shard_size)
        elif fmt == "warc":
            records, offsets = _count_warc(stream, url, shard_size)
        elif fmt == "text":
            records, offsets = _count_text(stream, url), ()
        else:
            records, offsets = _count_parquet(url), ()
        sha256 = hashed.finish()
    return FileScan(url, fmt, hashed.size, sha256, records, tuple(offsets))


def _check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise ValueError(f"unknown input format {fmt!r}; expected one of: {', '.join(FORMATS)}")


def _count_jsonl(stream: IO[bytes], url: str, shard_size: int) -> tuple[int, list[int]]:
    seekable = _compression_of(url) is None
    records, offsets = 0, []
    for line in _nonblank_lines(_decompressed(stream, url)):
        if seekable and records % shard_size == 0:
            offsets.append(line.offset)
        records += 1
    return records, offsets


def _count_warc(stream: IO[bytes], url: str, shard_size: int) -> tuple[int, list[int]]:
    records, offsets, seekable = 0, [], True
    for entry in _warc_entries(stream, url, start_offset=None):
        seekable = seekable and entry.seekable
        if records % shard_size == 0:
            offsets.append(entry.offset)
        records += 1
    return records, (offsets if seekable else [])


def _count_text(stream: IO[bytes], url: str) -> int:
    try:
        return 1 if _decompressed(stream, url).read(1) else 0
    except _DECOMPRESSION_ERRORS:
        return 1  # read_shard reports it as unreadable


def _count_parquet(url: str) -> int:
    try:
        with fsspec.open(url, "rb") as f:
            return pq.ParquetFile(f).metadata.num_rows
    except (pa.ArrowException, OSError):
        return 1  # not a Parquet file: read_shard reports one unreadable record


class _HashingFile(io.RawIOBase):
    """A read-only view of a file that hashes every byte once, in order, whatever the reader
    does (seek back, skip ahead), so a scan checksums the raw file in the same pass."""

    def __init__(self, raw: IO[bytes]):
        self._raw = raw
        self._position = 0
        self._hashed = 0
        self._sha = hashlib.sha256()

    @property
    def size(self) -> int:
        return self._hashed

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_CUR:
            offset += self._position
        elif whence == io.SEEK_END:
            self._hash_until(None)
            offset += self._hashed
        if offset > self._hashed:
            self._hash_until(offset)
        self._raw.seek(offset)
        self._position = offset
        return offset

    def readinto(self, buffer: Any) -> int:
        data = self._raw.read(len(buffer))
        buffer[: len(data)] = data
        end = self._position + len(data)
        if self._position <= self._hashed < end:
            self._sha.update(data[self._hashed - self._position :])
            self._hashed = end
        self._position = end
        return len(data)

    def finish(self) -> str:
        """Hash whatever the reader did not read; return the file's sha256."""
        self._hash_until(None)
        return self._sha.hexdigest()

    def _hash_until(self, target: int | None) -> None:
        self._raw.seek(self._hashed)
        while target is None or self._hashed < target:
            want = _CHUNK if target is None else min(_CHUNK, target - self._hashed)
            data = self._raw.read(want)
            if not data:
                break
            self._sha.update(data)
            self._hashed += len(data)
        self._raw.seek(self._position)


# --------------------------------------------------------------------------------------------
# Shards
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FileSlice:
    """Records ``[start, stop)`` of one file; ``byte_offset`` is where record ``start`` begins
    in the raw file, or None when the file must be read from its beginning."""

    url: str
    start: int
    stop: int
    byte_offset: int | None


@dataclass(frozen=True)
class SourceShard:
    """The unit of parallel reading: slices of one input's files, read in order."""

    input_name: str
    format: str
    text_field: str
    id_field: str
    root: str  # the non-glob base of the input path; ids use paths relative to it
    slices: tuple[FileSlice, ...]

    @property
    def key(self) -> str:
        """A short stable name: ``input/relpath:start-stop``, or for a text shard of several
        files ``input/first-relpath:+N`` (N files in all)."""
        first = self.slices[0]
        path = f"{self.input_name}/{relative_path(first.url, self.root)}"
        if self.format == "text":
            return f"{path}:+{len(self.slices)}"
        return f"{path}:{first.start}-{first.stop}"

    @property
    def records(self) -> int:
        """How many records the shard's slices cover."""
        return sum(s.stop - s.start for s in self.slices)


def cut_shards(
    input_name: str,
    fmt: str,
    text_field: str,
    id_field: str,
    root: str,
    scans: list[FileScan],
    shard_size: int,
) -> list[SourceShard]:
    """Cut scanned files into shards of at most ``shard_size`` records, in file order.

    One shard per slice of a file; for ``text`` (one document per file) consecutive files are
    grouped, up to ``shard_size`` files a shard. Empty files give no shard. ``shard_size`` must
    be the one the scans were made with (their offsets depend on it).
    """
    _check_format(fmt)
    if shard_size < 1:
        raise ValueError(f"shard_size must be at least 1, got {shard_size}")

    def shard(slices: Sequence[FileSlice]) -> SourceShard:
        return SourceShard(input_name, fmt, text_field, id_field, root, tuple(slices))

    if fmt == "text":
        files = [FileSlice(s.url, 0, 1, None) for s in scans if s.records > 0]
        return [shard(files[i : i + shard_size]) for i in range(0, len(files), shard_size)]
    return [shard([piece]) for scan in scans for piece in _file_slices(scan, shard_size)]


def _file_slices(scan: FileScan, shard_size: int) -> list[FileSlice]:
    starts = range(0, scan.records, shard_size)
    if scan.offsets and len(scan.offsets) != len(starts):
        raise ValueError(
            f"the scan of {scan.url} has {len(scan.offsets)} offsets but {len(starts)} slices "
            f"of {shard_size} records: it was made with another shard_size; scan it again"
        )
    return [
        FileSlice(
            scan.url,
            start,
            min(start + shard_size, scan.records),
            scan.offsets[k] if scan.offsets else None,
        )
        for k, start in enumerate(starts)
    ]


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------


@dataclass
class _Row:
    """One record as read: a document, or (``problem`` set) an unreadable record."""

    record: int
    url: str
    doc_id: str
    text: str
    metadata: dict[str, Any] = field(default_factory=dict)
    problem: str | None = None


def read_shard(
    shard: SourceShard, batch_size: int = 1000
) -> Iterator[tuple[pa.Table, pa.Table | None]]:
    """Read a shard: ``(documents, unreadable)`` per batch of up to ``batch_size`` records, in
    record order. ``unreadable`` is None when the batch had no bad record.

    Documents: ``id``, ``text``, the record's other fields, then the lineage columns. Fields
    named like ``id``, ``text`` or a lineage column (other than the configured id/text
    fields) are dropped: the reader's columns win.
    """
    _check_format(shard.format)
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    if shard.format == "parquet":
        for piece in shard.slices:
            yield from _parquet_batches(shard, piece, batch_size)
        return
    yield from _batches(_shard_rows(shard), shard.input_name, batch_size)


def _shard_rows(shard: SourceShard) -> Iterator[_Row]:
    readers = {"jsonl": _jsonl_rows, "warc": _warc_rows, "text": _text_rows}
    for piece in shard.slices:
        yield from readers[shard.format](shard, piece)


def _batches(
    rows: Iterator[_Row], input_name: str, batch_size: int
) -> Iterator[tuple[pa.Table, pa.Table | None]]:
    batch: list[_Row] = []
    text_bytes = 0
    for row in rows:
        batch.append(row)
        text_bytes += len(row.text)
        if len(batch) >= batch_size or text_bytes >= MAX_BATCH_TEXT_BYTES:
            yield _tables(batch, input_name)
            batch, text_bytes = [], 0
    if batch:
        yield _tables(batch, input_name)


def _default_id(shard: SourceShard, url: str, record: int | None) -> str:
    path = f"{shard.input_name}/{relative_path(url, shard.root)}"
    return path if record is None else f"{path}:{record}"


def _unreadable_text(raw: bytes) -> str:
    return raw[:MAX_UNREADABLE_TEXT_BYTES].rstrip(b"\r\n").decode("utf-8", errors="replace")


# --- JSONL ----------------------------------------------------------------------------------


@dataclass
class _Line:
    offset: int  # in the (decompressed) stream, relative to where reading started
    data: bytes
    error: str | None = None  # the stream broke here: nothing after it can be read


_DECOMPRESSION_ERRORS = (EOFError, zlib.error, gzip.BadGzipFile, zstandard.ZstdError)


def _nonblank_lines(stream: IO[bytes], offset: int = 0) -> Iterator[_Line]:
    """The non-blank lines of a stream with their offsets. A corrupt compressed stream ends
    with one error line, so the damage is counted as one record rather than lost."""
    try:
        for line in stream:
            if line and not line.isspace():
                yield _Line(offset, line)
            offset += len(line)
    except _DECOMPRESSION_ERRORS as error:
        yield _Line(offset, b"", f"the compressed file is corrupt from here on ({error}); "
                    "nothing after this point can be read")


def _jsonl_rows(shard: SourceShard, piece: FileSlice) -> Iterator[_Row]:
    with fsspec.open(piece.url, "rb") as raw:
        if piece.byte_offset is not None:
            raw.seek(piece.byte_offset)
            stream, record = raw, piece.start
        else:
            stream, record = _decompressed(raw, piece.url), 0
        for line in _nonblank_lines(stream):
            if record >= piece.stop:
                break
            if record >= piece.start:
                yield _jsonl_row(shard, piece.url, record, line)
            record += 1


# A JSON escape of a UTF-16 surrogate: json.loads lets a lone one through, Arrow cannot store it.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
_MISSING = object()


def _jsonl_row(shard: SourceShard, url: str, record: int, line: _Line) -> _Row:
    default_id = _default_id(shard, url, record)

    def bad(problem: str, doc_id: str = default_id) -> _Row:
        return _Row(record, url, doc_id, _unreadable_text(line.data), problem=problem)

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
    doc_id = default_id if raw_id is None else _id_string(raw_id)
    body = value.pop(shard.text_field, _MISSING)
    if body is _MISSING:
        fields = ", ".join(list(value)[:10]) or "none"
        return bad(f"no {shard.text_field!r} field (fields: {fields})", doc_id)
    if not isinstance(body, str):
        return bad(f"field {shard.text_field!r} is a JSON {_json_kind(body)}, not a string", doc_id)
    return _Row(record, url, doc_id, body, value)


def _json_kind(value: Any) -> str:
    kinds = {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}
    return kinds.get(type(value), "number")


def _is_encodable(value: Any) -> bool:
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False


def _id_string(value: Any) -> str:
    """An id value as a string: strings as they are, anything else as its JSON text."""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


# --- text -----------------------------------------------------------------------------------


def _text_rows(shard: SourceShard, piece: FileSlice) -> Iterator[_Row]:
    doc_id = _default_id(shard, piece.url, None)
    with fsspec.open(piece.url, "rb") as raw:
        try:
            data = _decompressed(raw, piece.url).read()
        except _DECOMPRESSION_ERRORS as error:
            problem = f"the compressed file is corrupt ({error})"
            yield _Row(0, piece.url, doc_id, "", problem=problem)
            return
    if not data:
        return
    try:
        text = data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as error:
        problem = f"invalid UTF-8 at byte {error.start} of the file"
        yield _Row(0, piece.url, doc_id, _unreadable_text(data), problem=problem)
        return
    yield _Row(0, piece.url, doc_id, text)


# --- WARC -----------------------------------------------------------------------------------


@dataclass
class _WarcEntry:
    """A counted WARC record: an HTML response, or a record that failed to parse."""

    offset: int  # of the record in the raw file (meaningful only when ``seekable``)
    seekable: bool
    record: ArcWarcRecord | None = None
    body: bytes = b""
    error: str | None = None


def _warc_rows(shard: SourceShard, piece: FileSlice) -> Iterator[_Row]:
    with fsspec.open(piece.url, "rb") as raw:
        entries = _warc_entries(raw, piece.url, piece.byte_offset)
        record = piece.start if piece.byte_offset is not None else 0
        for entry in entries:
            if record >= piece.stop:
                break
            if record >= piece.start:
                yield _warc_row(shard, piece.url, record, entry)
            record += 1


def _warc_row(shard: SourceShard, url: str, record: int, entry: _WarcEntry) -> _Row:
    headers = entry.record.rec_headers if entry.record else None
    record_id = headers.get_header("WARC-Record-ID") if headers else None
    doc_id = _warc_id(record_id) if record_id else _default_id(shard, url, record)
    if entry.error:
        text = headers.to_str() if headers else ""
        return _Row(record, url, doc_id, text, problem=entry.error)
    content_type = entry.record.http_headers.get_header("Content-Type") or ""
    metadata = {
        "url": headers.get_header("WARC-Target-URI"),
        "warc_date": headers.get_header("WARC-Date"),
        "content_type": content_type,
    }
    return _Row(record, url, doc_id, _decode_html(entry.body, content_type), metadata)


def _warc_id(record_id: str) -> str:
    return record_id.strip().removeprefix("<").removesuffix(">").removeprefix("urn:uuid:")


def _decode_html(body: bytes, content_type: str) -> str:
    """Decode with the charset the HTTP header declares, else the detected one."""
    charset = _charset(content_type)
    if charset:
        try:
            return bytes_to_str(body, charset, errors="replace")
        except (LookupError, UnicodeError):
            pass  # an unknown or unusable charset label: detect instead
    return bytes_to_str(body, detect_encoding(body, from_html_meta=True), errors="replace")


def _charset(content_type: str) -> str | None:
    match = re.search(r"charset\s*=\s*[\"']?([\w.:-]+)", content_type, re.IGNORECASE)
    return match.group(1) if match else None


def _is_html_response(record: ArcWarcRecord) -> bool:
    if record.rec_type != "response" or record.http_headers is None:
        return False
    content_type = record.http_headers.get_header("Content-Type") or ""
    return content_type.split(";")[0].strip().lower() in _HTML_TYPES


class _NotChunked(Exception):
    """The .warc.gz is one gzip stream rather than one gzip member per record."""


def _warc_entries(raw: IO[bytes], url: str, start_offset: int | None) -> Iterator[_WarcEntry]:
    """The counted records of a WARC file, from ``start_offset`` (a record's offset) or from the
    beginning. Records are HTML responses; a record that fails to parse is yielded with its
    error and reading goes on at the next record that parses (next gzip member or ``WARC/``
    line), so one bad record costs one unreadable row, not the rest of the file.
    """
    gzipped = _compression_of(url) == "gzip"
    marker = b"\x1f\x8b\x08" if gzipped else b"\nWARC/"
    seen = 0
    try:
        for entry in _warc_entries_seekable(raw, start_offset or 0, marker):
            seen += 1
            yield entry
    except _NotChunked:
        if start_offset:
            raise ValueError(f"{url} is not a WARC with one gzip member per record; "
                             "it cannot be read from a byte offset: scan it again") from None
        # One gzip stream: read it through, skipping the records already yielded.
        raw.seek(0)
        for index, entry in enumerate(_warc_entries_stream(gzip.GzipFile(fileobj=raw, mode="rb"))):
            if index >= seen:
                yield entry


def _warc_entries_seekable(raw: IO[bytes], position: int, marker: bytes) -> Iterator[_WarcEntry]:
    resyncing = False  # at a guessed record start: a failure there is not a record
    while position is not None:
        raw.seek(position)
        failed_at = None
        for entry in _warc_entries_from(raw, seekable=True):
            if entry.error is not None:
                failed_at = entry.offset
                if not (resyncing and entry.offset == position):
                    yield entry
                break
            resyncing = False
            yield entry
        if failed_at is None:
            return
        position = _find_marker(raw, failed_at + 1, marker)
        resyncing = True


def _warc_entries_stream(stream: IO[bytes]) -> Iterator[_WarcEntry]:
    for entry in _warc_entries_from(stream, seekable=False):
        yield entry
        if entry.error is not None:
            return  # no way to find the next record in a single compressed stream


def _warc_entries_from(stream: IO[bytes], seekable: bool) -> Iterator[_WarcEntry]:
    """Counted records from the stream's current position until the end or the first failure
    (yielded as an entry with ``error``)."""
    archive = ArchiveIterator(stream)
    records = iter(archive)
    while True:
        offset = archive.offset
        record = None
        try:
            record = next(records)
            html = _is_html_response(record)
            body = record.content_stream().read() if html else b""
            _check_complete(record)  # a cut-off record of any type is reported, never skipped
            archive.read_to_end()
            if not html:
                continue
        except StopIteration:
            if seekable and _has_unparsed_tail(stream, archive.offset):
                # warcio stops quietly at a record cut short (a truncated download).
                yield _WarcEntry(archive.offset, seekable, error=_warc_problem(
                    archive.offset, ValueError("the file ends with a truncated record")))
            return
        except Exception as error:  # warcio, zlib and HTTP decoding raise many kinds
            if "non-chunked gzip" in str(error):
                raise _NotChunked() from error
            yield _WarcEntry(offset, seekable, record, error=_warc_problem(offset, error))
            return
        yield _WarcEntry(offset, seekable, record, body)


def _check_complete(record: ArcWarcRecord) -> None:
    """Read the rest of the record's block; raise if the file ends before it does."""
    length = record.rec_headers.get_header("Content-Length") or ""
    if not record.rec_type or not length.strip().isdigit() or \
            not isinstance(record.raw_stream, LimitReader):
        raise ValueError("the record has no WARC-Type or no valid Content-Length header")
    while record.raw_stream.read(_CHUNK):
        pass
    missing = record.raw_stream.limit
    if missing:
        raise ValueError(f"the record is truncated: {missing} bytes of its block are missing")


def _has_unparsed_tail(stream: IO[bytes], offset: int) -> bool:
    """Whether anything but whitespace follows ``offset``, where the last record ended."""
    stream.seek(offset)
    while chunk := stream.read(_CHUNK):
        if not chunk.isspace():
            return True
    return False


def _warc_problem(offset: int, error: Exception) -> str:
    message = " ".join(str(error).split())[:500] or type(error).__name__
    return f"WARC record at byte {offset} could not be read: {message}"


def _find_marker(raw: IO[bytes], start: int, marker: bytes) -> int | None:
    """The first position at or after ``start`` where a record may begin, or None at the end."""
    raw.seek(start)
    carry = b""
    base = start
    while True:
        chunk = raw.read(_CHUNK)
        if not chunk:
            return None
        data = carry + chunk
        found = data.find(marker)
        if found >= 0:
            skip = 1 if marker.startswith(b"\n") else 0  # "\nWARC/": the record starts after \n
            return base + found + skip
        keep = len(marker) - 1
        carry = data[-keep:]
        base += len(data) - len(carry)


# --- Parquet --------------------------------------------------------------------------------


def _parquet_batches(
    shard: SourceShard, piece: FileSlice, batch_size: int
) -> Iterator[tuple[pa.Table, pa.Table | None]]:
    with fsspec.open(piece.url, "rb") as f:
        try:
            parquet = pq.ParquetFile(f)
        except (pa.ArrowException, OSError) as error:
            if piece.start == 0:
                row = _Row(0, piece.url, _default_id(shard, piece.url, 0), "",
                           problem=f"not a readable Parquet file: {error}")
                yield _tables([row], shard.input_name)
            return
        for first_record, batch in _parquet_row_batches(parquet, piece, batch_size):
            yield _parquet_tables(shard, piece.url, first_record, pa.Table.from_batches([batch]))


def _parquet_row_batches(
    parquet: pq.ParquetFile, piece: FileSlice, batch_size: int
) -> Iterator[tuple[int, pa.RecordBatch]]:
    """Rows ``[start, stop)`` in batches, reading only the row groups that hold them."""
    groups, first_row, row = [], None, 0
    for index in range(parquet.metadata.num_row_groups):
        rows = parquet.metadata.row_group(index).num_rows
        if row < piece.stop and row + rows > piece.start:
            groups.append(index)
            first_row = row if first_row is None else first_row
        row += rows
    if not groups:
        return
    row = first_row
    for batch in parquet.iter_batches(batch_size=batch_size, row_groups=groups):
        lo, hi = max(piece.start - row, 0), min(piece.stop - row, len(batch))
        if lo < hi:
            yield row + lo, batch.slice(lo, hi - lo)
        row += len(batch)
        if row >= piece.stop:
            return


def _parquet_tables(
    shard: SourceShard, url: str, first_record: int, table: pa.Table
) -> tuple[pa.Table, pa.Table | None]:
    """Columnar: documents keep the file's own column types."""
    records = list(range(first_record, first_record + len(table)))
    texts, problems = _parquet_texts(table, shard.text_field)
    ids = _parquet_ids(shard, url, table, records)
    good = pc.invert(pc.is_valid(problems))
    metadata = {
        name: table.column(name)
        for name in table.column_names
        if name not in (shard.text_field, shard.id_field) and name not in _RESERVED_COLUMNS
    }
    columns = {doc.ID: ids, doc.TEXT: texts, **metadata}
    columns.update(_lineage_columns(shard.input_name, url, records))
    documents = pa.table(columns).filter(good)
    if len(documents) == len(table):
        return documents, None
    bad = [i for i, problem in enumerate(problems.to_pylist()) if problem is not None]
    rows = [
        _Row(records[i], url, ids[i].as_py(), _row_as_json(table, i), problem=problems[i].as_py())
        for i in bad
    ]
    return documents, _unreadable_table(rows, shard.input_name)


def _parquet_texts(table: pa.Table, text_field: str) -> tuple[pa.Array, pa.Array]:
    """The text column as strings, and per row the problem (null where the text is fine)."""
    n = len(table)
    if text_field not in table.column_names:
        fields = ", ".join(table.column_names[:10])
        problem = f"no {text_field!r} column (columns: {fields})"
        return pa.nulls(n, pa.string()), pa.array([problem] * n, pa.string())
    column = table.column(text_field).combine_chunks()
    if pa.types.is_dictionary(column.type):
        column = column.dictionary_decode()
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        texts = column.cast(pa.string())
    elif pa.types.is_binary(column.type) or pa.types.is_large_binary(column.type):
        texts = pa.array([_utf8_or_none(v) for v in column.to_pylist()], pa.string())
    else:
        problem = f"column {text_field!r} is {column.type}, not a string"
        return pa.nulls(n, pa.string()), pa.array([problem] * n, pa.string())
    problems = [None if t.is_valid else _null_text_problem(column[i], text_field)
                for i, t in enumerate(texts)] if texts.null_count else [None] * n
    return texts, pa.array(problems, pa.string())


def _utf8_or_none(value: bytes | None) -> str | None:
    try:
        return None if value is None else value.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _null_text_problem(value: pa.Scalar, text_field: str) -> str:
    return f"invalid UTF-8 in {text_field!r}" if value.is_valid else f"{text_field!r} is null"


def _parquet_ids(shard: SourceShard, url: str, table: pa.Table, records: list[int]) -> pa.Array:
    """The id column's values as strings; the derived id where it is missing or null."""
    derived = [_default_id(shard, url, record) for record in records]
    if not shard.id_field or shard.id_field not in table.column_names:
        return pa.array(derived, pa.string())
    column = table.column(shard.id_field).combine_chunks()
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type) or \
            pa.types.is_integer(column.type):
        given = column.cast(pa.string())
    else:
        given = pa.array([None if v is None else _id_string(v) for v in column.to_pylist()],
                         pa.string())
    return pc.if_else(pc.is_valid(given), given, pa.array(derived, pa.string()))


def _row_as_json(table: pa.Table, index: int) -> str:
    """An unreadable Parquet row, shown as JSON (capped like a raw line)."""
    row = table.slice(index, 1).to_pylist()[0]
    text = json.dumps(row, ensure_ascii=False, default=str)
    return _unreadable_text(text.encode("utf-8"))


# --------------------------------------------------------------------------------------------
# Building Arrow tables
# --------------------------------------------------------------------------------------------


def _tables(rows: list[_Row], input_name: str) -> tuple[pa.Table, pa.Table | None]:
    documents = _documents_table([r for r in rows if r.problem is None], input_name)
    bad = [r for r in rows if r.problem is not None]
    return documents, (_unreadable_table(bad, input_name) if bad else None)


def _documents_table(rows: list[_Row], input_name: str) -> pa.Table:
    columns: dict[str, pa.Array] = {
        doc.ID: pa.array([r.doc_id for r in rows], pa.string()),
        doc.TEXT: pa.array([r.text for r in rows], pa.string()),
    }
    for name in _metadata_names(rows):
        columns[name] = to_arrow_column([r.metadata.get(name) for r in rows])
    columns.update(_lineage_columns(input_name, [r.url for r in rows], [r.record for r in rows]))
    return pa.table(columns)


def _metadata_names(rows: list[_Row]) -> list[str]:
    """Metadata field names in order of first appearance; reserved names are left out."""
    names: dict[str, None] = {}
    for row in rows:
        names.update(dict.fromkeys(row.metadata))
    return [name for name in names if name not in _RESERVED_COLUMNS]


def _unreadable_table(rows: list[_Row], input_name: str) -> pa.Table:
    table = pa.table({
        doc.ID: pa.array([r.doc_id for r in rows], pa.string()),
        doc.TEXT: pa.array([r.text for r in rows], pa.string()),
        **_lineage_columns(input_name, [r.url for r in rows], [r.record for r in rows]),
    })
    rejections = [Rejection(doc.UNREADABLE, detail=r.problem) for r in rows]
    return doc.with_rejection(table, READ_OPERATOR, rejections)


def _lineage_columns(
    input_name: str, urls: str | list[str], records: list[int]
) -> dict[str, pa.Array]:
    n = len(records)
    files = [urls] * n if isinstance(urls, str) else urls
    return {
        doc.INPUT_NAME: pa.array([input_name] * n, pa.string()),
        doc.INPUT_FILE: pa.array(files, pa.string()),
        doc.INPUT_RECORD: pa.array(records, pa.int64()),
    }


def to_arrow_column(values: list[Any]) -> pa.Array:
    """An Arrow array of JSON-like values; when their types do not agree (or cannot be
    stored in Parquet) every value is JSON-encoded to a string instead, deterministically."""
    try:
        array = pa.array(values)
    except (pa.ArrowException, OverflowError, TypeError, ValueError):
        return json_strings(values)
    if _has_empty_struct(array.type):
        return json_strings(values)  # Parquet cannot store a struct without fields
    return array


def json_strings(values: Sequence[Any]) -> pa.Array:
    """Each value as compact JSON text (nulls stay null)."""
    return pa.array([None if v is None else _json_text(v) for v in values], pa.string())


def _json_text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=json_default)


def json_default(value: Any) -> Any:
    """Values JSON has no type for: dates and times as ISO text, bytes as hex, others as str."""
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray)):
        return value.hex()
    return str(value)


def _has_empty_struct(type_: pa.DataType) -> bool:
    if pa.types.is_struct(type_):
        return type_.num_fields == 0 or any(_has_empty_struct(f.type) for f in type_)
    if pa.types.is_list(type_) or pa.types.is_large_list(type_) or \
            pa.types.is_fixed_size_list(type_):
        return _has_empty_struct(type_.value_type)
    return False


# --------------------------------------------------------------------------------------------
# Compression
# --------------------------------------------------------------------------------------------


def _compression_of(url: str) -> str | None:
    return infer_compression(url)


def _decompressed(stream: IO[bytes], url: str) -> IO[bytes]:
    """The decompressed view of a file, by its extension (fsspec's ``compression="infer"``)."""
    compression = _compression_of(url)
    if compression is None:
        return stream
    if compression == "zstd":
        return io.BufferedReader(_ZstdReader(stream), _CHUNK)
    return fsspec.compression.compr[compression](stream, mode="rb")


class _ZstdReader(io.RawIOBase):
    """Decompresses every frame of a zstd stream, and raises when the stream is cut short.

    fsspec's zstd reader stops after the first frame (files often hold several), and
    zstandard's stream reader ends quietly at a truncated frame: both would lose records.
    """

    def __init__(self, raw: IO[bytes]):
        self._raw = raw
        self._context = zstandard.ZstdDecompressor()
        self._frame: Any = None  # the decompressor of the current frame
        self._pending = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending:
            chunk = self._raw.read(_CHUNK)
            if not chunk:
                if self._frame is not None and not self._frame.eof:
                    raise zstandard.ZstdError("the zstd stream ends inside a frame (truncated)")
                return 0
            self._pending = memoryview(self._decompress(chunk))
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n

    def _decompress(self, data: bytes) -> bytes:
        out = []
        while data:
            if self._frame is None or self._frame.eof:
                self._frame = self._context.decompressobj()
            out.append(self._frame.decompress(data))
            data = self._frame.unused_data if self._frame.eof else b""
        return b"".join(out)
