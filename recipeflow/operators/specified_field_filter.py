"""``specified_field_filter`` (Data-Juicer): keep documents whose field takes allowed values."""

from __future__ import annotations

import json
from typing import Any, Sequence

import pyarrow as pa
from pydantic import Field

from recipeflow.operators import document as doc
from recipeflow.operators.text.datajuicer_text import DataJuicerFilterParams
from recipeflow.operators.base import Filter, Rejection
from recipeflow.operators.registry import register

_MISSING = object()


class SpecifiedFieldFilterParams(DataJuicerFilterParams):
    field_key: str = Field(
        "", description="The field to check; nested fields joined with dots ('meta.lang')."
    )
    target_value: list[Any] = Field(
        [], description="Allowed values; empty (or no field_key): keep everything."
    )


def field_values(batch: pa.Table, field_key: str) -> list[Any]:
    """The value of the (dotted, possibly nested) field of every document; a clear error when
    the top-level field does not exist, ``_MISSING`` where a nested level is absent."""
    top, *nested = field_key.split(".")
    if top not in batch.column_names:
        raise KeyError(
            f"specified_field_filter: documents have no field {top!r} (field_key "
            f"{field_key!r}); fields: {', '.join(batch.column_names)}"
        )
    out: list[Any] = []
    for value in batch.column(top).to_pylist():
        for key in nested:
            value = value.get(key, _MISSING) if isinstance(value, dict) else _MISSING
            if value is _MISSING:
                break
        out.append(value)
    return out


def all_allowed(value: Any, allowed: list[Any]) -> bool:
    """Data-Juicer's test: every element of a list value (or the value itself) is allowed."""
    items = value if isinstance(value, (list, tuple)) else [value]
    return all(item in allowed for item in items)


def _describe(value: Any) -> str:
    if value is _MISSING:
        return "missing"
    return json.dumps(value, ensure_ascii=False, default=str)


@register
class SpecifiedFieldFilter(Filter):
    """Keep documents whose ``field_key`` value is in ``target_value`` (for a list value: all
    its elements) (Data-Juicer's ``specified_field_filter``).

    Statistic ``<field_key>``: a copy of the value, as in Data-Juicer. A document lacking a
    nested level of the field is dropped (reason ``field_missing``).
    """

    name = "specified_field_filter"
    version = "1"
    Params = SpecifiedFieldFilterParams

    def compute_stats(self, batch: pa.Table) -> dict[str, Sequence[Any]]:
        if not self.params.field_key:
            return {}
        return {self.params.field_key: field_values(batch, self.params.field_key)}

    def annotate(self, batch: pa.Table) -> tuple[pa.Table, list[Rejection | None]]:
        stats = self.compute_stats(batch)
        for statistic, values in stats.items():
            batch = doc.set_column(batch, doc.stat_column(statistic), _stat_array(values))
        return batch, self.decide(stats) if stats else [None] * len(batch)

    def decide(self, stats: dict[str, Sequence[Any]]) -> list[Rejection | None]:
        p = self.params
        values = stats.get(p.field_key, [])
        if not (p.field_key and p.target_value):
            return [None] * len(values)
        out: list[Rejection | None] = []
        for value in values:
            if value is _MISSING:
                out.append(Rejection("field_missing", p.field_key, None, "missing"))
                continue
            keep = all_allowed(value, p.target_value) != p.reversed_range
            reason = "field_value_in_target" if p.reversed_range else "field_value_not_in_target"
            numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
            number = float(value) if numeric else None
            out.append(None if keep else Rejection(reason, p.field_key, number, _describe(value)))
        return out


def _stat_array(values: Sequence[Any]) -> pa.Array:
    """The statistic column: the values themselves when Arrow can type them, else as JSON."""
    plain = [None if v is _MISSING else v for v in values]
    try:
        return pa.array(plain)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError):
        return pa.array([None if v is _MISSING else _describe(v) for v in values], pa.string())
