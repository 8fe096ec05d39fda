"""``exact_dedup``: drop documents whose text is identical to an earlier one."""

from __future__ import annotations

import pyarrow as pa
import xxhash
from pydantic import Field

from recipeflow.operators import document as doc
from recipeflow.operators.dedup.history import HistoryScope, ScopeParams
from recipeflow.operators.dedup.keys import KeyDeduplicator
from recipeflow.operators.dedup.text import exact_key
from recipeflow.operators.registry import register


class ExactDedupParams(ScopeParams):
    lowercase: bool = Field(False, description="Compare texts in lower case.")
    normalize_whitespace: bool = Field(
        False,
        description="Compare texts with every run of whitespace (spaces, tabs, line breaks) made "
        "one space, and no leading or trailing whitespace.",
    )
    remove_punctuation: bool = Field(
        False, description="Compare texts without punctuation (Unicode categories P*)."
    )
    partitions: int = Field(
        1,
        ge=1,
        description="Split the global step into this many tasks by hash range (for large "
        "corpora); the result does not depend on it.",
    )


@register
class ExactDedup(HistoryScope, KeyDeduplicator):
    """Remove documents with identical text, keeping the first in input order.

    Texts can be compared after normalisation (lower case, whitespace, punctuation; all off by
    default). A barrier: each shard hashes its texts (128-bit xxh3), the first occurrence of
    every hash is found across all shards in input order (in one task, or in ``partitions``
    tasks that each own a range of hashes), then each shard drops its later copies (reason
    ``exact_duplicate``, detail names the kept document's id).

    With ``scope: history`` every document the output dataset already published takes part
    too, and always wins its group: a refresh publishes only documents new to the corpus.
    """

    name = "exact_dedup"
    # 2: signature and partition files changed layout (same decisions as 1).
    version = "2"
    Params = ExactDedupParams
    reason = "exact_duplicate"

    def keys(self, batch: pa.Table) -> list[bytes | None]:
        p = self.params
        normalised = p.lowercase or p.normalize_whitespace or p.remove_punctuation
        texts = batch.column(doc.TEXT).to_pylist()
        if normalised:
            texts = [exact_key(t, p.lowercase, p.normalize_whitespace, p.remove_punctuation) for t in texts]
        return [xxhash.xxh3_128_digest(t.encode("utf-8")) for t in texts]
