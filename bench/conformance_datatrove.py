"""Conformance: our DataTrove-compatible operators against DataTrove 0.10.1 itself.

The same documents (at least 20,000, cut from every language of the shared corpora, see
bench/common.py) go through each of our operators and through DataTrove's class of the same
name, each operator on its own (not chained), and we count identical keep/drop decisions
(and identical reasons, and for C4 the identical rewritten text). DataTrove runs in its own
virtual environment, in a subprocess that writes its decisions to a file.

    python bench/conformance_datatrove.py [--docs 20000] [--venv /work/ref/dt] [--examples 5]

Language-aware filters run with ``language`` set to each document's ``lang`` wherever the
reference environment can load DataTrove's word tokenizer for it; elsewhere both sides use
"en" (the script prints which languages fell back).

Disagreement classes we accept, and why:

* Word splitting of French, Indonesian, Turkish and Persian. We re-implement spaCy's tokenizer
  algorithm exactly, with the punctuation rules of en, de, nl, da, sv, nb, fr, it, es, pt, ca,
  ro, el, fa, pl (the others use spaCy's language-neutral rules, as spaCy does for cs, hr, zh...)
  and every language's exception list except Indonesian's (15,000 reduplicated words). Not
  implemented: French's and Turkish's ``token_match`` (thousands of hyphenated French words
  such as "sous-réseau" kept whole; Turkish abbreviations), Indonesian's own punctuation rules.
  There a word count moves by one now and then; a decision flips only when a statistic sits
  right on a threshold (about 0.1% of documents, mostly in Indonesian).
* Sentence counts (C4's minimum of 5 sentences) for the same languages, for the same reason.
* Japanese, Korean and Vietnamese: DataTrove segments them with SudachiPy, Kiwi and pyvi,
  which its ``processing`` extra does not install; the reference cannot run them, so both
  sides use "en" there. Our Japanese splitting (cut at script changes) approximates SudachiPy
  and is not compared here.
* language_id: none expected; both run the same fastText model file (the bundled lid.176)
  on the same text with line breaks replaced by spaces.
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pyarrow as pa  # noqa: E402

from bench.common import build_documents, reference_python, write_jsonl  # noqa: E402
from recipeflow.operators.models.fasttext_models import bundled_lid_path  # noqa: E402
from recipeflow.operators.registry import get  # noqa: E402

# (check name, our operator, its parameters, DataTrove class, its parameters, language-aware)
CHECKS: list[tuple[str, str, dict, str, dict, bool]] = [
    ("language_id[en]", "language_id", {"languages": ["en"], "min_score": 0.65},
     "LanguageFilter", {"languages": ["en"], "language_threshold": 0.65}, False),
    ("language_id[de,fr,es 0.5]", "language_id", {"languages": ["de", "fr", "es"], "min_score": 0.5},
     "LanguageFilter", {"languages": ["de", "fr", "es"], "language_threshold": 0.5}, False),
    ("language_id[en,ru 0.3]", "language_id", {"languages": ["en", "ru"], "min_score": 0.3},
     "LanguageFilter", {"languages": ["en", "ru"], "language_threshold": 0.3}, False),
    ("gopher_repetition_filter", "gopher_repetition_filter", {},
     "GopherRepetitionFilter", {}, True),
    ("gopher_quality_filter", "gopher_quality_filter", {}, "GopherQualityFilter", {}, True),
    ("c4_quality_filter", "c4_quality_filter", {}, "C4QualityFilter", {}, True),
    ("c4_quality_filter[no_terminal_punct=false]", "c4_quality_filter",
     {"filter_no_terminal_punct": False}, "C4QualityFilter", {"filter_no_terminal_punct": False},
     True),
    ("fineweb_quality_filter", "fineweb_quality_filter", {}, "FineWebQualityFilter", {}, True),
]

REFERENCE_SCRIPT = textwrap.dedent('''
    import json, sys
    from datatrove.data import Document
    from datatrove.pipeline import filters
    from datatrove.utils.word_tokenizers import load_word_tokenizer

    docs_path, checks_path, lid_path, out_path, part, parts = sys.argv[1:7]
    part, parts = int(part), int(parts)
    checks = json.load(open(checks_path))

    def supported(lang, cache={}):
        if lang not in cache:
            try:
                load_word_tokenizer(lang).word_tokenize("a test")
                cache[lang] = True
            except Exception:
                cache[lang] = False
        return cache[lang]

    instances = {}
    def instance(check, lang):
        key = (check["name"], lang)
        if key not in instances:
            kwargs = dict(check["ref_params"])
            if check["language_aware"]:
                kwargs["language"] = lang
            f = getattr(filters, check["ref_class"])(**kwargs)
            if check["ref_class"] == "LanguageFilter":  # the bundled model, no download
                from fasttext.FastText import _FastText
                f.model._model = _FastText(lid_path)
            instances[key] = f
        return instances[key]

    out = open(out_path, "w")
    for n, line in enumerate(open(docs_path)):
        if n % parts != part:
            continue
        d = json.loads(line)
        lang = d["lang"] if supported(d["lang"]) else "en"
        result = {"id": d["id"], "tok_lang": lang}
        for check in checks:
            doc = Document(text=d["text"], id=d["id"], metadata={})
            verdict = instance(check, lang).filter(doc)
            keep, reason = (verdict if isinstance(verdict, tuple) else (verdict, None))
            result[check["name"]] = [bool(keep), reason, doc.text if keep and check["ref_class"] == "C4QualityFilter" else None]
        out.write(json.dumps(result, ensure_ascii=False) + "\\n")
''')


def run_reference(python: Path, docs_path: Path, workdir: Path, workers: int) -> dict[str, dict]:
    """DataTrove's decisions for every document and check, computed in ``workers`` processes."""
    script = workdir / "reference.py"
    script.write_text(REFERENCE_SCRIPT)
    checks_path = workdir / "checks.json"
    checks_path.write_text(json.dumps([
        {"name": name, "ref_class": ref_class, "ref_params": ref_params, "language_aware": aware}
        for name, _, _, ref_class, ref_params, aware in CHECKS
    ]))
    outputs = [workdir / f"reference-{i}.jsonl" for i in range(workers)]
    env = dict(os.environ, PYTHONWARNINGS="ignore", LOGURU_LEVEL="ERROR")
    processes = [
        subprocess.Popen([str(python), str(script), str(docs_path), str(checks_path),
                          bundled_lid_path(), str(out), str(i), str(workers)], env=env)
        for i, out in enumerate(outputs)
    ]
    for process in processes:
        if process.wait() != 0:
            raise SystemExit(f"the DataTrove reference run failed (exit {process.returncode})")
    results: dict[str, dict] = {}
    for out in outputs:
        for line in out.open():
            record = json.loads(line)
            results[record["id"]] = record
    return results


