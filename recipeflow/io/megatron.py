"""Megatron-LM's indexed dataset: token ids in a ``.bin`` file, its index in an ``.idx`` file.

Written from the format as Megatron-LM's ``megatron/core/datasets/indexed_dataset.py`` reads it
(``_IndexReader``), version 1, little-endian:

``.idx``::

    9 bytes   magic  b"MMIDIDX\\x00\\x00"
    uint64    version (1)
    uint8     dtype code of the token ids in .bin (uint16: 8, int32: 4; table below)
    uint64    S, the number of sequences
    uint64    D, the number of document indices (documents + 1)
    int32[S]  sequence lengths, in tokens
    int64[S]  sequence pointers: byte offset of each sequence in .bin
    int64[D]  document indices: 0, then the sequence count after each document

``.bin``: every sequence's ids, one after the other, in that dtype, no header.

Each document is written as one sequence (as Megatron's ``preprocess_data.py`` does without
sentence splitting), so the document indices are 0, 1, ..., N. The dtype follows the
vocabulary size as Megatron's ``DType.optimal_dtype`` chooses it: uint16 below 65,500 tokens,
else int32.

:class:`MegatronWriter` streams: token ids go to ``.bin`` as documents arrive; only the
lengths (4 bytes per document) are kept until :meth:`MegatronWriter.finalize` writes ``.idx``.
Both files go through fsspec, so ``s3://`` prefixes work like local ones.
"""

from __future__ import annotations

import hashlib
import struct
from array import array
from dataclasses import dataclass
from typing import IO, Any, Iterable, Sequence

import numpy as np
import pyarrow as pa
from fsspec.core import url_to_fs
from fsspec.implementations.local import LocalFileSystem

INDEX_MAGIC = b"MMIDIDX\x00\x00"
INDEX_VERSION = 1
BIN_SUFFIX = ".bin"
IDX_SUFFIX = ".idx"
# Megatron's DType enum: code <-> numpy dtype.
DTYPE_CODES: dict[int, np.dtype] = {
    1: np.dtype(np.uint8), 2: np.dtype(np.int8), 3: np.dtype(np.int16), 4: np.dtype(np.int32),
    5: np.dtype(np.int64), 6: np.dtype(np.float64), 7: np.dtype(np.float32), 8: np.dtype(np.uint16),
}
_CODE_OF_DTYPE = {dtype: code for code, dtype in DTYPE_CODES.items()}
# Megatron's threshold (DType.optimal_dtype): not 65,536, it leaves room for added tokens.
UINT16_VOCAB_LIMIT = 65500
_HEADER = struct.Struct("<9sQB")  # magic, version, dtype code
_COUNTS = struct.Struct("<QQ")  # sequence count, document index count
HEADER_BYTES = _HEADER.size + _COUNTS.size  # 34
_IDX_CHUNK = 1 << 20  # entries per write when streaming the index out


class MegatronFormatError(ValueError):
    """A file is not a valid MMIDIDX indexed dataset, or ids do not fit the chosen dtype."""


def dtype_for_vocab(vocab_size: int) -> np.dtype:
    """The token dtype Megatron uses for a vocabulary of this size."""
    if vocab_size <= 0:
        raise ValueError(f"vocab_size must be positive; got {vocab_size}")
    return np.dtype(np.uint16) if vocab_size < UINT16_VOCAB_LIMIT else np.dtype(np.int32)


def paths(prefix: str) -> tuple[str, str]:
    """The ``.bin`` and ``.idx`` paths of a dataset prefix (Megatron's ``--data-path`` value)."""
    return prefix + BIN_SUFFIX, prefix + IDX_SUFFIX


@dataclass(frozen=True)
class MegatronFile:
    """One written file, for manifests."""

    path: str
    bytes: int
    sha256: str


