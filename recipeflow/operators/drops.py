"""The documents a barrier drops, held as columns rather than one object per document.

A selector over ten million documents drops millions: as a dict of :class:`Rejection`
objects that cost ~200 bytes each (a resolve over 10M documents held ~1 GB of them); as
columns it is a row number, a value and dictionary-encoded strings, ~20 bytes each. Operators
that drop many documents at once call :meth:`Drops.add` with arrays; one-at-a-time code may
still write ``drops[row] = Rejection(...)``.
"""

from __future__ import annotations

from typing import Any, Iterator, Mapping, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from recipeflow.operators.document import Rejection

ROW = "row"
_TEXT = pa.dictionary(pa.int32(), pa.string())  # a reason repeated a million times is stored once
SCHEMA = pa.schema([
    (ROW, pa.int64()), ("reason", _TEXT), ("statistic", _TEXT), ("value", pa.float64()), ("detail", _TEXT),
])
# The Rejection field behind each column after ``row``.
FIELDS = ("reason", "statistic", "value", "detail")

Text = str | None | Sequence[str | None] | pa.Array | pa.ChunkedArray


class Drops:
    """Rejections keyed by row number. When a row is given twice, the last one counts."""

    def __init__(self, rejections: Mapping[int, Rejection] | None = None) -> None:
        self._chunks: list[pa.Table] = []
        self._pending: list[tuple[int, Rejection]] = []  # from __setitem__, made a chunk on read
        self._table: pa.Table | None = None  # the canonical form: rows unique and ascending
        self._index: dict[int, int] | None = None
        for row, rejection in (rejections or {}).items():
            self[row] = rejection

    # -- writing -------------------------------------------------------------------------------

    def add(self, rows: np.ndarray | Sequence[int], reason: Text, statistic: Text = None,
            values: np.ndarray | Sequence[float | None] | None = None, detail: Text = None) -> None:
        """Drop ``rows``; each text field is one value for all of them or one per row, and
        ``values`` one number per row (NaN and None: no value)."""
        rows = np.asarray(rows, np.int64)
        if len(rows):
            self._append(pa.table({
                ROW: rows,
                "reason": _text(reason, len(rows)),
                "statistic": _text(statistic, len(rows)),
                "value": _numbers(values, len(rows)),
                "detail": _text(detail, len(rows)),
            }, schema=SCHEMA))

    def __setitem__(self, row: int, rejection: Rejection) -> None:
        self._pending.append((int(row), rejection))
        self._table = self._index = None

    def _append(self, chunk: pa.Table) -> None:
        self._chunks.append(chunk)
        self._table = self._index = None

    # -- reading -------------------------------------------------------------------------------

    def table(self) -> pa.Table:
        """Every drop, one row each, ordered by row number (columns: :data:`SCHEMA`)."""
        if self._table is not None:
            return self._table
        if self._pending:
            pending, self._pending = self._pending, []
            rows = [row for row, _ in pending]
            self._chunks.append(pa.table({
                ROW: pa.array(rows, pa.int64()),
                **{name: pa.array([getattr(r, name) for _, r in pending],
                                  pa.float64() if name == "value" else pa.string())
                   for name in FIELDS},
            }).cast(SCHEMA))
        if not self._chunks:
            table = SCHEMA.empty_table()
        else:
            table = pa.concat_tables(self._chunks).combine_chunks()
            rows = table.column(ROW).to_numpy()
            if not np.all(rows[1:] > rows[:-1]):
                # The last rejection of each row, in row order: unique over the reversed rows.
                _, first_from_end = np.unique(rows[::-1], return_index=True)
                table = table.take(pa.array(len(rows) - 1 - first_from_end, pa.int64()))
        self._chunks, self._table = [table], table
        return table

    def rows(self) -> np.ndarray:
        """The dropped row numbers, ascending."""
        return self.table().column(ROW).to_numpy()

    def __len__(self) -> int:
        return len(self.table())

    def __bool__(self) -> bool:
        return len(self) > 0

    def get(self, row: int, default: Rejection | None = None) -> Rejection | None:
        if self._index is None:
            self._index = {int(r): i for i, r in enumerate(self.rows().tolist())}
        at = self._index.get(int(row))
        return default if at is None else _rejection(self.table(), at)

    def __contains__(self, row: object) -> bool:
        return isinstance(row, (int, np.integer)) and self.get(int(row)) is not None

    def items(self) -> Iterator[tuple[int, Rejection]]:
        table = self.table()
        columns = [table.column(name).to_pylist() for name in FIELDS]
        for row, *fields in zip(table.column(ROW).to_pylist(), *columns):
            yield row, Rejection(*fields)

    def as_dict(self) -> dict[int, Rejection]:
        return dict(self.items())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, (Drops, Mapping)):  # by content: dictionaries may differ in layout
            return self.as_dict() == dict(other.items())
        return NotImplemented

    def __repr__(self) -> str:
        return f"Drops({len(self)} rows)"

    def decisions(self, rows: int) -> list[Rejection | None]:
        """One entry per row ``0..rows-1``: its rejection, or None where it is kept."""
        out: list[Rejection | None] = [None] * rows
        for row, rejection in self.items():
            out[row] = rejection
        return out

    # -- per shard -----------------------------------------------------------------------------

    def split(self, shard_sizes: Sequence[int]) -> list["Drops"]:
        """The drops of rows numbered across shards (in input order), one :class:`Drops` per
        shard with rows numbered within it. The pieces share this one's buffers."""
        table = self.table()
        bounds = np.concatenate([[0], np.cumsum(shard_sizes, dtype=np.int64)])
        cuts = np.searchsorted(table.column(ROW).to_numpy(), bounds)
        pieces = []
        for shard in range(len(shard_sizes)):
            part = table.slice(int(cuts[shard]), int(cuts[shard + 1] - cuts[shard]))
            rows = pc.subtract(part.column(ROW), pa.scalar(int(bounds[shard]), pa.int64()))
            pieces.append(Drops.of_table(part.set_column(0, ROW, rows)))
        return pieces

    @classmethod
    def of_table(cls, table: pa.Table) -> "Drops":
        """Drops from a table of :data:`SCHEMA` whose rows are unique and ascending."""
        drops = cls()
        drops._chunks = [table]
        drops._table = table
        return drops

    def full_columns(self, rows: int) -> dict[str, pa.Array]:
        """Each field as a column of ``rows`` entries (null where a row is kept), strings
        plain: how a shard's decision file stores it."""
        table = self.table()
        at = np.full(rows, -1, np.int64)
        at[table.column(ROW).to_numpy()] = np.arange(len(table))
        positions = pa.array(at, mask=at < 0)
        columns = {}
        for name in FIELDS:
            column = table.column(name).take(positions).combine_chunks()
            columns[name] = column if name == "value" else pc.cast(column, pa.string())
        return columns

    @classmethod
    def of_columns(cls, dropped: np.ndarray, columns: Mapping[str, pa.Array]) -> "Drops":
        """Drops back from :meth:`full_columns`: ``dropped`` says which rows were dropped."""
        rows = np.flatnonzero(dropped)
        picked = pa.array(rows, pa.int64())
        return cls.of_table(pa.table({
            ROW: picked,
            **{name: columns[name].take(picked) for name in FIELDS},
        }).cast(SCHEMA))


def _text(value: Text, rows: int) -> pa.Array:
    if value is None:
        return pa.nulls(rows, _TEXT)
    if isinstance(value, str):
        return pa.DictionaryArray.from_arrays(pa.array(np.zeros(rows, np.int32)), pa.array([value], pa.string()))
    if isinstance(value, pa.ChunkedArray):
        value = value.combine_chunks()
    array = value if isinstance(value, pa.Array) else pa.array(value, pa.string())
    return array if pa.types.is_dictionary(array.type) else array.dictionary_encode()


def _numbers(values: Any, rows: int) -> pa.Array:
    if values is None:
        return pa.nulls(rows, pa.float64())
    numbers = np.asarray(values, np.float64)
    return pa.array(numbers, mask=np.isnan(numbers))


def _rejection(table: pa.Table, at: int) -> Rejection:
    return Rejection(*(table.column(name)[at].as_py() for name in FIELDS))