def run_ours(docs: list[dict], tok_lang: dict[str, str], batch_size: int = 2000) -> dict[str, dict]:
    """Our decisions for every document and check: [keep, reason, rewritten text]."""
    results: dict[str, dict] = {d["id"]: {} for d in docs}
    for name, op_name, params, _, _, aware in CHECKS:
        by_language: dict[str, list[dict]] = collections.defaultdict(list)
        for d in docs:
            by_language[tok_lang[d["id"]] if aware else "-"].append(d)
        for lang, group in by_language.items():
            op = get(op_name)({**params, **({"language": lang} if aware else {})})
            for start in range(0, len(group), batch_size):
                part = group[start:start + batch_size]
                batch = pa.table({"id": [d["id"] for d in part], "text": [d["text"] for d in part]})
                annotated, decisions = op.annotate(batch)
                texts = annotated.column("text").to_pylist()
                for d, decision, text in zip(part, decisions, texts):
                    keep = decision is None
                    results[d["id"]][name] = [
                        keep, None if keep else decision.reason,
                        text if keep and op_name == "c4_quality_filter" else None,
                    ]
    return results


def report(docs: list[dict], ours: dict, reference: dict, examples: int) -> bool:
    """Print agreement per check; True when every check reaches 99.5%."""
    by_id = {d["id"]: d for d in docs}
    all_ok = True
    print(f"\n{'check':46} {'docs':>6} {'same keep/drop':>15} {'same reason':>12} {'dropped ours/ref':>17}")
    for name, op_name, *_ in CHECKS:
        same = same_reason = dropped_ours = dropped_ref = same_text = kept_both = 0
        disagreements: list[tuple[str, Any, Any]] = []
        for doc_id, ref in reference.items():
            a, b = ours[doc_id][name], ref[name]
            dropped_ours += not a[0]
            dropped_ref += not b[0]
            if a[0] == b[0]:
                same += 1
                same_reason += a[0] or (a[1] == b[1]) or (b[1] is None)
                if a[0] and op_name == "c4_quality_filter":
                    kept_both += 1
                    same_text += a[2] == b[2]
            else:
                disagreements.append((doc_id, a, b))
        n = len(reference)
        share = same / n
        all_ok &= share >= 0.995
        print(f"{name:46} {n:6} {share:15.4%} {same_reason / n:12.4%} {dropped_ours:8}/{dropped_ref:<8}"
              + (f"  same text when kept: {same_text / max(1, kept_both):.4%}" if kept_both else ""))
        for doc_id, a, b in disagreements[:examples]:
            d = by_id[doc_id]
            snippet = d["text"][:160].replace("\n", "⏎")
            print(f"    {doc_id} lang={d['lang']}: ours={'keep' if a[0] else a[1]} "
                  f"datatrove={'keep' if b[0] else b[1]}  | {snippet}")
    return all_ok