@dataclass(frozen=True)
class MegatronShard:
    """What :meth:`MegatronWriter.finalize` wrote."""

    prefix: str
    documents: int
    tokens: int
    dtype: str
    bin: MegatronFile
    idx: MegatronFile

    def manifest(self) -> dict[str, Any]:
        return {
            "format": "megatron", "prefix": self.prefix, "documents": self.documents,
            "tokens": self.tokens, "dtype": self.dtype,
            "files": [vars(self.bin), vars(self.idx)],
        }


class _HashingWriter:
    """Writes bytes to a file while counting and hashing them (no second pass for manifests)."""

    def __init__(self, target: IO[bytes]):
        self.target = target
        self.size = 0
        self.sha256 = hashlib.sha256()

    def write(self, data: bytes | memoryview) -> None:
        self.target.write(data)
        self.sha256.update(data)
        self.size += len(data)


def _open_for_writing(url: str, storage_options: dict | None) -> IO[bytes]:
    fs, path = url_to_fs(url, **(storage_options or {}))
    if isinstance(fs, LocalFileSystem):
        fs.makedirs(fs._parent(path), exist_ok=True)
    return fs.open(path, "wb")


class MegatronWriter:
    """Streams documents' token ids into one ``.bin`` + ``.idx`` pair.

    ``vocab_size`` chooses the dtype (uint16 below 65,500, else int32); every id is checked to
    be in ``[0, vocab_size)`` so that nothing wraps around silently. Use as a context manager,
    or call :meth:`finalize` (success) or :meth:`abort` (delete what was written)::

        with MegatronWriter("out/shard-00000", vocab_size=49152) as writer:
            writer.add_token_lists(table.column("token_ids"))
        writer.shard  # MegatronShard: counts, sizes and sha256 of both files
    """

    def __init__(self, prefix: str, vocab_size: int, storage_options: dict | None = None):
        self.prefix = prefix
        self.vocab_size = int(vocab_size)
        self.dtype = dtype_for_vocab(self.vocab_size)
        self.bin_path, self.idx_path = paths(prefix)
        self._storage_options = storage_options
        self._bin_file = _open_for_writing(self.bin_path, storage_options)
        self._bin = _HashingWriter(self._bin_file)
        self._lengths = array("i")  # int32, as in the index
        self._tokens = 0
        self.shard: MegatronShard | None = None

    def __enter__(self) -> "MegatronWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            if self.shard is None:
                self.finalize()
        else:
            self.abort()

    @property
    def documents(self) -> int:
        return len(self._lengths)

    def add_document(self, token_ids: Sequence[int] | np.ndarray) -> None:
        """One document, as one sequence."""
        ids = np.asarray(token_ids)
        self._write(ids.reshape(-1), np.array([ids.size], dtype=np.int64))

    def add_documents(self, documents: Iterable[Sequence[int] | np.ndarray]) -> None:
        for ids in documents:
            self.add_document(ids)

    def add_token_lists(self, column: pa.Array | pa.ChunkedArray) -> None:
        """A column of token-id lists (``list<uint32>``, as ``tokenize`` writes them), one
        document per row, without going through Python lists. A null row is an error."""
        chunks = column.chunks if isinstance(column, pa.ChunkedArray) else [column]
        for chunk in chunks:
            if not (pa.types.is_list(chunk.type) or pa.types.is_large_list(chunk.type)):
                raise MegatronFormatError(f"token ids must be a list column; got {chunk.type}")
            if chunk.null_count:
                raise MegatronFormatError(
                    f"{chunk.null_count} document(s) have no token ids (null): tokenize them "
                    f"with keep_ids: true before writing Megatron files"
                )
            if len(chunk) == 0:
                continue
            offsets = chunk.offsets.to_numpy()  # honours a sliced chunk's offset
            values = chunk.values.slice(offsets[0], offsets[-1] - offsets[0])
            ids = values.to_numpy(zero_copy_only=False)
            self._write(ids, np.diff(offsets).astype(np.int64))

    def add_table(self, table: pa.Table | pa.RecordBatch, column: str = "token_ids") -> None:
        if column not in table.column_names:
            raise MegatronFormatError(
                f"the documents have no {column!r} column: the Megatron format needs the token "
                f"ids (`tokenize` with keep_ids: true)"
            )
        self.add_token_lists(table.column(column))

    def _write(self, ids: np.ndarray, lengths: np.ndarray) -> None:
        if self.shard is not None:
            raise RuntimeError(f"{self.prefix} is already finalized")
        if ids.size:
            if ids.dtype.kind not in "iu":
                raise MegatronFormatError(f"token ids must be integers; got {ids.dtype}")
            low, high = int(ids.min()), int(ids.max())
            if low < 0 or high >= self.vocab_size:
                raise MegatronFormatError(
                    f"token id {low if low < 0 else high} is outside the vocabulary "
                    f"[0, {self.vocab_size}) of {self.prefix}: wrong vocab_size for these ids?"
                )
        if lengths.size and int(lengths.max()) > np.iinfo(np.int32).max:
            raise MegatronFormatError("a document longer than 2**31-1 tokens cannot be indexed")
        self._bin.write(np.ascontiguousarray(ids, dtype=self.dtype.newbyteorder("<")).tobytes())
        self._lengths.frombytes(lengths.astype("<i4").tobytes())
        self._tokens += int(ids.size)

    def finalize(self) -> MegatronShard:
        """Close ``.bin`` and write ``.idx``; returns (and keeps as :attr:`shard`) the counts."""
        if self.shard is not None:
            return self.shard
        self._bin_file.close()
        lengths = np.frombuffer(self._lengths, dtype=np.int32) if self._lengths else np.zeros(0, np.int32)
        count = len(lengths)
        with _open_for_writing(self.idx_path, self._storage_options) as idx_file:
            idx = _HashingWriter(idx_file)
            idx.write(_HEADER.pack(INDEX_MAGIC, INDEX_VERSION, _CODE_OF_DTYPE[self.dtype]))
            idx.write(_COUNTS.pack(count, count + 1))
            for start in range(0, count, _IDX_CHUNK):
                idx.write(lengths[start:start + _IDX_CHUNK].astype("<i4").tobytes())
            pointer = 0  # byte offset of each sequence: running sum of lengths times itemsize
            for start in range(0, count, _IDX_CHUNK):
                block = lengths[start:start + _IDX_CHUNK].astype(np.int64) * self.dtype.itemsize
                ends = np.cumsum(block) + pointer
                idx.write((ends - block).astype("<i8").tobytes())
                pointer = int(ends[-1])
            # Document indices 0..count: every document is one sequence.
            for start in range(0, count + 1, _IDX_CHUNK):
                idx.write(np.arange(start, min(start + _IDX_CHUNK, count + 1), dtype="<i8").tobytes())
        self.shard = MegatronShard(
            prefix=self.prefix, documents=count, tokens=self._tokens, dtype=self.dtype.name,
            bin=MegatronFile(self.bin_path, self._bin.size, self._bin.sha256.hexdigest()),
            idx=MegatronFile(self.idx_path, idx.size, idx.sha256.hexdigest()),
        )
        return self.shard

    def abort(self) -> None:
        """Close and delete what was written (a failed shard leaves no half pair behind)."""
        try:
            self._bin_file.close()
        finally:
            fs, _ = url_to_fs(self.bin_path, **(self._storage_options or {}))
            for url in (self.bin_path, self.idx_path):
                path = url_to_fs(url, **(self._storage_options or {}))[1]
                if fs.exists(path):
                    fs.rm(path)


