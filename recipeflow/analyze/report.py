"""Reports of ``recipeflow analyze``: a self-contained HTML page (inline SVG histograms, no
scripts, no external files), a table for the terminal, and the rows and markdown of the flow
run's artifacts. Plain rendering of an :class:`~recipeflow.analyze.analysis.Analysis`; nothing
here reads data or talks to Prefect.
"""

from __future__ import annotations

import html
import json
import math
from dataclasses import dataclass
from typing import Any, Sequence

from recipeflow.analyze.model import Analysis, NodeAnalysis, StatisticAnalysis, StepAnalysis

SUMMARY_KEYS = ("p1", "p5", "p10", "p25", "p50", "p75", "p90", "p95", "p99", "min", "max", "mean")
ALL_STATISTICS = "(all statistics)"
NOT_ANALYSED = "not analysed (barrier)"
SPARK = "▁▂▃▄▅▆▇█"

EXPLANATION = (
    "Dropped alone: documents the filter's thresholds reject among all sampled documents that "
    "reach it (only a mapper, such as html_extract, removes documents before a later step). "
    "Dropped in sequence: documents it rejects among those every earlier step kept, as in a "
    "real run. Thresholds are the filter's numeric min_*/max_* parameters. Barriers "
    "(deduplicators, selectors) are not run."
)


# ---------------------------------------------------------------------------------------------
# Numbers and rows


def format_number(value: float | int | None) -> str:
    """A number for people: integers without a decimal point, others to 6 significant digits."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.6g}"


def thresholds_text(thresholds: dict[str, float]) -> str:
    return ", ".join(f"{name}={format_number(value)}" for name, value in thresholds.items())


def _share(count: int, total: int) -> str:
    return f"{count} ({100.0 * count / total:.1f}%)" if total else str(count)


def sample_text(analysis: Analysis) -> str:
    if analysis.sample:
        return f"the first {analysis.sample} documents of each node, in input order"
    return "every document"


@dataclass
class SummaryRow:
    """One line of the summary: a statistic, a filter's total, a mapper or a barrier."""

    node: str
    step: str
    operator: str
    kind: str
    statistic: str
    summary: dict[str, float]
    threshold: str
    docs_in: int | None
    docs_in_sequence: int | None
    dropped_alone: int | None
    dropped_in_sequence: int | None
    note: str = ""


def _statistic_row(node: str, step: StepAnalysis, stat: StatisticAnalysis) -> SummaryRow:
    return SummaryRow(
        node, step.step, step.operator, step.kind, stat.name, stat.summary,
        thresholds_text(stat.thresholds), step.docs_in, step.docs_in_sequence,
        stat.dropped_alone, stat.dropped_in_sequence,
        "" if stat.kind == "numeric" else _top_values_text(stat),
    )


def _top_values_text(stat: StatisticAnalysis, count: int = 3) -> str:
    return "top: " + ", ".join(f"{value} ({n})" for value, n in stat.top_values[:count])


def _needs_total_row(step: StepAnalysis) -> bool:
    """Whether the statistic rows leave something out: several statistics, thresholds that
    match none of them, or rejections that name no statistic of the filter."""
    if len(step.statistics) != 1 or step.unmatched_thresholds:
        return True
    [stat] = step.statistics
    return (stat.dropped_alone, stat.dropped_in_sequence) != (step.dropped_alone, step.dropped_in_sequence)


def _filter_rows(node: str, step: StepAnalysis) -> list[SummaryRow]:
    rows = [_statistic_row(node, step, stat) for stat in step.statistics]
    if _needs_total_row(step):
        label = ALL_STATISTICS if step.statistics else "—"
        threshold = step.unmatched_thresholds if step.statistics else step.thresholds
        rows.append(
            SummaryRow(
                node, step.step, step.operator, step.kind, label, {}, thresholds_text(threshold),
                step.docs_in, step.docs_in_sequence, step.dropped_alone, step.dropped_in_sequence,
                "" if step.statistics else "no document reached it",
            )
        )
    return rows


def summary_rows(analysis: Analysis) -> list[SummaryRow]:
    """Every step of every analysed node, in recipe order; a filter gives one row per statistic."""
    rows: list[SummaryRow] = []
    for node in analysis.nodes:
        for step in node.steps:
            if not step.analysed:
                rows.append(
                    SummaryRow(node.name, step.step, step.operator, step.kind, "", {}, "",
                               None, None, None, None, NOT_ANALYSED)
                )
            elif step.kind == "filter" or step.statistics:  # a filter, or tokenize's n_tokens
                rows.extend(_filter_rows(node.name, step))
            else:
                rows.append(
                    SummaryRow(node.name, step.step, step.operator, step.kind, "", {}, "",
                               step.docs_in, step.docs_in_sequence, step.dropped_alone,
                               step.dropped_in_sequence)
                )
    return rows


