"""``embed`` and ``model_classifier`` through recipeflow against the same model called directly
(``SentenceTransformer.encode``), on the same documents and cores, in one run.

    python bench/embedding_benchmark.py [--docs 2000 --batch-size 64 --max-length 256 --device auto]

Each variant runs in its own child process (so peak memory is its own): docs/s (after the
model is loaded; the first batch warms up), peak RSS, and recipeflow's overhead over the
direct call. Variants:

* ``direct``: SentenceTransformer(bundled all-MiniLM-L6-v2).encode(texts, normalize);
* ``embed``: the ``embed`` operator over shards of 1,000 documents (Arrow in and out);
* ``embed+classifier``: ``embed`` then ``model_classifier`` with a head trained here on the
  embeddings, reading them from the working column (no second encoding).

Documents: English paragraphs of two sources (``model_corpora.py``), cycled to ``--docs``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def _texts(n: int) -> list[str]:
    from bench.model_corpora import two_sources

    _, a, _, b = two_sources()
    pool = [t for pair in zip(a, b) for t in pair]
    return [pool[i % len(pool)] for i in range(n)]


def _variant(name: str, args: dict, head_path: str, queue) -> None:
    import pyarrow as pa
    import torch

    texts = _texts(args["docs"])
    table = pa.table({"id": [f"d{i}" for i in range(len(texts))], "text": texts})
    shards = [table.slice(s, 1000) for s in range(0, len(table), 1000)]
    warm = table.slice(0, args["batch_size"])
    if name == "direct":
        from sentence_transformers import SentenceTransformer

        from recipeflow.operators.models.embedding_models import bundled_minilm_path, resolve_device

        device = resolve_device(args["device"])
        model = SentenceTransformer(bundled_minilm_path(), device=device)
        if device.startswith("cuda"):
            model.half()
        model.max_seq_length = args["max_length"]

        def work(batch):
            return model.encode(batch.column("text").to_pylist(), batch_size=args["batch_size"],
                                normalize_embeddings=True, show_progress_bar=False)
    else:
        from recipeflow.operators.embed import Embed
        from recipeflow.operators.model_classifier import ModelClassifier

        embed = Embed({"batch_size": args["batch_size"], "max_length": args["max_length"],
                       "device": args["device"]})
        classifier = ModelClassifier({"model": head_path, "embedding_field": "embedding",
                                      "device": args["device"]}) if name != "embed" else None

        def work(batch):
            out = embed.process(batch).kept
            return classifier.process(out).kept if classifier else out
    work(warm)  # load the model, warm up
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    start = time.perf_counter()
    for shard in shards:
        work(shard)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    peak_gpu = torch.cuda.max_memory_allocated() if torch.cuda.is_available() else 0
    queue.put({"variant": name, "seconds": seconds, "docs_per_s": len(table) / seconds,
               "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
               "peak_gpu_mib": peak_gpu / 2**20})


def _train_head(folder: str) -> str:
    """A regression head over MiniLM embeddings (source A graded 4, B graded 1)."""
    from bench.model_corpora import two_sources
    from recipeflow.operators.models.classifier_training import train_head

    _, a, _, b = two_sources()
    texts = a[:150] + b[:150]
    result = train_head([4.0] * 150 + [1.0] * 150, texts=texts, max_length=128)
    path = f"{folder}/head.safetensors"
    result.head.save(path)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--device", default="auto")
    args = vars(parser.parse_args())
    context = mp.get_context("spawn")
    results = []
    with tempfile.TemporaryDirectory() as folder:
        head = _train_head(folder)
        for name in ("direct", "embed", "embed+classifier"):
            queue = context.Queue()
            process = context.Process(target=_variant, args=(name, args, head, queue))
            process.start()
            results.append(queue.get())
            process.join()
    base = results[0]["seconds"]
    print(f"{args['docs']} documents, batch {args['batch_size']}, max_length {args['max_length']}, "
          f"device {args['device']}")
    print(f"{'variant':<18} {'docs/s':>9} {'overhead':>9} {'peak RSS MiB':>13} {'peak GPU MiB':>13}")
    for r in results:
        print(f"{r['variant']:<18} {r['docs_per_s']:>9.1f} {r['seconds'] / base - 1:>+9.1%} "
              f"{r['peak_rss_mib']:>13.0f} {r['peak_gpu_mib']:>13.0f}")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
