"""Arrow columns from Python values, and JSON text of values that Arrow cannot hold as they
are (shared by the readers and the writers)."""


import json
from typing import Any, Sequence

import pyarrow as pa


def to_arrow_column(values: list[Any]) -> pa.Array:
    """An Arrow array of JSON-like values; when their types do not agree (or cannot be
    stored in Parquet) every value is JSON-encoded to a string instead, deterministically."""
    try:
        array = pa.array(values)
    except (pa.ArrowException, OverflowError, TypeError, ValueError):
        return json_strings(values)
    if _has_empty_struct(array.type):
        return json_strings(values)  # Parquet cannot store a struct without fields
    return array


def json_strings(values: Sequence[Any]) -> pa.Array:
    """Each value as compact JSON text (nulls stay null)."""
    return pa.array([None if v is None else _json_text(v) for v in values], pa.string())


def _json_text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=json_default)


def json_default(value: Any) -> Any:
    """Values JSON has no type for: dates and times as ISO text, bytes as hex, others as str."""
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray)):
        return value.hex()
    return str(value)


def _has_empty_struct(type_: pa.DataType) -> bool:
    if pa.types.is_struct(type_):
        return type_.num_fields == 0 or any(_has_empty_struct(f.type) for f in type_)
    if pa.types.is_list(type_) or pa.types.is_large_list(type_) or \
            pa.types.is_fixed_size_list(type_):
        return _has_empty_struct(type_.value_type)
    return False


# --------------------------------------------------------------------------------------------
# Compression
# --------------------------------------------------------------------------------------------
