"""``alphanumeric_filter`` (Data-Juicer): keep documents whose share of letters and digits is
within bounds."""

from __future__ import annotations

import sys
from typing import Any, Sequence

from pydantic import Field, ValidationInfo, field_validator

from recipeflow.operators.text.datajuicer_text import (
    DataJuicerFilterParams,
    RangeFilter,
    range_decisions,
    stored_statistic,
    texts_of,
)
from recipeflow.operators.models.datajuicer_models import DEFAULT_HF_TOKENIZER, load_hf_tokenizer
from recipeflow.operators.base import NonNegative, Rejection
from recipeflow.operators.registry import register

CHARACTER_STATISTIC = "alnum_ratio"
TOKEN_STATISTIC = "alpha_token_ratio"


class AlphanumericFilterParams(DataJuicerFilterParams):
    tokenization: bool = Field(
        False,
        description="Data-Juicer's token-based ratio: letters per token of the Hugging Face "
        "tokenizer `hf_tokenizer` (statistic alpha_token_ratio) instead of letters and digits "
        "per character (alnum_ratio).",
    )
    # Not a Ratio: with tokenization the statistic is letters per token, often above 1.
    min_ratio: NonNegative | None = Field(0.25, description="Drop documents below this ratio.")
    max_ratio: NonNegative | None = Field(
        sys.maxsize, description="Drop documents above this ratio."
    )
    hf_tokenizer: str = Field(
        DEFAULT_HF_TOKENIZER,
        description="recipeflow's own: the Hugging Face tokenizer for tokenization=true, a Hub "
        "id (from the Hugging Face cache, fetched from the Hub when missing and online) or a "
        "local folder with tokenizer.json; Data-Juicer always uses EleutherAI/pythia-6.9b-deduped.",
    )

    @field_validator("min_ratio")
    @classmethod
    def _share_of_characters_at_most_1(cls, value: float | None, info: ValidationInfo) -> float | None:
        if value is not None and value > 1 and not info.data.get("tokenization"):
            raise ValueError(
                f"{value} is above 1: alnum_ratio is a share of characters, so no document could "
                "pass; use a value in [0, 1] (above 1 only with tokenization: true, letters per token)")
        return value


@register
class AlphanumericFilter(RangeFilter):
    """Keep documents whose ratio of alphanumeric characters is within [min_ratio, max_ratio]
    (Data-Juicer's ``alphanumeric_filter``).

    Statistic ``alnum_ratio``: characters for which Python's ``str.isalnum()`` holds, divided by
    the length in characters (0 for an empty text). With ``tokenization``, statistic
    ``alpha_token_ratio``: letters (``str.isalpha()``) divided by the number of tokens of the
    Hugging Face tokenizer (Data-Juicer's EleutherAI/pythia-6.9b-deduped by default; 0 without
    tokens).
    """

    name = "alphanumeric_filter"
    version = "2"  # 2: tokenization=true
    Params = AlphanumericFilterParams

    @property
    def statistic(self) -> str:  # type: ignore[override]
        return TOKEN_STATISTIC if self.params.tokenization else CHARACTER_STATISTIC

    def measure(self, texts: list[str]) -> list[Any]:
        if not self.params.tokenization:
            return [sum(map(str.isalnum, t)) / len(t) if t else 0.0 for t in texts]
        tokenizer = load_hf_tokenizer(self.params.hf_tokenizer)
        # As transformers' tokenize(): the tokens without special tokens.
        counts = [len(e.tokens) for e in tokenizer.encode_batch(texts, add_special_tokens=False)]
        return [sum(map(str.isalpha, t)) / n if n else 0.0 for t, n in zip(texts, counts)]

    def compute_stats(self, batch) -> dict[str, Sequence[Any]]:
        return {self.statistic: [stored_statistic(v) for v in self.measure(texts_of(batch))]}

    def decide(self, stats: dict[str, Sequence[Any]]) -> list[Rejection | None]:
        p = self.params
        return range_decisions(stats[self.statistic], self.statistic, p.min_ratio, p.max_ratio, p)

    def thresholds(self) -> dict[str, dict[str, float]]:
        bounds = {k: v for k, v in (("min_ratio", self.params.min_ratio), ("max_ratio", self.params.max_ratio)) if v is not None}
        return {self.statistic: bounds}

    def bounds(self) -> tuple[float | None, float | None]:
        return self.params.min_ratio, self.params.max_ratio
