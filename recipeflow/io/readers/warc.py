"""WARC (``.warc``, ``.warc.gz``): ``response`` records holding HTML, decoded to text; a
broken record becomes an unreadable row and reading goes on at the next one."""


import gzip
import re
from dataclasses import dataclass
from typing import IO, Iterator

from resiliparse.parse.encoding import bytes_to_str, detect_encoding
from warcio.archiveiterator import ArchiveIterator
from warcio.limitreader import LimitReader
from warcio.recordloader import ArcWarcRecord, ArcWarcRecordLoader

from recipeflow.io import storage
from recipeflow.io.readers.formats import CHUNK_BYTES, HTML_TYPES, compression_of
from recipeflow.io.readers.records import Row, default_id
from recipeflow.io.readers.shards import FileSlice, SourceShard

def count_warc(stream: IO[bytes], url: str, shard_size: int) -> tuple[int, list[int]]:
    records, offsets, seekable = 0, [], True
    for entry in _warc_entries(stream, url, start_offset=None):
        seekable = seekable and entry.seekable
        if records % shard_size == 0:
            offsets.append(entry.offset)
        records += 1
    return records, (offsets if seekable else [])


@dataclass
class _WarcEntry:
    """A counted WARC record: an HTML response, or a record that failed to parse."""

    offset: int  # of the record in the raw file (meaningful only when ``seekable``)
    seekable: bool
    record: ArcWarcRecord | None = None
    body: bytes = b""
    error: str | None = None


def warc_rows(shard: SourceShard, piece: FileSlice) -> Iterator[Row]:
    with storage.open_binary(piece.url) as raw:
        entries = _warc_entries(raw, piece.url, piece.byte_offset)
        record = piece.start if piece.byte_offset is not None else 0
        for entry in entries:
            if record >= piece.stop:
                break
            if record >= piece.start:
                yield _warc_row(shard, piece.url, record, entry)
            record += 1


def _warc_row(shard: SourceShard, url: str, record: int, entry: _WarcEntry) -> Row:
    headers = entry.record.rec_headers if entry.record else None
    record_id = headers.get_header("WARC-Record-ID") if headers else None
    doc_id = _warc_id(record_id) if record_id else default_id(shard, url, record)
    if entry.error:
        text = headers.to_str() if headers else ""
        return Row(record, url, doc_id, text, problem=entry.error)
    content_type = entry.record.http_headers.get_header("Content-Type") or ""
    metadata = {
        "url": headers.get_header("WARC-Target-URI"),
        "warc_date": headers.get_header("WARC-Date"),
        "content_type": content_type,
    }
    return Row(record, url, doc_id, _decode_html(entry.body, content_type), metadata)


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
    return content_type.split(";")[0].strip().lower() in HTML_TYPES


class _NotChunked(Exception):
    """The .warc.gz is one gzip stream rather than one gzip member per record."""


def _warc_entries(raw: IO[bytes], url: str, start_offset: int | None) -> Iterator[_WarcEntry]:
    """The counted records of a WARC file, from ``start_offset`` (a record's offset) or from the
    beginning. Records are HTML responses; a record that fails to parse is yielded with its
    error and reading goes on at the next record that parses (next gzip member or ``WARC/``
    line), so one bad record costs one unreadable row, not the rest of the file.
    """
    gzipped = compression_of(url) == "gzip"
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
    archive.loader.__class__ = _CheckedRecordLoader  # same loader and settings, one check more
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


class _CheckedRecordLoader(ArcWarcRecordLoader):
    """warcio's loader, refusing a record it would trip over with a Python error instead of a
    reason: a response, request or revisit without a ``WARC-Target-URI`` header ends in
    "'NoneType' object has no attribute 'startswith'" inside warcio."""

    def load_http_headers(self, rec_type, uri, stream, length):  # type: ignore[no-untyped-def]
        if uri is None and length != 0 and rec_type in self.HTTP_RECORDS:
            raise ValueError(f"a {rec_type} record without a WARC-Target-URI header")
        return super().load_http_headers(rec_type, uri, stream, length)


def _check_complete(record: ArcWarcRecord) -> None:
    """Read the rest of the record's block; raise if the file ends before it does."""
    length = record.rec_headers.get_header("Content-Length") or ""
    if not record.rec_type or not length.strip().isdigit() or \
            not isinstance(record.raw_stream, LimitReader):
        raise ValueError("the record has no WARC-Type or no valid Content-Length header")
    while record.raw_stream.read(CHUNK_BYTES):
        pass
    missing = record.raw_stream.limit
    if missing:
        raise ValueError(f"the record is truncated: {missing} bytes of its block are missing")


def _has_unparsed_tail(stream: IO[bytes], offset: int) -> bool:
    """Whether anything but whitespace follows ``offset``, where the last record ended."""
    stream.seek(offset)
    while chunk := stream.read(CHUNK_BYTES):
        if not chunk.isspace():
            return True
    return False


def _warc_problem(offset: int, error: Exception) -> str:
    message = " ".join(str(error).split())[:500] or type(error).__name__
    if isinstance(error, (AttributeError, TypeError, KeyError, IndexError)):
        # A Python error inside warcio: the record's headers are not what a WARC record needs.
        message = f"malformed WARC or HTTP headers that the parser cannot handle ({message})"
    return f"WARC record at byte {offset} could not be read: {message}"


def _find_marker(raw: IO[bytes], start: int, marker: bytes) -> int | None:
    """The first position at or after ``start`` where a record may begin, or None at the end."""
    raw.seek(start)
    carry = b""
    base = start
    while True:
        chunk = raw.read(CHUNK_BYTES)
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
