"""What a flow run keeps while it runs: where task results live, which finished work it may
reuse (and which it did), and its progress display."""

from __future__ import annotations

import dataclasses
import pickle
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from prefect.futures import PrefectFuture

from recipeflow.engine import cache_address
from recipeflow.engine.cache_address import CacheEntry
from recipeflow.engine.history import HistoryTarget
from recipeflow.engine.stored_results import StoredResults
from recipeflow.orchestration import batches
from recipeflow.orchestration.progress import ProgressBar


class Unwalked:
    """A task parameter Prefect does not walk. Prefect visits every list, dict, dataclass and
    model in a task's parameters, looking for futures (2 ms a shard for a batch's shard list),
    on the flow's side and again in the worker; its ``quote`` stops the first walk only, as the
    process pool strips annotations before sending parameters to a worker. A plain object is
    neither walked nor stripped, on every executor.

    The value is pickled when the holder is made, with the standard (C) pickler, in the order
    the flow submits its batches. Prefect's process pool pickles each task's parameters in one
    of its resolver threads, with cloudpickle, which runs Python code for every object: a
    1,000-shard batch took longer to send than a 100-shard one, so small batches overtook the
    large ones meant to start first, and a large one ran last while the other worker idled."""

    __slots__ = ("_pickled", "_value")

    def __init__(self, value: list[Any]):
        self._pickled = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        self._value: list[Any] | None = None

    @property
    def value(self) -> list[Any]:
        if self._value is None:
            self._value = pickle.loads(self._pickled)
        return self._value

    def __getstate__(self) -> bytes:
        return self._pickled

    def __setstate__(self, state: bytes) -> None:
        self._pickled, self._value = state, None


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
    tasks_per_stage: int = batches.TASKS_PER_WORKER  # Prefect tasks a stage's shards are batched into

    def stored(self, name: str, entry: CacheEntry) -> bool:
        """Whether the work's result is stored under ``entry``; noted, so the run can say which
        tasks computed and which reused a result."""
        done = self.reuse and entry.finished(self.root)
        self._note(name, entry, done)
        return done

    def locate(self, names: Sequence[str], entries: Sequence[CacheEntry]) -> list[str | None]:
        """Where each unit of work's stored result is (None: not stored, or reuse is off), all
        found at once (:mod:`recipeflow.engine.stored_results`); each noted by its ``names``
        entry, as :meth:`stored` does."""
        found = StoredResults(self.root, self.reuse).locate(entries)
        for name, entry, where in zip(names, entries, found):
            self._note(name, entry, where is not None)
        return found

    def _note(self, name: str, entry: CacheEntry, reused: bool) -> None:
        """Note whether the work named ``name`` reuses its stored result (for the summary)."""
        self.reused[name if name not in self.reused else f"{name} ({entry.address[:8]})"] = reused

    def run(self, task_fn: Any, name: str, entry: CacheEntry | None = None) -> Any:
        """``task_fn`` named for the UI. Prefect's cached result is used only when reuse is on
        and the work's stored result still exists — ``recipeflow cache gc`` may have removed it."""
        refresh = not self.reuse or (entry is not None and not self.stored(name, entry))
        return task_fn.with_options(task_run_name=name, refresh_cache=refresh)

    def map_batches(
        self,
        task_fn: Any,
        task_label: str,
        names: list[str],
        entries: list[CacheEntry],
        submit: Callable[[Any, list[int], CacheEntry, list[str | None]], PrefectFuture],
        documents: Sequence[int],
        tags: Sequence[str] = (),
    ) -> list[Any]:
        """Units of work, one per shard, run as batch tasks, named ``task_label`` (what they do,
        also the progress display's label) and the shards' ``names``; the results in shard
        order. ``submit(task, shards, entry, found)`` submits the (named, refresh-set) task on
        the shard indices ``shards`` under the batch's entry, ``found`` saying where each of
        their stored results is (:meth:`locate`). Each shard's stored result is noted by its
        own name, as one task each was.
        ``documents``: each shard's, for the progress display.

        The shards still to do are cut into ``tasks_per_stage`` batches of their own, apart from
        those whose result is stored: a resumed run spreads the work left over every worker
        instead of leaving it in the few batches the killed run had not finished. Batches' shares
        of the documents taper (:func:`batches.spans`), and those to do are submitted largest
        first (the workers take them in that order), so the last to finish is a small one.
        """
        found = self.locate([f"{task_label} · {name}" for name in names], entries)
        stored = [where is not None for where in found]
        groups = []
        for done in (True, False):
            shards = [i for i, s in enumerate(stored) if s == done]
            cut = [shards[a:b] for a, b in batches.spans([documents[i] for i in shards], self.tasks_per_stage)]
            if not done:
                cut.sort(key=lambda group: -sum(documents[i] for i in group))
            groups += cut
        futures, sizes = [], []
        for shards in groups:
            task = task_fn.with_options(
                task_run_name=batches.batch_name(task_label, [names[i] for i in shards]),
                refresh_cache=not self.reuse or not stored[shards[0]],
                tags=list(tags),
            )
            batch = cache_address.batch_entry([entries[i] for i in shards])
            futures.append(submit(task, shards, batch, [found[i] for i in shards]))
            sizes.append(sum(documents[i] for i in shards))
        results: list[Any] = [None] * len(entries)
        for shards, done in zip(groups, self.bar.wait(task_label, futures, sizes, unit="documents")):
            for i, result in zip(shards, done):
                results[i] = result
        return results

    def tally(self) -> dict[str, Any]:
        """Tasks that did their work in this run, and how many reused a stored result."""
        computed = [name for name, done in self.reused.items() if not done]
        reused = [name for name, done in self.reused.items() if done]
        return {"computed": len(computed), "cached": len(reused), "computed_tasks": computed, "reused_tasks": reused}
