"""``line_stats``: DataTrove's ``LineStats`` per-document statistics, as a filter that never
drops (each metric a ``stat_<name>`` field, DataTrove's formulas and names)."""

from __future__ import annotations

from typing import Any, Sequence

from pydantic import Field

from recipeflow.operators.base import DocumentStatsFilter, OperatorParams, Rejection
from recipeflow.operators.c4_quality_filter import END_PUNCTUATION
from recipeflow.operators.registry import register


class LineStatsParams(OperatorParams):
    max_k_chars_per_line_tresholds: list[int] = Field(
        default_factory=lambda: [10, 30],
        description="short_line_ratio_chars_<k>: share of lines of at most k characters "
        "(DataTrove's spelling of the name)")
    min_k_chars_per_line_thresholds: list[int] = Field(
        default_factory=lambda: [2000, 10000],
        description="long_line_ratio_chars_<k>: share of lines of at least k characters")
    ignore_empty_lines: bool = Field(False, description="Leave blank lines out of the ratios")


def _duplicates(lines: list[str]) -> tuple[int, int]:
    """(lines seen before, their characters): DataTrove's find_duplicates."""
    seen: set[str] = set()
    count = chars = 0
    for line in lines:
        if line in seen:
            count += 1
            chars += len(line)
        else:
            seen.add(line)
    return count, chars


@register
class LineStats(DocumentStatsFilter):
    """DataTrove's LineStats as fields: n_lines, avg_line_length, short/long line ratios, lines_ending_with_terminal_mark_ratio, bullet_point_lines_ratio, line_duplicates, line_char_duplicates; drops nothing."""

    name = "line_stats"
    version = "1"
    Params = LineStatsParams

    def statistic_names(self) -> Sequence[str]:
        p = self.params
        return (
            "n_lines", "avg_line_length",
            *(f"short_line_ratio_chars_{k}" for k in p.max_k_chars_per_line_tresholds),
            *(f"long_line_ratio_chars_{k}" for k in p.min_k_chars_per_line_thresholds),
            "lines_ending_with_terminal_mark_ratio", "bullet_point_lines_ratio",
            "line_duplicates", "line_char_duplicates",
        )

    def document_stats(self, text: str) -> Sequence[Any]:
        p = self.params
        lines = text.split("\n")
        n_lines = len(lines)  # blank lines count here even when ignored below, as in DataTrove
        if p.ignore_empty_lines:
            lines = [line for line in lines if line.strip()]
        count = len(lines)
        chars = sum(len(line) for line in lines)
        if count == 0:
            return (n_lines, *[0.0] * (len(self.statistic_names()) - 1))
        duplicates, duplicate_chars = _duplicates(lines)
        return (
            n_lines, chars / count,
            *(sum(1 for line in lines if len(line) <= k) / count for k in p.max_k_chars_per_line_tresholds),
            *(sum(1 for line in lines if len(line) >= k) / count for k in p.min_k_chars_per_line_thresholds),
            sum(1 for line in lines if line.endswith(END_PUNCTUATION)) / count,
            sum(1 for line in lines if line.strip()[:1] in ("-", "*", "•") and line.strip()) / count,
            duplicates / count,
            duplicate_chars / chars if chars else 0.0,
        )

    def decide(self, stats: dict[str, Sequence[Any]]) -> list[Rejection | None]:
        return [None] * len(stats["n_lines"])
