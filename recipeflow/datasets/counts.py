"""How a version's counts read, wherever they are shown: the terminal summary of a run, the
run's artifacts, ``recipeflow diff`` and ``recipeflow versions``. One place, so every view
shows the same numbers: documents in/out/rejected per step, the documents each rejection
reason removed, and tokens in/out once documents carry ``n_tokens``."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

TOP_REASONS = 3  # reasons shown on one line of a table; the manifest keeps all of them


def step_label(op: Mapping[str, Any]) -> str:
    """The step's name; a route's with the values it takes (``route:de [lang=de]``)."""
    route = op.get("route")
    if not route:
        return str(op.get("step"))
    values = route.get("values")
    taken = ",".join(map(str, values)) if values is not None else "not " + ",".join(map(str, route.get("exclude", [])))
    return f"{op.get('step')} [{route.get('field')}={taken}]"


def step_row(op: Mapping[str, Any]) -> dict[str, Any]:
    """One step's counts as a flat row (for tables): node, step, operator, documents in, out,
    rejected, tokens in, out (None when documents carried no ``n_tokens`` there), reasons."""
    return {
        "node": op.get("node"),
        "step": step_label(op),
        "operator": op.get("operator"),
        "docs_in": op.get("docs_in"),
        "docs_out": op.get("docs_out"),
        # Documents a route leaves go to other branches: they are not rejected.
        "rejected": None if op.get("operator") == "route" else op.get("rejected"),
        "tokens_in": op.get("tokens_in"),
        "tokens_out": op.get("tokens_out"),
        "reasons": format_reasons(op.get("reasons") or {}),
    }


def format_reasons(reasons: Mapping[str, int], top: int = TOP_REASONS) -> str:
    """``"too_short 40, bad_lang 3 (+2 more)"``: the reasons that removed most documents."""
    ordered = sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0]))
    text = ", ".join(f"{reason} {n}" for reason, n in ordered[:top])
    if len(ordered) > top:
        text += f" (+{len(ordered) - top} more)"
    return text


def has_tokens(operators: Sequence[Mapping[str, Any]]) -> bool:
    return any(op.get("tokens_out") is not None for op in operators)


def _number(value: Any) -> str:
    return "" if value is None else f"{value:,}" if isinstance(value, int) else str(value)


def step_table_lines(operators: Sequence[Mapping[str, Any]], indent: str = "  ") -> list[str]:
    """The per-step table of the terminal summary (token columns only when there are tokens)."""
    tokens = has_tokens(operators)
    header = f"{'step':<34} {'operator':<22} {'in':>8} {'out':>8} {'rejected':>9}"
    if tokens:
        header += f" {'tokens in':>13} {'tokens out':>13}"
    lines = [indent + header + "  rejected by reason"]
    for op in operators:
        row = step_row(op)
        line = (
            f"{row['step']:<34} {row['operator']:<22} {_number(row['docs_in']):>8} "
            f"{_number(row['docs_out']):>8} {_number(row['rejected']):>9}"
        )
        if tokens:
            line += f" {_number(row['tokens_in']):>13} {_number(row['tokens_out']):>13}"
        lines.append((indent + line + (f"  {row['reasons']}" if row["reasons"] else "")).rstrip())
        if op.get("overwrote"):
            lines.append(f"{indent}{'':<34} overwrote the input's {', '.join(op['overwrote'])}")
    return lines


def step_table_markdown(operators: Sequence[Mapping[str, Any]]) -> list[str]:
    """The same table in Markdown (the run's summary artifact), token columns only when there
    are tokens, as on the terminal."""
    tokens = has_tokens(operators)
    lines = [
        "| step | operator | in | out | rejected |" + (" tokens in | tokens out |" if tokens else "") + " reasons |",
        "|---|---|---:|---:|---:|" + ("---:|---:|" if tokens else "") + "---|",
    ]
    for op in operators:
        r = step_row(op)
        counted = f" {_number(r['tokens_in'])} | {_number(r['tokens_out'])} |" if tokens else ""
        lines.append(
            f"| {r['step']} | {r['operator']} | {_number(r['docs_in'])} | {_number(r['docs_out'])} | "
            f"{_number(r['rejected'])} |{counted} {r['reasons']} |"
        )
    return lines


def output_tokens(manifest: Mapping[str, Any]) -> int | None:
    """Tokens in a version's data files (None: its documents have no ``n_tokens``)."""
    return manifest.get("tokens")


def mix_lines(manifest: Mapping[str, Any]) -> list[str]:
    """What a mix by tokens took of each source (tokens available/taken, epochs, documents),
    each phase's tokens, and the output's partitions and repeats, one line each."""
    lines: list[str] = []
    for op in manifest.get("operators", []):
        summary = op.get("summary") or {}
        if op.get("operator") != "mix" or summary.get("by") != "tokens":
            continue
        lines.append(f"mix {op['step']}: {summary['tokens']:,} tokens (target {summary['target_tokens']:,.0f})")
        if summary.get("rescaled"):
            short = ", ".join(summary["rescaled"]["short_sources"])
            lines.append(f"  rescaled (on_short: rescale): short of tokens within max_epochs: {short}")
        for name, o in summary["origins"].items():
            lines.append(
                f"  {name:<20} available {o['tokens_available']:>13,} taken {o['tokens_taken']:>13,} "
                f"epochs {o['epochs']:.2f}  documents {o['documents_selected']:,} of {o['documents_available']:,}"
                + (f" ({o['documents_output']:,} with copies)" if o["documents_output"] != o["documents_selected"] else "")
            )
        for phase in summary.get("phases", []):
            parts = ", ".join(f"{n} {v['tokens']:,}" for n, v in phase["sources"].items())
            lines.append(
                f"  phase {phase['name']:<14} {phase['tokens']:>13,} tokens of {phase['budget_tokens']:,.0f}"
                f" in {phase['documents']:,} documents ({parts})"
            )
    for op in manifest.get("operators", []):
        if op.get("operator") == "rehydrate":
            lines.append(f"rehydrate {op['step']}: {op.get('docs_added', 0):,} copies added")
    for value, part in (manifest.get("partitions") or {}).items():
        tokens = f", {part['tokens']:,} tokens" if part.get("tokens") is not None else ""
        lines.append(f"partition {value}: {part['rows']:,} documents{tokens} in {part['files']} files")
    return lines
