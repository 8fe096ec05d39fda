"""``decontaminate``'s paraphrase judge on the vllm backend: the offline engine in the task's
process, as a GPU-pool task runs it. Opt-in like tests/operators/test_rephrase_vllm.py (vLLM lives
in its own virtual environment; the README's "vLLM on this machine" section sets it up):

    RECIPEFLOW_VLLM_PYTHON=bench/.venvs/vllm/bin/python \\
    RECIPEFLOW_VLLM_MODEL=bench/.models/smollm2-135m-instruct \\
        python -m pytest -q tests/operators/test_decontaminate_vllm.py
"""

from __future__ import annotations

import json
import os
import subprocess
import textwrap

from tests.conftest import REPO
from tests.operators.test_rephrase_vllm import VLLM_MODEL, VLLM_PYTHON, needs_vllm


@needs_vllm
def test_the_paraphrase_judge_runs_on_the_vllm_engine(tmp_path):
    items = [
        {"id": "apt", "question": "Which Debian tool installs packages and resolves their dependencies?",
         "answer": "apt"},
        {"id": "cap", "question": "Which city is the capital of France?", "answer": "Paris"},
    ]
    (tmp_path / "items.jsonl").write_text("".join(json.dumps(it) + "\n" for it in items))
    script = textwrap.dedent(f"""
        import json, sys
        sys.path.insert(0, {str(REPO)!r})
        import pyarrow as pa
        from recipeflow.operators.decontaminate import Decontaminate

        if __name__ == "__main__":
            config = {{
                "benchmarks": {{"toy": {{"path": {str(tmp_path / "items.jsonl")!r},
                                         "fields": ["question", "answer"], "id_field": "id"}}}},
                "mode": "annotate",
                "paraphrase_check": {{"top_k": 1, "min_similarity": 0.2, "judge": {{
                    "backend": "vllm", "model": {VLLM_MODEL!r}, "dtype": "bfloat16",
                    "max_model_len": 2048, "cache_dir": {str(tmp_path / "cache")!r}}}}},
            }}
            docs = pa.table({{"id": ["rephrased", "unrelated"], "text": [
                "Debian's apt is the tool that installs packages, and it resolves the "
                "dependencies between them for you.",
                "The weather in the mountains was cold and windy all week."]}})
            op = Decontaminate(config)
            first = op.process(docs)
            again = Decontaminate(config)
            second = again.process(docs)
            print("RESULT", json.dumps({{
                "labels": first.kept.column("contaminated_by").to_pylist(),
                "usage": op._judge.usage, "again_usage": again._judge.usage,
                "again_loaded": again._judge._backend is not None,
                "same": second.kept.equals(first.kept),
                "provenance": op.provenance()["paraphrase_judge"]}}))
    """)
    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": os.environ.get("VLLM_CPU_KVCACHE_SPACE", "2")}
    done = subprocess.run([VLLM_PYTHON, "-c", script], capture_output=True, text=True, env=env, timeout=900)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert done.returncode == 0 and lines, done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads(lines[0][len("RESULT "):])
    # One candidate above min_similarity, judged by the engine; its answer was cached.
    assert result["usage"]["judged"] == 1
    entries = list((tmp_path / "cache").rglob("*.json"))
    assert len(entries) == 1
    entry = json.loads(entries[0].read_text())
    assert entry["completion_tokens"] > 0 and entry["text"].strip()
    from recipeflow.operators.decontamination.paraphrase import parse_answer

    answer = parse_answer(entry["text"])
    assert result["labels"] == [["toy:apt (paraphrase)"] if answer else [], []]
    # A second operator takes the judgment from the cache and never starts the engine.
    assert result["again_usage"] == {"judged": 0, "cached": 1, "unparsed": 0}
    assert not result["again_loaded"] and result["same"]
    assert result["provenance"]["backend"] == "vllm" and len(result["provenance"]["sha256"]) == 64
