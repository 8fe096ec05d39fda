"""Progress counted in documents: bars with a rate and the time left on a terminal, plain
lines at an interval elsewhere, Prefect's notices printed above the bars."""

from __future__ import annotations

import io
import re

import yaml
from click.testing import CliRunner
from prefect import flow, get_run_logger, task
from prefect.task_runners import ThreadPoolTaskRunner
from rich.console import Console

from recipeflow.cli import main
from recipeflow.orchestration import progress
from recipeflow.orchestration.progress import ProgressBar
from tests.conftest import SAMPLE_WARC


@task
def _work(n: int) -> int:
    return n


@flow(task_runner=ThreadPoolTaskRunner(max_workers=2))
def _two_stages(console: Console) -> list[int]:
    bar = ProgressBar.start(True, console)
    try:
        first = bar.wait("main: clean", [_work.submit(n) for n in (1, 2, 3)], [100, 200, 300], unit="documents")
        get_run_logger().warning("a notice from Prefect while the bars are drawn")
        second = bar.wait("scan crawl", [_work.submit(n) for n in (4, 5)], unit="files")
    finally:
        bar.stop()
    return first + second


def test_terminal_bars_count_documents_and_prefect_notices_go_through_their_console(prefect_api):
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=160, color_system=None)
    assert _two_stages(console) == [1, 2, 3, 4, 5]
    text = out.getvalue()
    assert "main: clean" in text and "600/600 documents" in text and "documents/s" in text
    assert "2/2 files" in text
    # Printed by Prefect's console handler, through the bars' console (not cut into a bar line).
    assert "a notice from Prefect while the bars are drawn" in text


def test_a_run_off_a_terminal_writes_one_line_per_stage_at_an_interval(tmp_path, prefect_api, monkeypatch):
    monkeypatch.setattr(progress, "LINE_INTERVAL_S", 0.05)
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(yaml.safe_dump({
        "name": "lines",
        "inputs": {"pages": {"path": str(SAMPLE_WARC), "format": "warc"}},
        "process": [{"html_extract": {}}, {"text_length_filter": {"min_length": 1500}}],
        "output": {"path": str(tmp_path / "out")},
        "run": {"executor": "threads", "workers": 2, "shard_size": 50},
    }))
    result = CliRunner().invoke(main, ["run", str(recipe)])  # progress on; CliRunner is no terminal
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    stage = [line for line in lines if line.startswith("main: html_extract → text_length_filter: ")]
    # The stage's last line: every record of the WARC, a rate, the time taken; no bar characters.
    assert re.fullmatch(r"main: html_extract → text_length_filter: (\d[\d,]*)/\1 documents \(100%\), "
                        r"[\d,.]+ documents/s, \d+:\d\d:\d\d elapsed", stage[-1]), stage
    assert any(re.fullmatch(r"scan pages: 1/1 files \(100%\).*", line) for line in lines), lines
    assert not any("━" in line for line in lines)
