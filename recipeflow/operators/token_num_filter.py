"""``token_num_filter`` (Data-Juicer): keep documents whose number of tokens is within bounds."""

from __future__ import annotations

import sys
from typing import Any

from pydantic import Field

from recipeflow.operators.text.datajuicer_text import DataJuicerFilterParams, RangeFilter
from recipeflow.operators.models.datajuicer_models import DEFAULT_HF_TOKENIZER, load_hf_tokenizer
from recipeflow.operators.registry import register


class TokenNumFilterParams(DataJuicerFilterParams):
    hf_tokenizer: str = Field(
        DEFAULT_HF_TOKENIZER,
        description="The Hugging Face tokenizer: a Hub id (read from the Hugging Face cache, "
        "fetched from the Hub when missing and online) or a local folder with tokenizer.json.",
    )
    min_num: int | None = Field(10, description="Drop documents with fewer tokens.")
    max_num: int | None = Field(sys.maxsize, description="Drop documents with more tokens.")


@register
class TokenNumFilter(RangeFilter):
    """Keep documents whose number of tokens is within [min_num, max_num] (Data-Juicer's ``token_num_filter``).

    Statistic ``num_token``: the tokens of the Hugging Face tokenizer ``hf_tokenizer`` without
    special tokens (Data-Juicer's EleutherAI/pythia-6.9b-deduped by default).
    """

    name = "token_num_filter"
    version = "1"
    Params = TokenNumFilterParams
    statistic = "num_token"

    def measure(self, texts: list[str]) -> list[Any]:
        tokenizer = load_hf_tokenizer(self.params.hf_tokenizer)
        return [len(e.ids) for e in tokenizer.encode_batch(texts, add_special_tokens=False)]

    def bounds(self) -> tuple[float | None, float | None]:
        return self.params.min_num, self.params.max_num
