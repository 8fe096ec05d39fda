"""What a flow run keeps while it runs: where task results live, which finished work it may
reuse (and which it did), and the progress bar on the terminal."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Sequence

from prefect.futures import PrefectFuture, as_completed
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from recipeflow.engine.cache_address import CacheEntry
from recipeflow.engine.history import HistoryTarget


@dataclass
class ProgressBar:
    """A progress bar on the terminal, one line per stage."""

    progress: Progress | None

    @classmethod
    def start(cls, enabled: bool) -> "ProgressBar":
        if not enabled:
            return cls(None)
        progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=Console(stderr=True),
        )
        progress.start()
        return cls(progress)

    def wait(self, label: str, futures: Sequence[PrefectFuture]) -> list[Any]:
        """Results of ``futures`` in submission order, advancing the bar as each finishes."""
        bar = self.progress.add_task(label, total=len(futures)) if self.progress else None
        for future in as_completed(list(futures)):
            future.result()  # raises at once if a task failed
            if self.progress is not None and bar is not None:
                self.progress.advance(bar)
        return [f.result() for f in futures]

    def stop(self) -> None:
        if self.progress is not None:
            self.progress.stop()



@dataclass
class Work:
    """Where this run's task results live, whether finished work may be reused, the progress bar."""

    root: str
    reuse: bool
    bar: ProgressBar
    datasets: dict[str, Any] = dataclasses.field(default_factory=dict)  # input name -> DatasetInput
    history: dict[str, HistoryTarget] = dataclasses.field(default_factory=dict)  # by barrier step
    reused: dict[str, bool] = dataclasses.field(default_factory=dict)  # task name -> result existed
    gpu_pool: str | None = None  # GPU stages run as flow runs there (run.pools.gpu)

    def stored(self, name: str, entry: CacheEntry) -> bool:
        """Whether the work's result is stored under ``entry``; noted, so the run can say which
        tasks computed and which reused a result."""
        done = self.reuse and entry.finished(self.root)
        self.reused[name if name not in self.reused else f"{name} ({entry.address[:8]})"] = done
        return done

    def run(self, task_fn: Any, name: str, entry: CacheEntry | None = None) -> Any:
        """``task_fn`` named for the UI. Prefect's cached result is used only when reuse is on
        and the work's stored result still exists — ``recipeflow cache gc`` may have removed it."""
        refresh = not self.reuse or (entry is not None and not self.stored(name, entry))
        return task_fn.with_options(task_run_name=name, refresh_cache=refresh)

    def tally(self) -> dict[str, Any]:
        """Tasks that did their work in this run, and how many reused a stored result."""
        computed = [name for name, done in self.reused.items() if not done]
        reused = [name for name, done in self.reused.items() if done]
        return {"computed": len(computed), "cached": len(reused), "computed_tasks": computed, "reused_tasks": reused}