def write_tables(prefix: str, tables: Iterable[pa.Table | pa.RecordBatch], vocab_size: int, column: str = "token_ids",
                 storage_options: dict | None = None) -> MegatronShard:
    """Write one output shard from its batches (streamed: one batch in memory at a time)."""
    with MegatronWriter(prefix, vocab_size, storage_options) as writer:
        for table in tables:
            writer.add_table(table, column)
    assert writer.shard is not None
    return writer.shard


def write_megatron(prefix: str, documents: Iterable[Sequence[int]], vocab_size: int) -> MegatronShard:
    """Write documents' token ids as one ``.bin`` + ``.idx`` pair."""
    with MegatronWriter(prefix, vocab_size) as writer:
        writer.add_documents(documents)
    assert writer.shard is not None
    return writer.shard


class MegatronReader:
    """Reads an MMIDIDX indexed dataset (local files, memory-mapped), checking its structure:
    magic, version, dtype code, file sizes and pointers against the lengths."""

    def __init__(self, prefix: str):
        self.prefix = prefix
        bin_path, idx_path = paths(prefix)
        with open(idx_path, "rb") as f:
            header = f.read(HEADER_BYTES)
        if len(header) < HEADER_BYTES:
            raise MegatronFormatError(f"{idx_path}: {len(header)} bytes, shorter than the header")
        magic, version, code = _HEADER.unpack_from(header)
        if magic != INDEX_MAGIC:
            raise MegatronFormatError(f"{idx_path}: bad magic {magic!r}, expected {INDEX_MAGIC!r}")
        if version != INDEX_VERSION:
            raise MegatronFormatError(f"{idx_path}: version {version}, only version 1 is known")
        if code not in DTYPE_CODES:
            raise MegatronFormatError(f"{idx_path}: unknown dtype code {code}")
        self.dtype_code = code
        self.dtype = DTYPE_CODES[code]
        sequences, doc_indices = _COUNTS.unpack_from(header, _HEADER.size)
        index = np.memmap(idx_path, mode="r", dtype=np.uint8)
        expected = HEADER_BYTES + sequences * (4 + 8) + doc_indices * 8
        if len(index) != expected:
            raise MegatronFormatError(
                f"{idx_path}: {len(index)} bytes; {sequences} sequences and {doc_indices} document "
                f"indices need {expected}"
            )
        offset = HEADER_BYTES
        self.sequence_lengths = np.frombuffer(index, dtype="<i4", count=sequences, offset=offset)
        offset += 4 * sequences
        self.sequence_pointers = np.frombuffer(index, dtype="<i8", count=sequences, offset=offset)
        offset += 8 * sequences
        self.document_indices = np.frombuffer(index, dtype="<i8", count=doc_indices, offset=offset)
        lengths64 = self.sequence_lengths.astype(np.int64)
        starts = np.concatenate([[0], np.cumsum(lengths64 * self.dtype.itemsize)[:-1]]) if sequences else lengths64
        if not np.array_equal(starts, self.sequence_pointers):
            raise MegatronFormatError(f"{idx_path}: sequence pointers do not follow the lengths")
        if doc_indices and (self.document_indices[0] != 0 or self.document_indices[-1] != sequences
                            or np.any(np.diff(self.document_indices) < 0)):
            raise MegatronFormatError(f"{idx_path}: document indices are not 0..{sequences} ascending")
        self._bin = np.memmap(bin_path, mode="r", dtype=self.dtype.newbyteorder("<")) \
            if int(lengths64.sum()) else np.zeros(0, self.dtype)
        if len(self._bin) != int(lengths64.sum()):
            raise MegatronFormatError(
                f"{bin_path}: {len(self._bin)} tokens, the index says {int(lengths64.sum())}"
            )

    def __len__(self) -> int:
        return len(self.sequence_lengths)

    @property
    def documents(self) -> int:
        return len(self.document_indices) - 1

    @property
    def tokens(self) -> int:
        return len(self._bin)

    def __getitem__(self, sequence: int) -> np.ndarray:
        start = int(self.sequence_pointers[sequence]) // self.dtype.itemsize
        return np.asarray(self._bin[start:start + int(self.sequence_lengths[sequence])])

    def document(self, index: int) -> np.ndarray:
        """All the ids of a document (the concatenation of its sequences)."""
        first, end = int(self.document_indices[index]), int(self.document_indices[index + 1])
        if first == end:
            return np.zeros(0, self.dtype)
        start = int(self.sequence_pointers[first]) // self.dtype.itemsize
        stop = start + int(self.sequence_lengths[first:end].astype(np.int64).sum())
        return np.asarray(self._bin[start:stop])
