"""Plain text files (plain, ``.gz``, ``.zst``): one document per file."""


from typing import IO, Iterator

from recipeflow.io import storage
from recipeflow.io.readers.formats import DECOMPRESSION_ERRORS, decompressed
from recipeflow.io.readers.records import Row, default_id, unreadable_text
from recipeflow.io.readers.shards import FileSlice, SourceShard

def count_text(stream: IO[bytes], url: str) -> int:
    try:
        return 1 if decompressed(stream, url).read(1) else 0
    except DECOMPRESSION_ERRORS:
        return 1  # read_shard reports it as unreadable


def text_rows(shard: SourceShard, piece: FileSlice) -> Iterator[Row]:
    doc_id = default_id(shard, piece.url, None)
    with storage.open_binary(piece.url) as raw:
        try:
            data = decompressed(raw, piece.url).read()
        except DECOMPRESSION_ERRORS as error:
            problem = f"the compressed file is corrupt ({error})"
            yield Row(0, piece.url, doc_id, "", problem=problem)
            return
    if not data:
        return
    try:
        text = data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as error:
        problem = f"invalid UTF-8 at byte {error.start} of the file"
        yield Row(0, piece.url, doc_id, unreadable_text(data), problem=problem)
        return
    yield Row(0, piece.url, doc_id, text)
