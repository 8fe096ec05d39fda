"""What a finished run prints: per output, the version committed (or why none was), its
documents and tokens, unreadable records, a mix's takes, tasks computed and reused, the
per-step table and any contamination found."""

from __future__ import annotations

from typing import Any, Mapping

from recipeflow.datasets.counts import mix_lines, step_table_lines


def result_lines(results: list[dict[str, Any]]) -> list[str]:
    """The terminal summary of a run's results (manifests, or ``committed: false`` notes)."""
    lines: list[str] = []
    for m in results:
        if not m.get("committed", True):
            lines += ["", m["message"]]
            continue
        lines += ["", f"version {m['version']} written to {m['dataset']}/versions/{m['version']}"]
        if "model" in m:
            metrics = ", ".join(f"{k} {v:.3f}" for k, v in m["metrics"].items() if isinstance(v, float))
            lines.append(f"  model {m['model']['name']} trained on {m['rows']} documents; held-out: {metrics}")
            continue
        tokens = f" ({m['tokens']:,} tokens)" if m.get("tokens") is not None else ""
        files = f"{len(m['files'])} file" + ("" if len(m["files"]) == 1 else "s")
        lines.append(f"  {m['rows']} documents{tokens} in {files}; parent: {m['parent']}")
        snapshot = m.get("snapshot") or {}
        if snapshot.get("stacked"):
            lines.append(f"  a snapshot: {snapshot['new_rows']} new documents, {snapshot['parent_rows']} shared with the parent")
        for name, read in (m.get("unreadable") or {}).items():
            if read["unreadable"]:
                reasons = "; ".join(f"{n}× {reason}" for reason, n in read["top_reasons"])
                lines.append(f"  input {name}: {read['unreadable']} of {read['records']} records unreadable ({reasons})")
        lines += [f"  {line}" for line in mix_lines(m)]
        tasks = m["run"].get("tasks")
        if tasks:
            lines.append(f"  tasks: {tasks['computed']} computed, {tasks['cached']} reused a stored result")
            lines += [f"  {line}" for line in retried_lines(tasks)]
        lines += step_table_lines(m["operators"])
        for op in m["operators"]:
            if op["operator"] == "decontaminate" and op.get("summary"):
                lines.append(f"  contamination found by {op['step']}:")
                lines += contamination_lines(op["summary"], indent="    ")
    return lines


def retried_lines(tasks: Mapping[str, Any]) -> list[str]:
    """The tasks that started more than once: a worker (a Ray node, a Dask worker) was lost in
    the middle of them, or they raised and Prefect retried them."""
    retried = tasks.get("retried") or []
    if not retried:
        return []
    head = f"retried {len(retried)} task" + ("" if len(retried) == 1 else "s")
    return [f"{head} (a worker was lost in the middle of it, or it raised):"] + [
        f"  {note['task']}: {note['attempts']} attempts" for note in retried
    ]


def contamination_lines(summary: Mapping[str, Mapping[str, int]], indent: str = "") -> list[str]:
    """decontaminate's per-benchmark table: items hit and documents hit, exact and paraphrase."""
    lines = [f"{indent}{'benchmark':<24} {'items':>7} {'hit':>6} {'exact':>6} {'para':>6}"
             f" {'docs hit':>9} {'exact':>6} {'para':>6}"]
    for name, c in summary.items():
        lines.append(
            f"{indent}{name:<24} {c['items']:>7} {c['items_hit']:>6} {c['items_hit_exact']:>6}"
            f" {c['items_hit_paraphrase']:>6} {c['documents_hit']:>9} {c['documents_hit_exact']:>6}"
            f" {c['documents_hit_paraphrase']:>6}"
        )
    return lines
