"""Scanning a file once: its sha256 and its record count (and, where the format can seek,
the byte offset of every shard's first record), in one pass over its bytes."""


import hashlib
import io
from typing import IO, Any

import fsspec
import fsspec.compression

from recipeflow.io.readers.formats import CHUNK_BYTES, check_format
from recipeflow.io.readers.jsonl import count_jsonl
from recipeflow.io.readers.parquet import count_parquet
from recipeflow.io.readers.shards import FileScan
from recipeflow.io.readers.text import count_text
from recipeflow.io.readers.warc import count_warc

def scan_file(url: str, fmt: str, shard_size: int) -> FileScan:
    """Checksum a file's raw bytes and count its records, in one pass.

    Records: JSONL non-blank lines; Parquet rows; WARC ``response`` records with an HTML
    content type (plus any record that fails to parse); text: 1 (0 for an empty file).
    """
    check_format(fmt)
    if shard_size < 1:
        raise ValueError(f"shard_size must be at least 1, got {shard_size}")
    with fsspec.open(url, "rb") as raw:
        hashed = _HashingFile(raw)
        stream = io.BufferedReader(hashed, CHUNK_BYTES)
        if fmt == "jsonl":
            records, offsets = count_jsonl(stream, url, shard_size)
        elif fmt == "warc":
            records, offsets = count_warc(stream, url, shard_size)
        elif fmt == "text":
            records, offsets = count_text(stream, url), ()
        else:
            records, offsets = count_parquet(url), ()
        sha256 = hashed.finish()
    return FileScan(url, fmt, hashed.size, sha256, records, tuple(offsets))


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
            want = CHUNK_BYTES if target is None else min(CHUNK_BYTES, target - self._hashed)
            data = self._raw.read(want)
            if not data:
                break
            self._sha.update(data)
            self._hashed += len(data)
        self._raw.seek(self._position)


# --------------------------------------------------------------------------------------------
# Shards
# --------------------------------------------------------------------------------------------
