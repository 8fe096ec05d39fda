"""``language_id_score_filter`` (Data-Juicer): keep documents in given languages whose fastText
language-ID confidence reaches a minimum."""

from __future__ import annotations

from typing import Any, Sequence

import pyarrow as pa
from pydantic import Field

from recipeflow.operators.text.datajuicer_text import (
    DataJuicerFilterParams,
    range_rejection,
    stored_statistic,
    texts_of,
)
from recipeflow.operators.models.fasttext_models import BUNDLED_LID, load_model
from recipeflow.operators.base import Filter, Ratio, Rejection
from recipeflow.operators.registry import register

LABEL_PREFIX = "__label__"


class LanguageIDScoreFilterParams(DataJuicerFilterParams):
    lang: str | list[str] | None = Field(
        "",
        description="Language code(s) to keep (fastText lid.176 labels: en, de, zh, ...); "
        "empty: any language, only the score counts.",
    )
    min_score: Ratio = Field(0.8, description="Drop documents whose language score is lower.")
    model_path: str = Field(
        BUNDLED_LID,
        description="fastText language-ID model: 'lid.176' (the bundled lid.176.ftz) or any "
        "fsspec path (Data-Juicer uses lid.176.bin; point here to it for its exact scores).",
    )

    def target_languages(self) -> list[str] | None:
        """The languages to keep, or ``None`` for any (Data-Juicer treats '', [] and null
        alike)."""
        if not self.lang:
            return None
        return [self.lang] if isinstance(self.lang, str) else list(self.lang)


def predict_languages(model: Any, texts: list[str]) -> tuple[list[str], list[float]]:
    """The top fastText label and its probability for each text, preprocessed as Data-Juicer
    does (lower-cased, newlines as spaces)."""
    if not texts:
        return [], []
    prepared = [t.lower().replace("\n", " ") for t in texts]
    labels, probabilities = model.predict(prepared, k=1)
    languages = [label[0].replace(LABEL_PREFIX, "") for label in labels]
    scores = [float(p[0]) for p in probabilities]
    return languages, scores


@register
class LanguageIDScoreFilter(Filter):
    """Keep documents whose fastText language is one of ``lang`` (any when empty) with a score
    of at least ``min_score`` (Data-Juicer's ``language_id_score_filter``).

    Statistics ``lang`` (the top lid.176 label) and ``lang_score`` (its probability).
    """

    name = "language_id_score_filter"
    version = "1"
    Params = LanguageIDScoreFilterParams

    def compute_stats(self, batch: pa.Table) -> dict[str, Sequence[Any]]:
        texts = texts_of(batch)
        languages, scores = predict_languages(load_model(self.params.model_path), texts)
        return {"lang": languages, "lang_score": [stored_statistic(s) for s in scores]}

    def decide(self, stats: dict[str, Sequence[Any]]) -> list[Rejection | None]:
        targets = self.params.target_languages()
        out: list[Rejection | None] = []
        for language, score in zip(stats["lang"], stats["lang_score"]):
            # As in Data-Juicer, reversed_range inverts the score test, not the language test.
            if targets is not None and language not in targets:
                out.append(
                    Rejection("lang_not_in_target", "lang_score", float(score), f"lang={language}")
                )
            else:
                minimum = self.params.min_score
                out.append(range_rejection(score, "lang_score", minimum, None, self.params))
        return out
