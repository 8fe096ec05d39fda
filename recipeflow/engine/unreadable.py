"""Records an input could not read: counted per input with their commonest reasons, and a run
stopped before it commits when every record of an input fails for one reason — that is a
configuration error (a wrong ``text_field``, a wrong ``format``), not bad data."""

from __future__ import annotations

from collections import Counter
from typing import Any, Sequence

from recipeflow.engine.shard_input import StageOutput
from recipeflow.io import writers
from recipeflow.operators import document as doc
from recipeflow.recipe.models import Recipe

READ_STEP = "read:"
TOP_REASONS = 3


class InputUnreadable(ValueError):
    """Every record of an input failed to read for the same reason."""


def summarize(outputs: Sequence[StageOutput]) -> dict[str, dict[str, Any]]:
    """Per input name: ``records`` read, ``unreadable`` among them, and the ``top_reasons``
    (``[reason, count]``, commonest first) — from the stage outputs that read raw shards."""
    totals: dict[str, dict[str, Any]] = {}
    reasons: dict[str, Counter] = {}
    for output in outputs:
        reads = [c for c in output.counts if c["step"].startswith(READ_STEP)]
        for count in reads:
            name = count["step"][len(READ_STEP):]
            row = totals.setdefault(name, {"records": 0, "unreadable": 0})
            row["records"] += count["docs_in"]
            row["unreadable"] += count["docs_in"] - count["docs_out"]
        if reads and output.unreadable:
            table = writers.read_table(output.unreadable, columns=[doc.INPUT_NAME, doc.REJECT_DETAIL])
            for name, detail in zip(table.column(doc.INPUT_NAME).to_pylist(), table.column(doc.REJECT_DETAIL).to_pylist()):
                reasons.setdefault(name, Counter())[detail or doc.UNREADABLE] += 1
    for name, row in totals.items():
        row["top_reasons"] = [[r, n] for r, n in reasons.get(name, Counter()).most_common(TOP_REASONS)]
    return totals


def check_readable(recipe: Recipe, summary: dict[str, dict[str, Any]]) -> None:
    """Raise :class:`InputUnreadable` for an input none of whose records could be read, all for
    one reason, naming the input, its fields and what to check."""
    problems = []
    for name, row in summary.items():
        top = row["top_reasons"]
        if row["records"] and row["unreadable"] == row["records"] and len(top) == 1:
            spec = recipe.inputs.get(name)
            fields = (
                f" (text_field: {spec.text_field!r}, id_field: {spec.id_field!r}, format: {spec.format or 'inferred'})"
                if spec is not None else ""
            )
            problems.append(
                f"inputs.{name}: none of its {row['records']} records could be read, all for the same "
                f"reason: {top[0][0]}{fields}. Check the input's text_field, id_field and format; "
                "nothing was committed"
            )
    if problems:
        where = recipe.source or "<recipe>"
        raise InputUnreadable("\n".join(f"{where}: {p}" for p in problems))


def probe(recipe: Recipe, records: int = 100) -> dict[str, dict[str, Any]]:
    """The first ``records`` records of each input's first file, read as a run reads them:
    a summary like :func:`summarize`'s (``validate --check-inputs``)."""
    from recipeflow.engine.inputs import resolve_input  # reading files only when asked
    from recipeflow.io import readers

    summary: dict[str, dict[str, Any]] = {}
    for name, spec in recipe.inputs.items():
        resolved = resolve_input(spec)
        first = resolved.urls[0]
        piece = readers.FileSlice(first, 0, 1 if resolved.format == "text" else records, None)
        shard = readers.SourceShard(name, resolved.format, spec.text_field, spec.id_field, resolved.root, (piece,))
        read = unread = 0
        reasons: Counter = Counter()
        for batch, bad in readers.read_shard(shard, batch_size=records):
            read += len(batch)
            if bad is not None:
                unread += len(bad)
                reasons.update(d or doc.UNREADABLE for d in bad.column(doc.REJECT_DETAIL).to_pylist())
        summary[name] = {
            "records": read + unread,
            "unreadable": unread,
            "top_reasons": [[r, n] for r, n in reasons.most_common(TOP_REASONS)],
        }
    return summary
