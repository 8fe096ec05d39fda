"""``document_minhash_deduplicator``: Data-Juicer's MinHash-LSH deduplicator, same parameters,
same signatures, same keep/drop decisions, run as recipeflow's sharded barrier."""

from __future__ import annotations

import functools
from typing import Literal

import numpy as np
from pydantic import Field, PositiveInt, field_validator, model_validator

from recipeflow.operators.dedup.lsh import LshConfig, MinHashLshDeduplicator, Shingled
from recipeflow.operators.dedup.datajuicer_shingles import compile_ignore_pattern, shingle_list
from recipeflow.operators.base import OperatorParams
from recipeflow.operators.registry import register

# Data-Juicer seeds its permutations with 42 and uses datasketch's pre-2.0 ("legacy") scheme:
# (a * h + b) mod (2**61 - 1), truncated to 32 bits, over SHA-1 hashes of the shingles.
_DJ_SEED = 42


class DocumentMinhashDeduplicatorParams(OperatorParams):
    tokenization: Literal["space", "punctuation", "character", "sentencepiece"] = Field(
        "space",
        description="How text is cut into tokens: at spaces, at punctuation, into characters "
        "(sentencepiece is not supported).",
    )
    window_size: PositiveInt = Field(5, description="Tokens per shingle.")
    lowercase: bool = Field(True, description="Lower-case text first.")
    ignore_pattern: str | None = Field(
        None, description="A regular expression (the `regex` module's syntax, e.g. \\p{P}) whose "
        "matches are removed before tokenizing."
    )
    num_permutations: PositiveInt = Field(256, description="MinHash permutations.")
    jaccard_threshold: float = Field(
        0.7, ge=0, le=1, description="Similarity the LSH bands are tuned for (when not given)."
    )
    num_bands: PositiveInt | None = Field(
        None, description="LSH bands; with num_rows_per_band unset, both come from jaccard_threshold."
    )
    num_rows_per_band: PositiveInt | None = Field(None, description="MinHash values per band.")
    tokenizer_model: str | None = Field(None, description="Data-Juicer's sentencepiece model (unsupported).")
    partitions: int = Field(
        1, ge=1, description="Split the band-bucket step into this many tasks (recipeflow's own)."
    )

    @field_validator("tokenization")
    @classmethod
    def _supported_tokenization(cls, value: str) -> str:
        if value == "sentencepiece":
            raise ValueError(
                "tokenization 'sentencepiece' is not supported by recipeflow's "
                "document_minhash_deduplicator; use 'space', 'punctuation' or 'character'"
            )
        return value

    @field_validator("ignore_pattern")
    @classmethod
    def _valid_pattern(cls, value: str | None) -> str | None:
        compile_ignore_pattern(value)  # the `regex` module, as Data-Juicer: \p{P} works
        return value

    @model_validator(mode="after")
    def _bands_fit(self):
        bands, rows = self.bands_and_rows()
        if bands * rows > self.num_permutations:
            raise ValueError(
                f"num_bands x num_rows_per_band ({bands} x {rows} = {bands * rows}) is more than "
                f"num_permutations ({self.num_permutations})"
            )
        if self.partitions > bands:
            raise ValueError(f"partitions ({self.partitions}) is more than the number of bands ({bands})")
        return self

    def bands_and_rows(self) -> tuple[int, int]:
        """As Data-Juicer: the given values, else the optimum for the threshold."""
        if self.num_bands is not None and self.num_rows_per_band is not None:
            return self.num_bands, self.num_rows_per_band
        return optimal_bands_and_rows(self.jaccard_threshold, self.num_permutations)


@functools.lru_cache(maxsize=64)
def optimal_bands_and_rows(threshold: float, num_perm: int) -> tuple[int, int]:
    """The (bands, rows) minimising the equally weighted probabilities of false positives and
    false negatives at ``threshold`` (the search Data-Juicer and datasketch run)."""
    from scipy.integrate import quad  # scipy comes with datasketch

    best, best_error = (0, 0), float("inf")
    for bands in range(1, num_perm + 1):
        for rows in range(1, num_perm // bands + 1):
            false_positive, _ = quad(lambda s: 1 - (1 - s ** float(rows)) ** float(bands), 0.0, threshold)
            false_negative, _ = quad(lambda s: 1 - (1 - (1 - s ** float(rows)) ** float(bands)), threshold, 1.0)
            error = 0.5 * false_positive + 0.5 * false_negative
            if error < best_error:
                best, best_error = (bands, rows), error
    return best


def dj_shingles(text: str, params: DocumentMinhashDeduplicatorParams, ignore) -> list[bytes]:
    """Data-Juicer's shingles of a text, as UTF-8 bytes (the set is what matters)."""
    return list(set(shingle_list(text, params.tokenization, params.window_size, params.lowercase, ignore)))


@register
class DocumentMinhashDeduplicator(MinHashLshDeduplicator):
    """Data-Juicer's document_minhash_deduplicator: near-duplicates by MinHash-LSH.

    Same parameters and defaults as Data-Juicer (``tokenization``, ``window_size``,
    ``lowercase``, ``ignore_pattern``, ``num_permutations``, ``jaccard_threshold``,
    ``num_bands``, ``num_rows_per_band``; bands and rows come from the threshold when not
    given), the same signatures (datasketch's legacy scheme, seed 42, SHA-1 of each shingle)
    and the same decisions: documents sharing a band bucket are clustered, the first of each
    cluster in input order is kept. As in Data-Juicer, documents with fewer tokens than
    ``window_size`` are all duplicates of each other. Rejections: reason ``near_duplicate``.
    """

    name = "document_minhash_deduplicator"
    version = "2+datasketch2-legacy"  # 2: ignore_pattern compiled with `regex`
    Params = DocumentMinhashDeduplicatorParams
    writes_cluster_fields = False  # Data-Juicer adds no fields

    def lsh_config(self) -> LshConfig:
        bands, rows = self.params.bands_and_rows()
        return LshConfig(
            num_bands=bands,
            rows_per_band=rows,
            seed=_DJ_SEED,
            scheme="legacy",
            shingle_hash="sha1",
            empty_documents_collide=True,
        )

    @functools.cached_property
    def _ignore(self):
        return compile_ignore_pattern(self.params.ignore_pattern)

    def shingle_sets(self, texts: list[str]) -> Shingled:
        sets = [dj_shingles(text, self.params, self._ignore) for text in texts]
        return Shingled(sets, np.fromiter((len(s) > 0 for s in sets), dtype=bool, count=len(sets)))