def table_rows(analysis: Analysis) -> list[dict[str, Any]]:
    """Rows of the table artifact: every percentile, the threshold and both drop counts."""
    out = []
    for row in summary_rows(analysis):
        record: dict[str, Any] = {
            "node": row.node, "step": row.step, "operator": row.operator, "kind": row.kind,
            "statistic": row.statistic,
        }
        record.update({k: _rounded(row.summary.get(k)) for k in SUMMARY_KEYS})
        record.update(
            threshold=row.threshold,
            docs_in=_blank(row.docs_in),
            dropped_alone=_blank(row.dropped_alone),
            docs_in_sequence=_blank(row.docs_in_sequence),
            dropped_in_sequence=_blank(row.dropped_in_sequence),
            note=row.note,
        )
        out.append(record)
    return out


def _rounded(value: float | None) -> float | str:
    return "" if value is None else round(value, 6)


def _blank(value: int | None) -> int | str:
    return "" if value is None else value


# ---------------------------------------------------------------------------------------------
# Terminal and markdown

_COLUMNS = ("step", "operator", "statistic", "p5", "p50", "p95", "threshold", "dropped alone", "dropped in sequence")


def _cells(row: SummaryRow) -> list[str]:
    if row.note == NOT_ANALYSED:
        return [row.step, row.operator, "", "", "", "", NOT_ANALYSED, "", ""]
    alone = "" if row.dropped_alone is None else _share(row.dropped_alone, row.docs_in or 0)
    in_sequence = "" if row.dropped_in_sequence is None else _share(row.dropped_in_sequence, row.docs_in_sequence or 0)
    percentiles = [format_number(row.summary[k]) if k in row.summary else "" for k in ("p5", "p50", "p95")]
    statistic = row.statistic or f"({row.kind})"
    return [row.step, row.operator, statistic, *percentiles, _clipped(row.threshold), alone, in_sequence]


def _clipped(text: str, width: int = 48) -> str:
    """A long list of thresholds, cut to keep the table readable (the HTML report has all)."""
    return text if len(text) <= width else text[: width - 1] + "…"


def _node_line(node: NodeAnalysis) -> str:
    return (
        f"node {node.name} (from {', '.join(node.sources)}): {node.documents} documents sampled, "
        f"{node.unreadable} unreadable, {node.kept_in_sequence} kept by every analysed step"
    )


def render_terminal(analysis: Analysis) -> str:
    """A fixed-width table per node: statistic, p5/p50/p95, threshold, drops alone/in sequence."""
    rows = summary_rows(analysis)
    lines = [f"analyze {analysis.recipe}: {sample_text(analysis)}"]
    for node in analysis.nodes:
        cells = [_cells(r) for r in rows if r.node == node.name]
        widths = [max(len(c) for c in column) for column in zip(_COLUMNS, *cells)]
        numeric = {3, 4, 5, 7, 8}
        lines += ["", _node_line(node)]
        for line in [list(_COLUMNS)] + cells:
            padded = [c.rjust(w) if i in numeric else c.ljust(w) for i, (c, w) in enumerate(zip(line, widths))]
            lines.append("  " + "  ".join(padded).rstrip())
    for name in analysis.skipped_nodes:
        lines.append(f"\nnode {name}: no filter, and no analysed node reads it: not analysed")
    return "\n".join(lines)


def sparkline(counts: Sequence[int]) -> str:
    """Counts as block characters, for a histogram in plain text."""
    top = max(counts, default=0)
    if not top:
        return " " * len(counts)
    return "".join(SPARK[min(len(SPARK) - 1, math.ceil(c / top * len(SPARK)) - 1)] if c else " " for c in counts)


def _markdown_cell(text: str) -> str:
    return text.replace("|", "\\|")


