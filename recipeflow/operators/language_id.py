"""``language_id``: identify each document's language with fastText; optionally keep some.

Decisions follow DataTrove's ``LanguageFilter``: the text is predicted with its line breaks
replaced by spaces, and a document is kept when any of the wanted languages scores strictly
above its threshold. Every document gets the fields ``lang`` and ``lang_score`` (the top label
and its score; ``field`` / ``score_field`` rename them), kept or not.
"""

from __future__ import annotations

from typing import Any, Sequence

import pyarrow as pa
from pydantic import Field, field_validator, model_validator

from recipeflow.operators import document as doc
from recipeflow.operators.models.fasttext_models import BUNDLED_LID, load_model
from recipeflow.operators.base import Filter, OperatorParams, Rejection
from recipeflow.operators.registry import register

LABEL_PREFIX = "__label__"
LANG = "lang"
LANG_SCORE = "lang_score"
LANG_SCRIPT = "lang_script"
# Statistics: the score of the wanted language closest to passing, and its margin.
LANGUAGE_SCORE = "language_score"
LANGUAGE_MARGIN = "language_margin"


class LanguageIdParams(OperatorParams):
    languages: list[str] | None = Field(
        None, description="Keep only documents in these languages (labels of the model, e.g. "
        "en, de; eng_Latn for GlotLID); null = annotate only, drop nothing.")
    min_score: float = Field(
        0.65, ge=0.0, le=1.0, description="A wanted language must score above this for the "
        "document to stay (DataTrove's language_threshold).")
    per_language_min_score: dict[str, float] = Field(
        default_factory=dict, description="Thresholds per language, overriding min_score.")
    model: str = Field(
        BUNDLED_LID, description="fastText language-ID model: lid.176 (bundled) or an fsspec "
        "path to another (e.g. GlotLID's model.bin).")
    label_only: bool = Field(
        False, description="Annotate only, even with languages set (DataTrove's label_only).")
    field: str = Field(
        LANG, min_length=1, description="Field the identified language is written to (an "
        "input's own `lang` is overwritten when they share the name: the manifest says so).")
    score_field: str = Field(LANG_SCORE, min_length=1, description="Field its score is written to.")

    @field_validator("languages")
    @classmethod
    def _not_empty(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and not value:
            raise ValueError("an empty list keeps nothing; leave languages out to annotate only")
        return value

    @model_validator(mode="after")
    def _thresholds_for_wanted_languages(self):
        extra = sorted(set(self.per_language_min_score) - set(self.languages or []))
        if extra:
            raise ValueError(
                f"per_language_min_score names {', '.join(extra)}, which "
                f"{'is' if len(extra) == 1 else 'are'} not in languages {self.languages}"
            )
        return self


@register
class LanguageId(Filter):
    """Identify the language with fastText (lid.176 bundled) into fields lang and lang_score; keep only the wanted languages.

    Statistics: ``language_score`` (the score of the wanted language closest to passing; the
    top score when annotating only) and ``language_margin`` (that score minus its threshold: a
    document stays when it is above 0). Reason: ``language_not_kept``, with the top language
    and its score in the detail. Unlike DataTrove's LanguageFilter, which with no languages
    drops documents whose top score is at most the threshold, ``languages: null`` drops nothing.
    """

    name = "language_id"
    version = "1"
    Params = LanguageIdParams

    def written_fields(self) -> tuple[str, ...]:
        script = (LANG_SCRIPT,) if self.params.model != BUNDLED_LID else ()
        return (self.params.field, self.params.score_field, *script)

    def __init__(self, params=None):
        super().__init__(params)
        p = self.params
        wanted = None if p.languages is None else list(dict.fromkeys(p.languages))
        self._thresholds: dict[str, float] | None = None if wanted is None else {
            lang: p.per_language_min_score.get(lang, p.min_score) for lang in wanted
        }
        self._wanted_labels = [(LABEL_PREFIX + lang, t) for lang, t in (self._thresholds or {}).items()]

    @property
    def model(self):
        model = load_model(self.params.model)  # cached per process
        if self._thresholds is not None and not getattr(self, "_checked", False):
            self._check_labels(model)
        return model

    def _check_labels(self, model) -> None:
        """A wanted language the model does not know would silently drop everything."""
        known = {label[len(LABEL_PREFIX):] for label in model.get_labels()}
        unknown = [lang for lang in self._thresholds or {} if lang not in known]
        if unknown:
            import difflib

            hints = [f"{u!r} (did you mean {m[0]!r}?)" if (m := difflib.get_close_matches(u, known, 1))
                     else repr(u) for u in unknown]
            raise ValueError(
                f"language_id: model {self.params.model!r} has no label {', '.join(hints)}; "
                f"its labels look like {sorted(known)[:5]}"
            )
        self._checked = True

    @property
    def drops(self) -> bool:
        return self._thresholds is not None and not self.params.label_only

    def predict(self, texts: Sequence[str | None]) -> list[tuple[str, float, float, float]]:
        """Per text, predicted as one batch: (top label, its score, the score of the wanted
        language closest to passing, that score minus its threshold)."""
        lines = [(t or "").replace("\n", " ") for t in texts]
        # Every label's score when some are wanted (costs about the same as the top one:
        # fastText's time goes into reading the text); the top one is enough otherwise.
        k = 1 if self._thresholds is None else -1
        labels, scores = self.model.predict(lines, k=k, threshold=0.0)
        return [self._assess(doc_labels, doc_scores) for doc_labels, doc_scores in zip(labels, scores)]

    def _assess(self, labels: Sequence[str], scores: Sequence[float]) -> tuple[str, float, float, float]:
        # fastText lists labels best first. Scores become Python floats, so comparisons are
        # made in double precision as DataTrove's are.
        if not len(labels):
            return "", 0.0, 0.0, -1.0
        top, top_score = labels[0][len(LABEL_PREFIX):], float(scores[0])
        if self._thresholds is None:
            return top, top_score, top_score, top_score - self.params.min_score
        best_margin, best_score = -2.0, 0.0
        for label, threshold in self._wanted_labels:
            score = float(scores[labels.index(label)]) if label in labels else 0.0
            if score - threshold > best_margin:
                best_margin, best_score = score - threshold, score
        return top, top_score, best_score, best_margin

    def compute_stats(self, batch: pa.Table) -> dict[str, Sequence[Any]]:
        results = self.predict(batch.column(doc.TEXT).to_pylist())
        return {
            LANGUAGE_SCORE: [r[2] for r in results],
            LANGUAGE_MARGIN: [r[3] for r in results],
        }

    def decide(self, stats: dict[str, Sequence[Any]]) -> list[Rejection | None]:
        if not self.drops:
            return [None] * len(stats[LANGUAGE_SCORE])
        return [
            None if margin > 0 else Rejection("language_not_kept", LANGUAGE_SCORE, score)
            for score, margin in zip(stats[LANGUAGE_SCORE], stats[LANGUAGE_MARGIN])
        ]

    def annotate(self, batch: pa.Table) -> tuple[pa.Table, list[Rejection | None]]:
        """Fields ``lang`` and ``lang_score`` (and ``lang_script`` for models whose labels name
        a script, as GlotLID's eng_Latn), the statistics, and the decisions."""
        results = self.predict(batch.column(doc.TEXT).to_pylist())
        top_labels = [r[0] for r in results]
        if self.params.model != BUNDLED_LID:
            languages = [label.split("_")[0] for label in top_labels]
            scripts = [label.split("_", 1)[1] if "_" in label else None for label in top_labels]
            batch = doc.set_column(batch, self.params.field, pa.array(languages, type=pa.string()))
            batch = doc.set_column(batch, LANG_SCRIPT, pa.array(scripts, type=pa.string()))
        else:
            batch = doc.set_column(batch, self.params.field, pa.array(top_labels, type=pa.string()))
        batch = doc.set_column(batch, self.params.score_field, pa.array([r[1] for r in results], type=pa.float64()))
        stats = {LANGUAGE_SCORE: [r[2] for r in results], LANGUAGE_MARGIN: [r[3] for r in results]}
        for statistic, values in stats.items():
            batch = doc.set_column(batch, doc.stat_column(statistic), pa.array(values, type=pa.float64()))
        decisions = [
            None if d is None else Rejection(d.reason, d.statistic, d.value,
                                             detail=f"top={r[0]}:{r[1]:.4f}")
            for d, r in zip(self.decide(stats), results)
        ]
        return batch, decisions
