"""Shards: slices of scanned files of about ``shard_size`` records each, in input order."""


from dataclasses import dataclass
from typing import Sequence


from recipeflow.io.readers.formats import check_format
from recipeflow.io.readers.listing import relative_path

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
    check_format(fmt)
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
