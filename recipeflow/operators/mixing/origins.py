"""Which source (``document.ORIGIN``) each document of a mix came through, as small integer
codes: a Python string per document would cost ~60 bytes each (600 MB at 10M documents)."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from recipeflow.operators import document as doc

OTHER = -1  # the code of an origin not in the names asked for


def origin_codes(signatures: list[pa.Table], names: Sequence[str]) -> tuple[np.ndarray, set[str]]:
    """(code of each document's origin: its index in ``names``, or :data:`OTHER`; rows
    numbered across shards in input order), and every origin seen."""
    index = {name: i for i, name in enumerate(names)}
    seen: set[str] = set()
    parts = []
    for signature in signatures:
        if not len(signature):
            continue
        encoded = pc.dictionary_encode(signature.column(doc.ORIGIN).combine_chunks())
        values = [str(v) for v in encoded.dictionary.to_pylist()]
        seen.update(values)
        lookup = np.array([index.get(v, OTHER) for v in values] or [OTHER], np.int32)
        parts.append(lookup[encoded.indices.to_numpy(zero_copy_only=False)])
    return (np.concatenate(parts) if parts else np.zeros(0, np.int32)), seen
