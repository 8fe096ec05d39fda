"""A task whose body starts more than once is reported as retried, with its attempts."""

from __future__ import annotations

from prefect import flow, task
from prefect.runtime import flow_run

from recipeflow.datasets.run_summary import retried_lines
from recipeflow.orchestration import attempts
from recipeflow.orchestration.tasks import worth_retrying


@task(retries=2, retry_delay_seconds=0)
def flaky(root: str, fail_times: int) -> int:
    attempts.note_start(root)
    [note] = attempts.started(root, str(flow_run.get_id()))  # each task has a root of its own here
    if note["attempts"] <= fail_times:
        raise OSError("a transient storage error")
    return note["attempts"]


@flow
def two_tasks(root: str) -> list:
    first = flaky.with_options(task_run_name="flaky")(root, fail_times=2)
    steady = flaky.with_options(task_run_name="steady")(str(root) + "-steady", fail_times=0)
    return [first, steady, attempts.retried(root, str(flow_run.get_id())),
            attempts.retried(str(root) + "-steady", str(flow_run.get_id()))]


def test_a_task_retried_by_prefect_is_reported_and_the_notes_removed(tmp_path, prefect_api):
    root = str(tmp_path / "cache")
    first, steady, retried, not_retried = two_tasks(root)
    assert (first, steady) == (3, 1)
    assert retried == [{"task": "flaky", "attempts": 3}]
    assert not_retried == []
    assert not list((tmp_path / "cache" / attempts.ATTEMPTS_DIR).rglob("*.json"))
    assert retried_lines({"retried": retried}) == [
        "retried 1 task (a worker was lost in the middle of it, or it raised):", "  flaky: 3 attempts"]
    assert retried_lines({"retried": []}) == []


@task(retries=2, retry_delay_seconds=0, retry_condition_fn=worth_retrying)
def failing(root: str, error: str) -> None:
    attempts.note_start(root)
    raise {"storage": OSError("a transient storage error"), "recipe": ValueError("mix: the source is empty")}[error]


@flow
def failing_tasks(root: str) -> list:
    for error in ("storage", "recipe"):
        failing.with_options(task_run_name=error)(f"{root}-{error}", error, return_state=True)
    return [attempts.retried(f"{root}-{error}", str(flow_run.get_id())) for error in ("storage", "recipe")]


def test_an_error_the_recipe_must_fix_is_not_retried(tmp_path, prefect_api):
    storage, recipe = failing_tasks(str(tmp_path / "cache"))
    assert storage == [{"task": "storage", "attempts": 3}]  # retried: it may pass next time
    assert recipe == []  # failed once: a second try would fail the same way