def render_markdown(analysis: Analysis) -> str:
    """The markdown artifact: the summary table per node and a text histogram per statistic."""
    rows = summary_rows(analysis)
    lines = [f"# analyze: {analysis.recipe}", "", f"Sample: {sample_text(analysis)}. "
             "Nothing was dropped and no version was committed.", "", EXPLANATION]
    for node in analysis.nodes:
        lines += ["", f"## node {node.name}", "", _node_line(node) + ".", ""]
        lines += ["| " + " | ".join(_COLUMNS) + " |", "|" + "---|" * 2 + "---|" + "---:|" * 3 + "---|" + "---:|" * 2]
        lines += ["| " + " | ".join(_markdown_cell(c) for c in _cells(r)) + " |" for r in rows if r.node == node.name]
        histograms = [
            f"- **{step.step} {step.operator} · {stat.name}** `{sparkline(stat.histogram.counts)}` "
            f"{format_number(stat.summary['min'])} … {format_number(stat.summary['max'])}"
            + (f"; thresholds {thresholds_text(stat.thresholds)}" if stat.thresholds else "")
            for step in node.steps
            for stat in step.statistics
            if stat.histogram is not None
        ]
        if histograms:
            lines += ["", "### distributions", ""] + histograms
    if analysis.skipped_nodes:
        lines += ["", "Not analysed (no filter, read by no analysed node): " + ", ".join(analysis.skipped_nodes)]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# SVG

_WIDTH, _HEIGHT = 640, 240
_LEFT, _RIGHT, _TOP, _BOTTOM = 56, 16, 40, 40
_BAR_HEIGHT = 18


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def nice_ticks(low: float, high: float, target: int = 5) -> list[float]:
    """About ``target`` round values (1, 2, 2.5 or 5 times a power of ten) within [low, high]."""
    span = high - low
    if span <= 0:
        return [low]
    raw = span / target
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.ceil(low / step)
    return [i * step for i in range(first, math.floor(high / step) + 1)]


def _threshold_marks(stat: StatisticAnalysis, x_of, low: float, high: float) -> list[str]:
    """A dashed vertical line per threshold; one off the scale sits at the edge with an arrow."""
    marks = []
    for i, (name, value) in enumerate(stat.thresholds.items()):
        label = f"{name}={format_number(value)}"
        if value < low:
            x, label = x_of(low), f"◂ {label}"
        elif value > high:
            x, label = x_of(high), f"{label} ▸"
        else:
            x = x_of(value)
        # Anchored away from the nearer edge, so the label stays inside the picture.
        where = (x - _LEFT) / (_WIDTH - _LEFT - _RIGHT)
        anchor = "start" if where < 0.25 else "end" if where > 0.75 else "middle"
        y = 14 + 13 * (i % 2)
        marks.append(
            f'<line class="threshold" stroke="#d0342c" stroke-width="1.5" stroke-dasharray="5 3" x1="{x:.1f}" x2="{x:.1f}" y1="{_TOP}" y2="{_HEIGHT - _BOTTOM}"/>'
            f'<text class="threshold-label" fill="#d0342c" font-size="11" x="{x:.1f}" y="{y}" text-anchor="{anchor}">{_e(label)}</text>'
        )
    return marks


def histogram_svg(stat: StatisticAnalysis) -> str:
    """One statistic's histogram with its thresholds as vertical lines."""
    if stat.histogram is None:
        return _message_svg(stat, "no values")
    edges, counts = stat.histogram.edges, stat.histogram.counts
    low, high = edges[0], edges[-1]
    plot_w, plot_h = _WIDTH - _LEFT - _RIGHT, _HEIGHT - _TOP - _BOTTOM
    top = max(counts) or 1

    def x_of(value: float) -> float:
        return _LEFT + (value - low) / (high - low) * plot_w

    parts = [_svg_open(_WIDTH, _HEIGHT, f"histogram of {stat.name}")]
    for left, right, count in zip(edges, edges[1:], counts):
        h = count / top * plot_h
        parts.append(
            f'<rect class="bar" fill="#4a7ab5" x="{x_of(left):.1f}" y="{_HEIGHT - _BOTTOM - h:.1f}" '
            f'width="{max(x_of(right) - x_of(left) - 1, 0.5):.1f}" height="{h:.1f}">'
            f"<title>{_e(format_number(left))} – {_e(format_number(right))}: {count}</title></rect>"
        )
    parts.append(f'<line class="axis" stroke="#555" x1="{_LEFT}" x2="{_WIDTH - _RIGHT}" y1="{_HEIGHT - _BOTTOM}" y2="{_HEIGHT - _BOTTOM}"/>')
    parts.append(f'<line class="axis" stroke="#555" x1="{_LEFT}" x2="{_LEFT}" y1="{_TOP}" y2="{_HEIGHT - _BOTTOM}"/>')
    for tick in nice_ticks(low, high):
        parts.append(f'<text class="tick" fill="#444" font-size="11" x="{x_of(tick):.1f}" y="{_HEIGHT - _BOTTOM + 16}" text-anchor="middle">{_e(format_number(tick))}</text>')
    parts.append(f'<text class="tick" fill="#444" font-size="11" x="{_LEFT - 6}" y="{_TOP + 4}" text-anchor="end">{top}</text>')
    parts.append(f'<text class="tick" fill="#444" font-size="11" x="{_LEFT - 6}" y="{_HEIGHT - _BOTTOM}" text-anchor="end">0</text>')
    parts.append(f'<text class="caption" fill="#222" font-size="12" x="{_LEFT}" y="{_HEIGHT - 6}">{_e(stat.name)} ({stat.values} documents)</text>')
    parts += _threshold_marks(stat, x_of, low, high)
    parts.append("</svg>")
    return "".join(parts)


