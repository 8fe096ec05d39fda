"""``document_simhash_deduplicator``: Data-Juicer's SimHash deduplicator, same parameters,
same hashes (the ``simhash-pybind`` library Data-Juicer uses), same keep/drop decisions, run
as recipeflow's barrier."""

from __future__ import annotations

import functools
from typing import Any, Literal

import numpy as np
import pyarrow as pa
from pydantic import Field, PositiveInt, field_validator, model_validator

from recipeflow.operators import document as doc
from recipeflow.operators.dedup.lsh import connected_components
from recipeflow.operators.dedup.datajuicer_shingles import compile_ignore_pattern, shingle_list
from recipeflow.operators.base import BarrierDecision, OperatorParams, Rejection
from recipeflow.operators.dedup.deduplicator import Deduplicator
from recipeflow.operators.registry import register

SIMHASH = "simhash"


class DocumentSimhashDeduplicatorParams(OperatorParams):
    tokenization: Literal["space", "punctuation", "character"] = Field(
        "space", description="How text is cut into tokens: at spaces, at punctuation, into characters."
    )
    window_size: PositiveInt = Field(6, description="Tokens per shingle.")
    lowercase: bool = Field(True, description="Lower-case text first.")
    ignore_pattern: str | None = Field(
        None,
        description="A regular expression (the `regex` module's syntax, e.g. \\p{P}) whose "
        "matches are removed before tokenizing.",
    )
    num_blocks: PositiveInt = Field(6, description="Blocks the 64-bit SimHash is cut into to find near pairs.")
    hamming_distance: PositiveInt = Field(
        4, description="Documents whose SimHashes differ in at most this many bits are duplicates."
    )

    @field_validator("ignore_pattern")
    @classmethod
    def _valid_pattern(cls, value: str | None) -> str | None:
        compile_ignore_pattern(value)
        return value

    @model_validator(mode="after")
    def _distance_below_blocks(self):
        # The block search finds every pair within the distance only when it is below the
        # number of blocks (pigeonhole); the library fails otherwise.
        if self.hamming_distance >= self.num_blocks:
            raise ValueError(
                f"hamming_distance ({self.hamming_distance}) must be less than num_blocks "
                f"({self.num_blocks}), as in Data-Juicer"
            )
        if self.num_blocks > 64:
            raise ValueError(f"num_blocks ({self.num_blocks}) cannot exceed the 64 bits of a SimHash")
        return self


def _simhash_module():
    try:
        import simhash
    except ImportError as error:  # pragma: no cover - a dependency of recipeflow
        raise ImportError(
            "document_simhash_deduplicator needs the `simhash-pybind` package (pip install "
            "simhash-pybind), the SimHash library Data-Juicer uses"
        ) from error
    return simhash


@register
class DocumentSimhashDeduplicator(Deduplicator):
    """Data-Juicer's document_simhash_deduplicator: near-duplicates by SimHash.

    Same parameters and defaults as Data-Juicer (``tokenization`` space/punctuation/character,
    ``window_size`` 6, ``lowercase``, ``ignore_pattern`` compiled with ``regex``,
    ``num_blocks`` 6, ``hamming_distance`` 4), the same 64-bit SimHash (``simhash-pybind``:
    each shingle's hash votes, repeats included) and the same decisions: hashes within
    ``hamming_distance`` bits are linked, linked hashes form clusters, and the first document
    of each cluster (or of each equal hash) in input order is kept. Rejections: reason
    ``near_duplicate``, detail names the kept document's id.
    """

    name = "document_simhash_deduplicator"
    version = "1+simhash-pybind"
    Params = DocumentSimhashDeduplicatorParams

    @functools.cached_property
    def _ignore(self):
        return compile_ignore_pattern(self.params.ignore_pattern)

    def simhash_of(self, text: str) -> int:
        """The document's 64-bit SimHash, as Data-Juicer computes it."""
        simhash = _simhash_module()
        p = self.params
        shingles = shingle_list(text, p.tokenization, p.window_size, p.lowercase, self._ignore)
        return simhash.compute([simhash.unsigned_hash(s) for s in shingles])

    def provenance(self) -> dict[str, Any]:
        from importlib.metadata import version

        return {"simhash": f"simhash-pybind {version('simhash-pybind')}"}

    def signatures(self, batch: pa.Table) -> pa.Table:
        texts = batch.column(doc.TEXT).to_pylist()
        hashes = [self.simhash_of(t) for t in texts]
        return pa.table({SIMHASH: pa.array(hashes, pa.uint64()), doc.ID: batch.column(doc.ID)})

    def resolve(self, signatures: list[pa.Table]) -> list[BarrierDecision]:
        simhash = _simhash_module()
        tables = [s for s in signatures if s.num_rows]
        if not tables:
            return [BarrierDecision(drop={}) for _ in signatures]
        hashes = np.concatenate([t.column(SIMHASH).to_numpy() for t in tables]).astype(np.uint64)
        ids = [i for t in tables for i in t.column(doc.ID).to_pylist()]
        distinct = np.unique(hashes)
        # Clusters of hash values: the library's near pairs (distinct values only), joined.
        group_of_hash = np.arange(len(distinct))
        if len(hashes) > 1:
            pairs = simhash.find_all(distinct, self.params.num_blocks, self.params.hamming_distance)
            if pairs:
                left, right = (np.array(side, dtype=np.uint64) for side in zip(*pairs))
                a = np.searchsorted(distinct, left)
                b = np.searchsorted(distinct, right)
                nodes, root = connected_components(a, b)
                group_of_hash[nodes] = nodes[root]
        group = group_of_hash[np.searchsorted(distinct, hashes)]
        # The first document of each group (input order) is kept, later ones are duplicates.
        kept_position: dict[int, int] = {}
        drops: dict[int, Rejection] = {}
        rejections: dict[int, Rejection] = {}
        for position, g in enumerate(group.tolist()):
            first = kept_position.setdefault(g, position)
            if first != position:
                rejection = rejections.get(first)
                if rejection is None:
                    rejection = rejections[first] = Rejection(
                        "near_duplicate", detail=f"duplicate_of={ids[first]}"
                    )
                drops[position] = rejection
        duplicates = len(drops)
        self.last_summary = {"clusters_with_duplicates": len(rejections), "duplicates": duplicates}
        sizes = [table.num_rows for table in signatures]
        decisions = [BarrierDecision(drop={}) for _ in signatures]
        starts = np.cumsum([0] + sizes)
        for position, rejection in drops.items():
            shard = int(np.searchsorted(starts, position, side="right")) - 1
            decisions[shard].drop[position - int(starts[shard])] = rejection
        return decisions
