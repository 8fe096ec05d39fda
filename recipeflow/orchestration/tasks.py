"""The Prefect tasks of a run: thin wrappers around the engine, so the UI shows each unit of
work. Each task is handed its :class:`~recipeflow.engine.cache_address.CacheEntry`, computed
once by the flow; the task's Prefect cache key and the engine's result folder both come from it.
"""

from __future__ import annotations

from typing import Any

from prefect import task

from recipeflow.orchestration import attempts, credentials
from recipeflow.orchestration.work import Unwalked
from recipeflow.engine import execute, operator_hooks, packs
from recipeflow.engine.cache_address import CacheEntry
from recipeflow.engine.planner import OpRef, Stage, stable_hash
from recipeflow.engine.shard_input import ShardInput, StageOutput
from recipeflow.engine.stored_results import StoredResults
from recipeflow.io import readers, storage
from recipeflow.recipe.models import HeadTrainSpec, TrainSpec

# Part of every Prefect cache key. Changed from "recipeflow" when the modules moved into
# packages (0.2): results persisted by older runs are pickles naming the old module paths, and
# must never be unpickled; the stage cache itself (JSON under the same content addresses) is
# still reused, so an upgrade re-runs no operator work.
CACHE_KEY_PREFIX = "recipeflow2"


def _unwrapped(value: Any) -> Any:
    """A parameter the flow sent wrapped (``work.Unwalked``), or given as it is (a direct call)."""
    return value.value if isinstance(value, Unwalked) else value


def entry_cache_key(_context: Any, parameters: dict[str, Any]) -> str:
    """A Prefect cache key from the work's cache entry and the cache root it lives in, so a
    re-run shows finished work as Cached in the UI (the stored result is a small reference)."""
    entry: CacheEntry = parameters["entry"]
    return f"{CACHE_KEY_PREFIX}-{entry.kind}-" + stable_hash([entry.address, parameters["work_root"]])


def _scan_key(_context: Any, parameters: dict[str, Any]) -> str:
    """An unchanged file (same size and modification time or ETag) is not scanned again."""
    fs, path = storage.filesystem(parameters["url"])
    info = fs.info(path)
    stamp = [info.get(k) for k in ("size", "mtime", "ETag", "etag", "LastModified", "last_modified")]
    return f"{CACHE_KEY_PREFIX}-scan-" + stable_hash(
        [parameters["url"], parameters["fmt"], parameters["shard_size"], readers.__name__, stamp]
    )


def _begin(work_root: str) -> None:
    """What every task that works under the cache root does first: the storage credentials, and
    a note that it started, so a retried task is reported (see :mod:`.attempts`)."""
    credentials.configure_credentials()
    attempts.note_start(work_root)


# Errors that the recipe or its data must fix (a mix whose source is empty, a field that is not
# there, a malformed record): a second try fails the same way, only later.
_PERMANENT_ERRORS = (ValueError, KeyError, TypeError)


def worth_retrying(task: Any, task_run: Any, state: Any) -> bool:
    """Prefect's ``retry_condition_fn``: retry what may pass on a second try (storage, network,
    a lost worker), not a permanent error (:data:`_PERMANENT_ERRORS`)."""
    return not isinstance(getattr(state, "data", None), _PERMANENT_ERRORS)


# Results are persisted (small references) so re-runs show Cached; a transient storage error
# is retried: every task writes under a content address, so running it again is safe.
_CACHED = {"persist_result": True, "retries": 2, "retry_delay_seconds": 2, "retry_condition_fn": worth_retrying}


@task(name="scan-input", cache_key_fn=_scan_key, **_CACHED)
def scan_task(url: str, fmt: str, shard_size: int) -> readers.FileScan:
    credentials.configure_credentials()
    return readers.scan_file(url, fmt, shard_size)


@task(name="stage", cache_key_fn=entry_cache_key, **_CACHED)
def stage_task(
    stage: Stage, inp: ShardInput, decision: str | None, entry: CacheEntry, work_root: str, reuse: bool = True
) -> StageOutput:
    _begin(work_root)
    return execute.run_stage(stage, inp, decision, entry, work_root, reuse)


@task(name="index", cache_key_fn=entry_cache_key, **_CACHED)
def index_task(ref: OpRef, entry: CacheEntry, work_root: str, reuse: bool = True) -> str:
    """Build an operator's index once, before the stage's shard tasks read it."""
    _begin(work_root)
    return operator_hooks.build_index(ref, entry, work_root, reuse)


@task(name="signatures", cache_key_fn=entry_cache_key, **_CACHED)
def signatures_task(barrier: OpRef, inp: ShardInput, entry: CacheEntry, work_root: str, reuse: bool = True) -> str:
    _begin(work_root)
    return execute.compute_signatures(barrier, inp, entry, work_root, reuse)