def categories_svg(stat: StatisticAnalysis) -> str:
    """A non-numeric statistic: its most frequent values as horizontal bars."""
    if not stat.top_values:
        return _message_svg(stat, "no values")
    height = _TOP + _BAR_HEIGHT * len(stat.top_values) + 10
    label_w, plot_w = 160, _WIDTH - 160 - 80
    top = max(n for _, n in stat.top_values)
    parts = [_svg_open(_WIDTH, height, f"most frequent values of {stat.name}")]
    parts.append(f'<text class="caption" fill="#222" font-size="12" x="4" y="16">{_e(stat.name)}: most frequent values ({stat.values} documents)</text>')
    for i, (value, count) in enumerate(stat.top_values):
        y = _TOP + i * _BAR_HEIGHT
        shown = value if len(value) <= 24 else value[:23] + "…"
        parts.append(f'<text class="tick" fill="#444" font-size="11" x="{label_w - 6}" y="{y + 13}" text-anchor="end">{_e(shown)}</text>')
        parts.append(f'<rect class="bar" fill="#4a7ab5" x="{label_w}" y="{y + 2}" width="{max(count / top * plot_w, 0.5):.1f}" height="{_BAR_HEIGHT - 4}"><title>{_e(value)}: {count}</title></rect>')
        parts.append(f'<text class="tick" fill="#444" font-size="11" x="{label_w + count / top * plot_w + 4:.1f}" y="{y + 13}">{count}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _svg_open(width: int, height: int, label: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" role="img" aria-label="{_e(label)}">'
    )


def _message_svg(stat: StatisticAnalysis, message: str) -> str:
    return (
        _svg_open(_WIDTH, 60, f"{stat.name}: {message}")
        + f'<text class="caption" fill="#222" font-size="12" x="4" y="34">{_e(stat.name)}: {_e(message)}</text></svg>'
    )


# ---------------------------------------------------------------------------------------------
# HTML

