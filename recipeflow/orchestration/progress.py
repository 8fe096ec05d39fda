"""A run's progress on the terminal, counted in what the work is made of (documents for a
stage, files for a scan): one bar per stage with done / total, a rate and the time left.

Off a terminal (a log file, CI, ``nohup``) a bar is no use: it is cut at 80 columns and
redrawn into a mess. There each stage gets one plain line every ``LINE_INTERVAL_S`` seconds
while it runs, and one when it ends. On a terminal, Prefect's console log handlers print
through the bars' console while they are drawn, so a Prefect notice goes above the bars
instead of cutting through them.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Sequence

from prefect.futures import PrefectFuture, as_completed
from rich.console import Console
from rich.progress import BarColumn, Progress, ProgressColumn, Task, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.text import Text

LINE_INTERVAL_S = 10.0  # off a terminal: seconds between two lines of a running stage


class _Rate(ProgressColumn):
    """``1,850 documents/s`` (Rich's estimate over the last 30 s)."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("" if speed is None else f"{_amount(speed)} {task.fields['unit']}/s", style="progress.data.speed")


@dataclass
class _Stage:
    label: str
    total: int
    unit: str
    started: float = field(default_factory=time.monotonic)
    done: int = 0

    def line(self, now: float) -> str:
        elapsed = max(now - self.started, 1e-9)
        rate = self.done / elapsed
        percent = 100 * self.done / self.total if self.total else 100
        left = f", {_clock((self.total - self.done) / rate)} left" if 0 < self.done < self.total else ""
        return (f"{self.label}: {self.done:,}/{self.total:,} {self.unit} ({percent:.0f}%), "
                f"{_amount(rate)} {self.unit}/s{left}, {_clock(elapsed)} elapsed")


def _amount(rate: float) -> str:
    """A rate as people read it: ``1,850``, ``2.5`` (a slow scan of a few files is not 0)."""
    return f"{rate:,.0f}" if rate >= 10 else f"{rate:.1f}"


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class ProgressBar:
    """The run's progress display: bars on a terminal, lines elsewhere, nothing when disabled."""

    def __init__(self, console: Console | None, bars: Progress | None) -> None:
        self.console = console
        self.bars = bars
        self._running: dict[int, _Stage] = {}
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._ticker: threading.Thread | None = None
        self._redirected: list[tuple[Any, Any]] = []  # (Prefect console handler, its own console)

    @classmethod
    def start(cls, enabled: bool, console: Console | None = None) -> "ProgressBar":
        if not enabled:
            return cls(None, None)
        console = console or Console(stderr=True)
        if not console.is_terminal:
            display = cls(console, None)
            display._ticker = threading.Thread(target=display._tick, name="recipeflow-progress", daemon=True)
            display._ticker.start()
            return display
        bars = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.completed:,.0f}/{task.total:,.0f} {task.fields[unit]}"),
            _Rate(),
            TimeRemainingColumn(),
            TimeElapsedColumn(),
            console=console,
        )
        bars.start()
        display = cls(console, bars)
        display._redirect_prefect_logs()
        return display

    def wait(
        self, label: str, futures: Sequence[PrefectFuture], sizes: Sequence[int] | None = None, unit: str = "tasks"
    ) -> list[Any]:
        """Results of ``futures`` in submission order, the display advancing as each finishes:
        by one, or by ``sizes[i]`` (what task ``i`` did, in ``unit``: documents, files...)."""
        weight = {id(f): (sizes[i] if sizes is not None else 1) for i, f in enumerate(futures)}
        stage = self._begin(label, sum(weight.values()), unit)
        for future in as_completed(list(futures)):
            future.result()  # raises at once if a task failed
            self._advance(stage, weight[id(future)])
        self._end(stage)
        return [f.result() for f in futures]

    def stop(self) -> None:
        self._stopped.set()
        if self.bars is not None:
            self.bars.stop()
        for handler, own in self._redirected:
            handler.console = own
        self._redirected = []

    # -- one stage ------------------------------------------------------------------------------

    def _begin(self, label: str, total: int, unit: str) -> Any:
        if self.bars is not None:
            return self.bars.add_task(label, total=total, unit=unit)
        stage = _Stage(label, total, unit)
        if self.console is not None:
            with self._lock:
                self._running[id(stage)] = stage
        return stage

    def _advance(self, stage: Any, amount: int) -> None:
        if self.bars is not None:
            self.bars.advance(stage, amount)
        else:
            stage.done += amount

    def _end(self, stage: Any) -> None:
        if self.bars is not None or self.console is None:
            return
        with self._lock:
            self._running.pop(id(stage), None)
        self.console.print(stage.line(time.monotonic()), soft_wrap=True, highlight=False)

    def _tick(self) -> None:
        """Off a terminal: a line per running stage every ``LINE_INTERVAL_S`` seconds."""
        while not self._stopped.wait(LINE_INTERVAL_S):
            now = time.monotonic()
            with self._lock:
                lines = [s.line(now) for s in self._running.values()]
            for line in lines:
                self.console.print(line, soft_wrap=True, highlight=False)

    def _redirect_prefect_logs(self) -> None:
        """Prefect's console handlers print through the bars' console while they are drawn."""
        from prefect.logging.handlers import PrefectConsoleHandler

        loggers = [logging.getLogger()] + [
            logger for logger in logging.Logger.manager.loggerDict.values() if isinstance(logger, logging.Logger)
        ]
        handlers = {id(h): h for logger in loggers for h in logger.handlers if isinstance(h, PrefectConsoleHandler)}
        for handler in handlers.values():
            self._redirected.append((handler, handler.console))
            handler.console = self.bars.console