@task(name="stage-batch", cache_key_fn=entry_cache_key, **_CACHED)
def stage_batch_task(
    stage: Stage,
    inputs: list[ShardInput],
    decisions: list[str | None],
    entries: list[CacheEntry],
    found: list[str | None],
    entry: CacheEntry,
    work_root: str,
    reuse: bool = True,
) -> list[StageOutput]:
    """A stage on a run of shards, each under its own cache entry (a stored shard is reused, so
    a retried or resumed batch does only its missing shards); ``found``: where each shard's
    stored result is, as the flow run found it (:mod:`recipeflow.engine.stored_results`);
    ``entry`` names the batch. The shards' documents are written into shared files
    (:mod:`recipeflow.engine.packs`)."""
    _begin(work_root)
    inputs, decisions, entries, found = _unwrapped(inputs), _unwrapped(decisions), _unwrapped(entries), _unwrapped(found)
    stored = StoredResults(work_root, reuse)
    steps: list[tuple[str, Any]] = []  # the stage's operators, made for the first shard to do

    def make(i: int) -> tuple[CacheEntry, dict, Any]:
        if not steps:
            steps.extend(execute.stage_operators(stage, work_root, reuse))
        tables = execute.compute_stage(stage, inputs[i], decisions[i], work_root, reuse, steps)
        return entries[i], execute.stage_streams(tables), (inputs[i].key, tables.counts, tables.reports)

    outputs = packs.stage_packs(work_root).run(
        len(inputs), lambda i: execute.stage_output(stored.read(entries[i], found[i])), make
    )
    execute.release_memory()
    return outputs


@task(name="signatures-batch", cache_key_fn=entry_cache_key, **_CACHED)
def signatures_batch_task(
    barrier: OpRef,
    inputs: list[ShardInput],
    entries: list[CacheEntry],
    found: list[str | None],
    entry: CacheEntry,
    work_root: str,
    reuse: bool = True,
) -> list[str]:
    """A barrier's signatures of a run of shards, each under its own cache entry, written into
    shared files (:mod:`recipeflow.engine.packs`); ``found`` as for :func:`stage_batch_task`."""
    _begin(work_root)
    inputs, entries, found = _unwrapped(inputs), _unwrapped(entries), _unwrapped(found)
    stored = StoredResults(work_root, reuse)
    paths = packs.signature_packs(work_root).run(
        len(inputs),
        lambda i: execute.signatures_path(stored.read(entries[i], found[i])),
        lambda i: (entries[i], {"signatures": execute.signatures_of(barrier, inputs[i])}, None),
    )
    execute.release_memory()
    return paths


@task(name="resolve", cache_key_fn=entry_cache_key, **_CACHED)
def resolve_task(
    barrier: OpRef, signature_paths: list[str], entry: CacheEntry, work_root: str, reuse: bool = True, history: int = 0
) -> execute.Resolution:
    _begin(work_root)
    return execute.resolve_barrier(barrier, signature_paths, entry, work_root, reuse, history)


@task(name="resolve-partition", cache_key_fn=entry_cache_key, **_CACHED)
def resolve_partition_task(
    barrier: OpRef,
    signature_paths: list[str],
    partition: int,
    partitions: int,
    entry: CacheEntry,
    work_root: str,
    reuse: bool = True,
    history: int = 0,
) -> str:
    _begin(work_root)
    return execute.resolve_partition(barrier, signature_paths, partition, partitions, entry, work_root, reuse, history)


@task(name="merge-partitions", cache_key_fn=entry_cache_key, **_CACHED)
def merge_task(
    barrier: OpRef,
    partial_paths: list[str],
    signature_paths: list[str],
    entry: CacheEntry,
    work_root: str,
    reuse: bool = True,
    history: int = 0,
) -> execute.Resolution:
    _begin(work_root)
    return execute.merge_partitions(barrier, partial_paths, signature_paths, entry, work_root, reuse, history)


@task(name="train")
def train_task(
    name: str, spec: TrainSpec, positives: list[ShardInput], negatives: list[ShardInput], run_info: dict[str, Any]
) -> dict[str, Any]:
    from recipeflow.engine.train import train_and_commit  # loads fastText only when training

    credentials.configure_credentials()
    return train_and_commit(name, spec, positives, negatives, run_info)


@task(name="train-head")
def train_head_task(
    name: str, spec: HeadTrainSpec, graded: list[ShardInput], run_info: dict[str, Any]
) -> dict[str, Any]:
    from recipeflow.engine.head_training import train_head_and_commit  # loads the encoder only here

    credentials.configure_credentials()
    return train_head_and_commit(name, spec, graded, run_info)