_CSS = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto; max-width: 1100px; color: #222; padding: 0 1em; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: .2em; margin-top: 2em; }
h3 { margin: 1.6em 0 .3em; } h4 { margin: .6em 0 .2em; }
table { border-collapse: collapse; margin: .5em 0 1em; }
th, td { border: 1px solid #ddd; padding: .25em .6em; text-align: right; }
th:first-child, td:first-child, td.text, th.text { text-align: left; }
th { background: #f4f4f4; }
.meta, .note { color: #555; }
.stat { display: flex; flex-wrap: wrap; gap: 1.5em; align-items: flex-start; margin-bottom: 1em; }
code { background: #f4f4f4; padding: 0 .25em; }
svg .bar:hover { fill: #2c5687; }
"""


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], text_columns: Sequence[int] = (0,)) -> str:
    def cell(tag: str, i: int, value: str) -> str:
        cls = ' class="text"' if i in text_columns else ""
        return f"<{tag}{cls}>{_e(value)}</{tag}>"

    head = "<tr>" + "".join(cell("th", i, h) for i, h in enumerate(header)) + "</tr>"
    body = "".join("<tr>" + "".join(cell("td", i, v) for i, v in enumerate(r)) + "</tr>" for r in rows)
    return f"<table>{head}{body}</table>"


def _steps_table(node: NodeAnalysis) -> str:
    rows = []
    for step in node.steps:
        if not step.analysed:
            rows.append([step.step, step.operator, step.kind, "", "", "", "", NOT_ANALYSED])
            continue
        rows.append([
            step.step, step.operator, step.kind, str(step.docs_in), _share(step.dropped_alone, step.docs_in),
            str(step.docs_in_sequence), _share(step.dropped_in_sequence, step.docs_in_sequence),
            thresholds_text(step.thresholds),
        ])
    header = ["step", "operator", "kind", "in", "dropped alone", "in (sequence)", "dropped in sequence", "thresholds / note"]
    return _table(header, rows, text_columns=(0, 1, 2, 7))


def _percentiles_table(stat: StatisticAnalysis) -> str:
    if stat.kind != "numeric":
        return _table(["value", "documents"], [[v, str(n)] for v, n in stat.top_values])
    rows = [[key, format_number(stat.summary.get(key))] for key in SUMMARY_KEYS]
    rows += [["documents", str(stat.values)], ["missing", str(stat.missing)]]
    return _table(["", stat.name], rows)


def _statistic_html(step: StepAnalysis, stat: StatisticAnalysis) -> str:
    chart = histogram_svg(stat) if stat.kind == "numeric" else categories_svg(stat)
    drops = _table(
        ["", "documents", "dropped"],
        [
            ["alone", str(step.docs_in), _share(stat.dropped_alone, step.docs_in)],
            ["in sequence", str(step.docs_in_sequence), _share(stat.dropped_in_sequence, step.docs_in_sequence)],
        ],
    )
    thresholds = thresholds_text(stat.thresholds) or "none matched"
    return (
        f'<h4>{_e(stat.name)}</h4><p class="note">thresholds: {_e(thresholds)}</p>'
        f'<div class="stat"><div>{chart}</div><div>{_percentiles_table(stat)}</div><div>{drops}</div></div>'
    )


def _filter_html(step: StepAnalysis) -> str:
    params = ", ".join(f"{k}={json.dumps(v)}" for k, v in step.params.items()) or "defaults"
    parts = [f"<h3><code>{_e(step.step)}</code> {_e(step.operator)}</h3>", f'<p class="note">parameters: {_e(params)}</p>']
    parts.append(
        f"<p>Drops {_e(_share(step.dropped_alone, step.docs_in))} of the documents that reach it alone, "
        f"{_e(_share(step.dropped_in_sequence, step.docs_in_sequence))} in sequence.</p>"
    )
    if step.reasons:
        parts.append(_table(["reason", "dropped alone"], [[r, str(n)] for r, n in step.reasons.items()]))
    if step.unmatched_thresholds and step.statistics:
        parts.append(f'<p class="note">thresholds matching no statistic by name: {_e(thresholds_text(step.unmatched_thresholds))}</p>')
    if not step.statistics:
        parts.append('<p class="note">No document reached this filter: no statistics.</p>')
    parts += [_statistic_html(step, stat) for stat in step.statistics]
    return "".join(parts)


def _node_html(node: NodeAnalysis) -> str:
    parts = [f"<section><h2>node {_e(node.name)}</h2>", f"<p>{_e(_node_line(node))}.</p>", _steps_table(node)]
    parts += [_filter_html(step) for step in node.steps if step.analysed and (step.kind == "filter" or step.statistics)]
    if not node.has_filters:
        parts.append('<p class="note">This node has no filter; it runs because a later node reads it.</p>')
    parts.append("</section>")
    return "".join(parts)


def render_html(analysis: Analysis) -> str:
    """The report: one section per node, one histogram (inline SVG) per filter statistic."""
    run = f" Flow run <code>{_e(analysis.flow_run_id)}</code>." if analysis.flow_run_id else ""
    skipped = (
        f'<p class="note">Not analysed (no filter, read by no analysed node): {_e(", ".join(analysis.skipped_nodes))}</p>'
        if analysis.skipped_nodes else ""
    )
    body = "".join(_node_html(node) for node in analysis.nodes) or "<p>No node of this recipe has a filter.</p>"
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>recipeflow analyze: {_e(analysis.recipe)}</title><style>{_CSS}</style></head><body>"
        f"<h1>recipeflow analyze: {_e(analysis.recipe)}</h1>"
        f'<p class="meta">Sample: {_e(sample_text(analysis))}. Nothing was dropped and no version was committed.{run}</p>'
        f'<p class="note">{_e(EXPLANATION)}</p>{skipped}{body}</body></html>\n'
    )
