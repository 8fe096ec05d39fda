"""Megatron-LM indexed dataset (MMIDIDX) files: written by recipeflow.io.megatron, read back by
a reader written from the format's description, and by megatron-core's own reader when it is
importable."""

from __future__ import annotations

import hashlib
import struct

import numpy as np
import pyarrow as pa
import pytest

from recipeflow.io.megatron import (
    MegatronFormatError,
    MegatronReader,
    MegatronWriter,
    dtype_for_vocab,
    write_megatron,
    write_tables,
)


def _documents(n: int, vocab_size: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    lengths = rng.integers(0, 300, size=n)
    lengths[3] = 0  # an empty document is kept as an empty sequence
    docs = [rng.integers(0, vocab_size, size=length) for length in lengths]
    docs[0][:2] = [0, vocab_size - 1]  # the extremes of the vocabulary
    return docs


@pytest.mark.parametrize("vocab_size, dtype", [(49152, np.uint16), (65499, np.uint16),
                                               (65500, np.int32), (151_646, np.int32)])
def test_dtype_follows_vocabulary_size_as_megatron_does(vocab_size, dtype):
    assert dtype_for_vocab(vocab_size) == np.dtype(dtype)


@pytest.mark.parametrize("vocab_size", [49152, 128_256])
def test_round_trip(tmp_path, vocab_size):
    docs = _documents(200, vocab_size)
    shard = write_megatron(str(tmp_path / "shard-00000"), docs, vocab_size)
    assert shard.documents == 200 and shard.tokens == sum(len(d) for d in docs)

    reader = MegatronReader(str(tmp_path / "shard-00000"))
    assert reader.dtype == dtype_for_vocab(vocab_size)
    assert len(reader) == reader.documents == 200
    for i, ids in enumerate(docs):
        assert reader[i].tolist() == ids.tolist()
        assert reader.document(i).tolist() == ids.tolist()
    # The manifest's sizes and checksums are those of the files on disk.
    for written in (shard.bin, shard.idx):
        data = open(written.path, "rb").read()
        assert (len(data), hashlib.sha256(data).hexdigest()) == (written.bytes, written.sha256)


def test_header_bytes(tmp_path):
    write_megatron(str(tmp_path / "d"), [[5, 6, 7], [8], [9, 10]], vocab_size=100)
    idx = (tmp_path / "d.idx").read_bytes()
    assert idx[:9] == b"MMIDIDX\x00\x00"
    assert struct.unpack_from("<Q", idx, 9) == (1,)  # version
    assert idx[17] == 8  # Megatron's DType code of uint16
    assert struct.unpack_from("<QQ", idx, 18) == (3, 4)  # sequences, document indices
    body = idx[34:]
    assert np.frombuffer(body[:12], "<i4").tolist() == [3, 1, 2]  # lengths
    assert np.frombuffer(body[12:36], "<i8").tolist() == [0, 6, 8]  # byte pointers (uint16)
    assert np.frombuffer(body[36:], "<i8").tolist() == [0, 1, 2, 3]  # document indices
    assert (tmp_path / "d.bin").read_bytes() == np.array([5, 6, 7, 8, 9, 10], "<u2").tobytes()

    write_megatron(str(tmp_path / "w"), [[70000, 1]], vocab_size=128_256)
    wide = (tmp_path / "w.idx").read_bytes()
    assert wide[17] == 4  # int32
    assert struct.unpack_from("<QQ", wide, 18) == (1, 2)
    assert (tmp_path / "w.bin").read_bytes() == np.array([70000, 1], "<i4").tobytes()


def test_streaming_arrow_batches_equals_one_document_at_a_time(tmp_path):
    docs = _documents(120, 1000, seed=1)
    column = pa.array([d.tolist() for d in docs], type=pa.list_(pa.uint32()))
    table = pa.table({"id": [str(i) for i in range(len(docs))], "token_ids": column})
    with MegatronWriter(str(tmp_path / "batched"), vocab_size=1000) as writer:
        # Sliced batches, as an output writer streams a shard (slices keep their parent's offsets).
        for start in range(0, len(table), 25):
            writer.add_table(table.slice(start, 25))
    write_megatron(str(tmp_path / "single"), docs, vocab_size=1000)
    shard = write_tables(str(tmp_path / "tables"), table.to_batches(max_chunksize=17), vocab_size=1000)
    assert (shard.documents, shard.tokens) == (len(docs), sum(len(d) for d in docs))
    assert shard.manifest()["files"][0] == {"path": str(tmp_path / "tables.bin"), "bytes": shard.bin.bytes,
                                            "sha256": shard.bin.sha256}
    for suffix in (".bin", ".idx"):
        single = (tmp_path / f"single{suffix}").read_bytes()
        assert (tmp_path / f"batched{suffix}").read_bytes() == single
        assert (tmp_path / f"tables{suffix}").read_bytes() == single


def test_ids_outside_the_vocabulary_are_an_error_and_leave_no_files(tmp_path):
    with pytest.raises(MegatronFormatError, match="outside the vocabulary"):
        with MegatronWriter(str(tmp_path / "bad"), vocab_size=100) as writer:
            writer.add_document([1, 2, 3])
            writer.add_document([1, 100])
    assert not list(tmp_path.iterdir())


def test_missing_token_ids_column_says_what_to_do(tmp_path):
    with MegatronWriter(str(tmp_path / "x"), vocab_size=100) as writer:
        with pytest.raises(MegatronFormatError, match="keep_ids: true"):
            writer.add_table(pa.table({"id": ["a"], "text": ["hi"]}))
        with pytest.raises(MegatronFormatError, match="null"):
            writer.add_token_lists(pa.array([[1], None], type=pa.list_(pa.uint32())))


def test_reader_rejects_a_damaged_index(tmp_path):
    write_megatron(str(tmp_path / "d"), [[1, 2], [3]], vocab_size=10)
    idx = bytearray((tmp_path / "d.idx").read_bytes())
    (tmp_path / "d.idx").write_bytes(b"NOTMMIDX\x00" + idx[9:])
    with pytest.raises(MegatronFormatError, match="magic"):
        MegatronReader(str(tmp_path / "d"))
    (tmp_path / "d.idx").write_bytes(bytes(idx[:-8]))
    with pytest.raises(MegatronFormatError, match="bytes"):
        MegatronReader(str(tmp_path / "d"))


def _megatron_indexed_dataset():
    try:
        from megatron.core.datasets.indexed_dataset import IndexedDataset
    except Exception as error:  # not installed, or its imports (torch...) fail
        pytest.skip(f"megatron-core is not importable here ({type(error).__name__}: {error})")
    return IndexedDataset


@pytest.mark.parametrize("vocab_size", [49152, 128_256])
def test_megatron_core_reads_our_files(tmp_path, vocab_size):
    IndexedDataset = _megatron_indexed_dataset()
    docs = _documents(50, vocab_size, seed=2)
    write_megatron(str(tmp_path / "shard"), docs, vocab_size)
    dataset = IndexedDataset(str(tmp_path / "shard"), multimodal=False, mmap=True)
    assert len(dataset) == len(docs)
    assert dataset.index.dtype == dtype_for_vocab(vocab_size)
    assert dataset.document_indices.tolist() == list(range(len(docs) + 1))
    for i, ids in enumerate(docs):
        assert np.asarray(dataset[i]).tolist() == ids.tolist()
        if len(ids) >= 4:  # Megatron's get() does not check bounds
            assert np.asarray(dataset.get(i, offset=1, length=3)).tolist() == ids[1:4].tolist()


@pytest.mark.parametrize("vocab_size", [49152, 128_256])
def test_same_bytes_as_megatron_cores_builder(tmp_path, vocab_size):
    IndexedDataset = _megatron_indexed_dataset()
    from megatron.core.datasets.indexed_dataset import DType, IndexedDatasetBuilder

    import torch

    docs = _documents(50, vocab_size, seed=3)
    builder = IndexedDatasetBuilder(str(tmp_path / "theirs.bin"), dtype=DType.optimal_dtype(vocab_size))
    for ids in docs:
        builder.add_document(torch.tensor(ids), lengths=[len(ids)])
    builder.finalize(str(tmp_path / "theirs.idx"))
    write_megatron(str(tmp_path / "ours"), docs, vocab_size)
    for suffix in (".bin", ".idx"):
        assert (tmp_path / f"ours{suffix}").read_bytes() == (tmp_path / f"theirs{suffix}").read_bytes()
    assert len(IndexedDataset(str(tmp_path / "ours"))) == len(docs)


def test_written_through_fsspec_like_other_outputs(tmp_path):
    """Any fsspec URL (here the in-memory filesystem; s3:// alike) gets the same bytes."""
    import fsspec

    docs = _documents(30, 49152, seed=4)
    remote = write_megatron("memory://megatron-test/shard-00000", docs, 49152)
    local = write_megatron(str(tmp_path / "local"), docs, 49152)
    fs = fsspec.filesystem("memory")
    for suffix, remote_file, local_file in ((".bin", remote.bin, local.bin), (".idx", remote.idx, local.idx)):
        assert fs.cat(f"/megatron-test/shard-00000{suffix}") == (tmp_path / f"local{suffix}").read_bytes()
        assert (remote_file.bytes, remote_file.sha256) == (local_file.bytes, local_file.sha256)
    fs.rm("/megatron-test", recursive=True)
