"""Input formats: which format a file is (by extension), which compressions each takes, and
reading a compressed stream (gzip, zstandard)."""


import gzip
import io
import posixpath
import zlib
from typing import IO, Any

import fsspec
import fsspec.compression
import zstandard
from fsspec.utils import infer_compression

from recipeflow.operators import document as doc

FORMATS = ("jsonl", "parquet", "warc", "text")

# The operator name that unreadable records carry in the rejection columns.
READ_OPERATOR = "read"
# Unreadable rows keep at most this much of the raw record, so one huge bad line stays cheap.
MAX_UNREADABLE_TEXT_BYTES = 1 << 20
# A batch ends early once its text reaches this size, so a few huge documents cannot make a
# batch too big for memory (or for one Arrow string array).
MAX_BATCH_TEXT_BYTES = 64 << 20
CHUNK_BYTES = 1 << 20

RESERVED_COLUMNS = frozenset((doc.ID, doc.TEXT, *doc.LINEAGE_COLUMNS))
HTML_TYPES = frozenset(("text/html", "application/xhtml+xml"))
GLOB_CHARS = ("*", "?", "[")
# What a broken compressed stream raises while it is read.
DECOMPRESSION_ERRORS = (EOFError, zlib.error, gzip.BadGzipFile, zstandard.ZstdError)

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



def check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise ValueError(f"unknown input format {fmt!r}; expected one of: {', '.join(FORMATS)}")



def compression_of(url: str) -> str | None:
    return infer_compression(url)


def decompressed(stream: IO[bytes], url: str) -> IO[bytes]:
    """The decompressed view of a file, by its extension (fsspec's ``compression="infer"``)."""
    compression = compression_of(url)
    if compression is None:
        return stream
    if compression == "zstd":
        return io.BufferedReader(_ZstdReader(stream), CHUNK_BYTES)
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
            chunk = self._raw.read(CHUNK_BYTES)
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
