"""``perplexity_filter`` (Data-Juicer): keep documents whose KenLM perplexity is within
bounds."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from recipeflow.operators.base import NonNegative
from recipeflow.operators.text.datajuicer_text import DataJuicerFilterParams, RangeFilter, split_words
from recipeflow.operators.models.datajuicer_models import load_datajuicer_kenlm, load_datajuicer_sentencepiece
from recipeflow.operators.registry import register


class PerplexityFilterParams(DataJuicerFilterParams):
    lang: str = Field("en", description="Language: names the default model files.")
    min_ppl: NonNegative | None = Field(0, description="Drop documents with a lower perplexity.")
    max_ppl: NonNegative | None = Field(1500, description="Drop documents with a higher perplexity.")
    model_path: str | None = Field(
        None,
        description="KenLM model, ARPA text or KenLM binary (any fsspec path); null: "
        "`<lang>.arpa.bin` in Data-Juicer's model cache (~/.cache/data_juicer/models).",
    )
    sp_model_path: str | None = Field(
        None,
        description="sentencepiece model the KenLM model was trained on (any fsspec path); "
        "null: `<lang>.sp.model` in Data-Juicer's model cache.",
    )
    tokenizer: Literal["sentencepiece", "whitespace"] = Field(
        "sentencepiece",
        description="'sentencepiece' as Data-Juicer (needs the `sentencepiece` package); "
        "'whitespace' splits on spaces, newlines and tabs, for KenLM models trained on "
        "whitespace-split text.",
    )


def perplexity(model: Any, words: list[str]) -> float:
    """Data-Juicer's perplexity: the words joined by spaces, scored line by line by KenLM
    (with sentence boundaries), ``10 ** (-log10 probability / (words + one end per line))``,
    rounded to one decimal; 0 without lines."""
    log10_probability, length = 0.0, 0
    for line in " ".join(words).splitlines():
        log10_probability += model.score(line)
        length += len(line.split()) + 1
    return round(10.0 ** (-log10_probability / length), 1) if length else 0.0


@register
class PerplexityFilter(RangeFilter):
    """Keep documents whose perplexity under a KenLM language model is within
    [min_ppl, max_ppl] (Data-Juicer's ``perplexity_filter``).

    Statistic ``perplexity``. The text is tokenized with the sentencepiece model the KenLM
    model was trained on (Data-Juicer uses the Wikipedia models `<lang>.sp.model` and
    `<lang>.arpa.bin`): a missing one is fetched into Data-Juicer's model cache from where
    Data-Juicer fetches it (checked before use); offline, the error says where to put it.
    """

    name = "perplexity_filter"
    version = "2"  # 2: model files fetched as Data-Juicer does
    Params = PerplexityFilterParams
    statistic = "perplexity"

    def measure(self, texts: list[str]) -> list[Any]:
        p = self.params
        # Data-Juicer's files, found or fetched where Data-Juicer keeps them (_dj_models).
        model = load_datajuicer_kenlm(p.lang, p.model_path)
        if p.tokenizer == "whitespace":
            return [perplexity(model, split_words(t)) for t in texts]
        tokenizer = load_datajuicer_sentencepiece(p.lang, p.sp_model_path)
        return [perplexity(model, tokenizer.encode_as_pieces(t)) for t in texts]

    def bounds(self) -> tuple[float | None, float | None]:
        return self.params.min_ppl, self.params.max_ppl
