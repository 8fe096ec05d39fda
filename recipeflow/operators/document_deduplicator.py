"""``document_deduplicator``: Data-Juicer's exact document deduplication (a barrier)."""

from __future__ import annotations

import string

import pyarrow as pa
import regex
import xxhash
from pydantic import Field

from recipeflow.operators import document as doc
from recipeflow.operators.base import BarrierDecision, OperatorParams, Rejection
from recipeflow.operators.dedup.deduplicator import Deduplicator
from recipeflow.operators.registry import register

_HASH = "hash"
# Data-Juicer's own pattern and engine (the `regex` module: its \s and \d differ from `re`'s).
_NON_CHARACTER = regex.compile(r"\s+|\d+|[" + regex.escape(string.punctuation) + "]")


class DocumentDeduplicatorParams(OperatorParams):
    lowercase: bool = Field(False, description="Compare texts in lower case.")
    ignore_non_character: bool = Field(
        False,
        description="Compare texts without whitespace, digits and ASCII punctuation.",
    )


@register
class DocumentDeduplicator(Deduplicator):
    """Remove documents whose text equals an earlier one's, as Data-Juicer's document_deduplicator.

    Texts are compared stripped of surrounding whitespace, optionally in lower case and without
    whitespace, digits and punctuation. The first document in input order is kept; later
    copies are rejected (reason ``exact_duplicate``, detail names the kept document's id).
    A barrier: shards hash in parallel (128-bit xxh3), one step finds the first of each hash.
    """

    name = "document_deduplicator"
    version = "1"
    Params = DocumentDeduplicatorParams

    def comparison_key(self, text: str) -> str:
        """What two documents must share to be duplicates."""
        if self.params.lowercase:
            text = text.lower()
        if self.params.ignore_non_character:
            text = _NON_CHARACTER.sub("", text)
        return text.strip()

    def signatures(self, batch: pa.Table) -> pa.Table:
        texts = batch.column(doc.TEXT).to_pylist()
        hashes = [xxhash.xxh3_128_digest(self.comparison_key(t).encode("utf-8")) for t in texts]
        return pa.table({_HASH: pa.array(hashes, type=pa.binary(16)), doc.ID: batch.column(doc.ID)})

    def resolve(self, signatures: list[pa.Table]) -> list[BarrierDecision]:
        first_id: dict[bytes, str] = {}
        decisions = []
        for table in signatures:
            drop: dict[int, Rejection] = {}
            hashes = table.column(_HASH).to_pylist()
            ids = table.column(doc.ID).to_pylist()
            for row, (digest, doc_id) in enumerate(zip(hashes, ids)):
                kept_id = first_id.get(digest)
                if kept_id is None:
                    first_id[digest] = doc_id
                else:
                    drop[row] = Rejection("exact_duplicate", detail=f"duplicate_of={kept_id}")
            decisions.append(BarrierDecision(drop=drop))
        return decisions