def _cache_key(docs: list[dict]) -> str:
    digest = hashlib.sha256(json.dumps(CHECKS).encode())
    for d in docs:
        digest.update(d["id"].encode() + d["text"].encode())
    return digest.hexdigest()


def _cached_reference(path: str | None, docs: list[dict]) -> dict | None:
    if not path or not Path(path).is_file():
        return None
    cached = json.loads(Path(path).read_text())
    if cached.get("key") != _cache_key(docs):
        return None
    print(f"DataTrove's decisions reused from {path}")
    return cached["reference"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=20000, help="at least this many documents")
    parser.add_argument("--venv", default=None, help="DataTrove's virtual environment "
                        "(default /work/ref/dt if it exists, else bench/.venvs/datatrove, created)")
    parser.add_argument("--examples", type=int, default=5, help="disagreements shown per check")
    parser.add_argument("--workers", type=int, default=2, help="reference processes")
    parser.add_argument("--reference-cache", default=None, help="keep DataTrove's decisions in "
                        "this file and reuse them while documents and checks are unchanged")
    args = parser.parse_args()

    python = reference_python("datatrove", args.venv)
    docs = build_documents(args.docs)
    print(f"{len(docs)} documents, {len({d['lang'] for d in docs})} languages, "
          f"{sum(len(d['text']) for d in docs) / 1e6:.1f}M characters")
    reference = _cached_reference(args.reference_cache, docs)
    if reference is None:
        with tempfile.TemporaryDirectory(prefix="conformance-dt-") as tmp:
            workdir = Path(tmp)
            docs_path = workdir / "docs.jsonl"
            write_jsonl(({"id": d["id"], "text": d["text"], "lang": d["lang"]} for d in docs), docs_path)
            start = time.perf_counter()
            reference = run_reference(python, docs_path, workdir, args.workers)
            print(f"DataTrove: {time.perf_counter() - start:.0f} s")
        if args.reference_cache:
            Path(args.reference_cache).write_text(json.dumps(
                {"key": _cache_key(docs), "reference": reference}, ensure_ascii=False))
    tok_lang = {doc_id: r["tok_lang"] for doc_id, r in reference.items()}
    fell_back = sorted({d["lang"] for d in docs if tok_lang[d["id"]] != d["lang"]})
    print("languages without a DataTrove word tokenizer here (both sides use en):", fell_back or "none")
    start = time.perf_counter()
    ours = run_ours(docs, tok_lang)
    print(f"recipeflow: {time.perf_counter() - start:.0f} s")
    ok = report(docs, ours, reference, args.examples)
    print("\nall checks ≥ 99.5%" if ok else "\nsome checks are below 99.5%")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
