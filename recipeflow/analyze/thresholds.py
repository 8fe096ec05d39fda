"""Which filter parameters are thresholds of which statistic: ``min_*``/``max_*`` by name, or
what a filter declares in :meth:`Filter.thresholds` (DataTrove-named parameters)."""

from __future__ import annotations

import math
from typing import Any, Sequence

from pydantic import BaseModel

from recipeflow.analyze.model import NO_LIMIT, THRESHOLD_PREFIXES


# ---------------------------------------------------------------------------------------------
# Thresholds from parameters


def threshold_params(params: BaseModel | dict[str, Any]) -> dict[str, float]:
    """The filter's numeric ``min_*`` / ``max_*`` parameters that set a limit: not null, and
    not a "no limit" stand-in (infinity, or ``sys.maxsize`` as Data-Juicer's defaults use)."""
    values = params.model_dump() if isinstance(params, BaseModel) else dict(params)
    return {
        name: value
        for name, value in values.items()
        if name.startswith(THRESHOLD_PREFIXES) and _is_limit(value)
    }


def _is_limit(value: Any) -> bool:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return False
    return math.isfinite(value) and abs(value) < NO_LIMIT


def _match_score(subject: str, statistic: str) -> int:
    """How well ``min_<subject>`` names ``statistic``: 2 the same name, 1 one name ends the
    other at a word boundary (``length`` and ``text_length``), 0 no match. Conservative on
    purpose: a threshold drawn on the wrong histogram misleads more than one left unmatched."""
    if subject == statistic:
        return 2
    return 1 if statistic.endswith("_" + subject) or subject.endswith("_" + statistic) else 0


def match_thresholds(
    thresholds: dict[str, float], statistics: Sequence[str]
) -> tuple[dict[str, dict[str, float]], dict[str, float]]:
    """Thresholds per statistic, and those matching no statistic (or several equally well).

    ``min_length`` of a filter with the single statistic ``text_length`` is that statistic's;
    with several statistics, ``max_symbol_word_ratio`` goes to ``symbol_word_ratio``.
    """
    matched: dict[str, dict[str, float]] = {s: {} for s in statistics}
    unmatched: dict[str, float] = {}
    for name, value in thresholds.items():
        if len(statistics) == 1:
            matched[statistics[0]][name] = value
            continue
        subject = name.split("_", 1)[1]
        scores = {s: _match_score(subject, s) for s in statistics}
        best = max(scores.values(), default=0)
        winners = [s for s, score in scores.items() if score == best]
        if best > 0 and len(winners) == 1:
            matched[winners[0]][name] = value
        else:
            unmatched[name] = value
    return matched, unmatched
