"""What a ``processes`` worker imports before its first task, imported once by the fork server
its workers are forked from (``fork_server``), so that no worker pays for it.

Besides the task bodies and Prefect's task engine: Prefect rebuilds each task's run context in
the worker, and a block in it (the result store's) makes Prefect import every installed Prefect
collection (prefect-aws with boto3, prefect-dask with distributed, ...) to find the block's
class. That was 2 to 4 s of CPU in every worker before its first task. And pandas: pyarrow
imports it the first time it builds an array from Python values (to tell whether they are
pandas objects), 0.35 s of CPU in every worker's first shard.
"""

from __future__ import annotations

import contextlib
import gc

import prefect.plugins
import prefect.task_engine  # noqa: F401

import recipeflow.orchestration.tasks  # noqa: F401

prefect.plugins.load_prefect_collections()
with contextlib.suppress(ImportError):  # pyarrow does not need it, and then does not import it
    import pandas  # noqa: F401

# What the fork server holds now lives as long as every worker: out of the garbage collector's
# sight (its permanent generation), a worker's full collections do not walk it again. That was
# about a tenth of a second per thousand small shards.
gc.freeze()
