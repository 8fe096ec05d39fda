"""Shared helpers of the side-by-side benchmarks and conformance checks in ``bench/``.

* web-like documents built from the shared real-text corpora (deterministic);
* JSONL in and out;
* reference tools in their own virtual environments (created when missing);
* timing a command and sampling the peak memory of its whole process tree.

Only the standard library is used here, so any script (ours or one run by a reference tool's
interpreter) can import it.
"""

from __future__ import annotations

import gzip
import json
import os
import random
import re
import resource
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Sequence

REPO = Path(__file__).resolve().parent.parent
# The real text benchmarks build documents from: the project's own trimmed copies by default
# (tests/data, see its NOTICE), or the full corpora with RECIPEFLOW_CORPORA=<folder> (the numbers
# in the README were measured on the full ones).
CORPORA = Path(os.environ.get("RECIPEFLOW_CORPORA", REPO / "tests" / "data"))
CORPUS_FILES = ("debian-handbook.jsonl.gz", "debian-reference.jsonl.gz")
# Each benchmarked run starts its own Prefect server and pays its start-up, as in the numbers
# measured before runs shared a kept local server; bench/startup_benchmark.py measures both.
os.environ.setdefault("RECIPEFLOW_SERVER_IDLE_SECONDS", "0")
VENVS = REPO / "bench" / ".venvs"

# How each reference tool's environment is made when it is missing: (default location, the
# pip requirements). The default location is used when it exists, else bench/.venvs/<name>.
REFERENCE_TOOLS: dict[str, tuple[str, list[str]]] = {
    "datatrove": ("/work/ref/dt", ["datatrove[processing]==0.10.1", "spacy", "orjson"]),
    "data-juicer": ("/work/ref/dj", ["py-data-juicer==1.6.1", "aiohttp", "kenlm==0.3.0", "sentencepiece"]),
}


# ----------------------------------------------------------------------------------------------
# Documents
# ----------------------------------------------------------------------------------------------


def read_jsonl(path: str | Path) -> Iterator[dict]:
    """Records of a JSONL file, plain or gzip-compressed."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:
        for line in f:
            if line.strip():
                yield json.loads(line)


def write_jsonl(records: Iterable[dict], path: str | Path) -> int:
    """Write records as JSONL (gzip when the name ends in .gz); the number written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    opener = gzip.open if path.suffix == ".gz" else open
    n = 0
    with opener(path, "wt", encoding="utf-8") as f:
        for record in records:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
            n += 1
    return n


def corpus_pages(corpora: Path = CORPORA) -> list[dict]:
    """Every page of the shared corpora: handbook pages and reference chapters, in file order."""
    pages = []
    for name in CORPUS_FILES:
        path = corpora / name
        if not path.is_file():
            raise FileNotFoundError(
                f"corpus file {path} is missing: set RECIPEFLOW_CORPORA to the folder holding "
                f"{', '.join(CORPUS_FILES)}"
            )
        pages.extend(read_jsonl(path))
    return pages


def _paragraph_lines(text: str) -> list[str]:
    """The page's lines, trailing blanks removed and whitespace-only lines made empty, so that
    paragraphs are separated by blank lines as on a typical extracted web page."""
    return [line.rstrip() if line.strip() else "" for line in text.split("\n")]


def _cut_sizes(rng: random.Random) -> int:
    """A target document size in characters: mostly short and medium, a few long (web-like)."""
    roll = rng.random()
    if roll < 0.15:
        return rng.randint(40, 300)
    if roll < 0.75:
        return rng.randint(300, 2500)
    if roll < 0.95:
        return rng.randint(2500, 8000)
    return rng.randint(8000, 30000)


def _decorate(lines: list[str], page_lines: list[str], rng: random.Random) -> list[str]:
    """Some web page habits, to exercise every rule: navigation lists, repeated boilerplate,
    bullet lists. Built only from the page's own lines."""
    roll = rng.random()
    short = [line.strip() for line in page_lines if 0 < len(line.strip()) <= 40]
    if roll < 0.06 and short:  # a navigation menu above the content
        menu = [rng.choice(short) for _ in range(rng.randint(3, 15))]
        return menu + [""] + lines
    if roll < 0.10 and lines:  # a paragraph repeated (templated pages)
        repeated = [line for line in lines if line] or lines
        block = rng.choice(repeated)
        return lines + [""] + [block] * rng.randint(1, 4)
    if roll < 0.13:  # a bullet list
        return ["- " + line.strip() if line else line for line in lines]
    if roll < 0.15:  # one long line: the page with its line breaks lost
        return [" ".join(line.strip() for line in lines if line)]
    return lines


def web_like_documents(pages: Sequence[dict], seed: int = 0, pass_number: int = 0) -> Iterator[dict]:
    """Cut every page into documents of varied size at line boundaries (deterministic)."""
    for page in pages:
        rng = random.Random(f"{seed}:{pass_number}:{page['id']}")
        lines = _paragraph_lines(page["text"])
        start, part = 0, 0
        while start < len(lines):
            target = _cut_sizes(rng)
            end, size = start, 0
            while end < len(lines) and (size < target or end == start):
                size += len(lines[end]) + 1
                end += 1
            chunk = lines[start:end]
            start = end
            chunk = _decorate(chunk, lines, rng)
            text = re.sub(r"\n{3,}", "\n\n", "\n".join(chunk)).strip("\n")
            if not text.strip():
                continue
            yield {
                "id": f"{page['id']}-{pass_number}-{part}",
                "text": text,
                "lang": page["lang"],
                "source": page.get("source", ""),
                "url": page.get("url", ""),
            }
            part += 1


def build_documents(min_docs: int, seed: int = 0, corpora: Path = CORPORA) -> list[dict]:
    """At least ``min_docs`` web-like documents from the shared corpora, all languages,
    deterministic for a seed. Passes over the corpora cut the pages differently each time."""
    pages = corpus_pages(corpora)
    documents: list[dict] = []
    pass_number = 0
    while len(documents) < min_docs:
        documents.extend(web_like_documents(pages, seed, pass_number))
        pass_number += 1
    return documents


# ----------------------------------------------------------------------------------------------
# Reference tools
# ----------------------------------------------------------------------------------------------


def reference_python(tool: str, venv: str | Path | None = None) -> Path:
    """The python of ``tool``'s environment: ``venv`` if given, else the default location when
    it exists, else ``bench/.venvs/<tool>``, created with pip when missing."""
    default, requirements = REFERENCE_TOOLS[tool]
    if venv is None:
        venv = default if Path(default, "bin", "python").exists() else VENVS / tool
    venv = Path(venv)
    python = venv / "bin" / "python"
    if not python.exists():
        print(f"creating the {tool} environment in {venv} (pip install {' '.join(requirements)})")
        subprocess.run(["python3.11", "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *requirements], check=True)
    return python


# ----------------------------------------------------------------------------------------------
# Timing and memory
# ----------------------------------------------------------------------------------------------


def _children(pid: int) -> list[int]:
    """Every child of a process, whichever of its threads started it (a process pool started
    from a worker thread, as Prefect's task runners do, lists its processes under that thread)."""
    children: list[int] = []
    try:
        threads = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return []
    for tid in threads:
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                children.extend(int(p) for p in f.read().split())
        except OSError:
            continue
    return children


def _rss_bytes(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, IndexError, ValueError):
        return 0


def _pss_bytes(pid: int) -> int:
    """Proportional set size: a process's private pages plus its share of pages it shares with
    others (forked workers share their interpreter with the fork server). Summed over processes
    it counts each physical page once, which summed RSS does not."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) * 1024
    except (OSError, IndexError, ValueError):
        pass
    return 0


def tree_pids(pid: int) -> list[int]:
    """A process and all its descendants, now."""
    pids, stack = [], [pid]
    while stack:
        current = stack.pop()
        pids.append(current)
        stack.extend(_children(current))
    return pids


def tree_rss_bytes(pid: int) -> int:
    """Resident memory of a process and all its descendants, now."""
    return sum(map(_rss_bytes, tree_pids(pid)))


def _cpu_seconds(pid: int) -> float:
    """CPU time (user + system) a process has used so far."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


@dataclass
class TimedRun:
    seconds: float  # wall clock
    peak_rss_bytes: int
    returncode: int
    output: str
    cpu_seconds: float = 0.0  # user + system time of the whole process tree
    peak_root_rss_bytes: int = 0  # the command's own process (e.g. the flow run), without children
    peak_pss_bytes: int = 0  # the process tree's summed proportional set size (see _pss_bytes)


def run_timed(command: Sequence[str], env: dict | None = None, cwd: str | Path | None = None,
              sample_every: float = 0.05) -> TimedRun:
    """Run ``command``; its wall time, CPU time, and the peak resident memory of its process
    tree (sampled every ``sample_every`` seconds). CPU time does not grow when other work on
    the machine slows the run down: compare it too on a shared machine."""
    cpu_before = _children_cpu_seconds()
    start = time.perf_counter()
    process = subprocess.Popen(
        list(command), env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    peak = peak_root = peak_pss = 0
    cpu_by_pid: dict[int, float] = {}  # last CPU time seen per process of the tree
    done = threading.Event()

    def sample() -> None:
        nonlocal peak, peak_root, peak_pss
        while not done.is_set():
            pids = tree_pids(process.pid)
            peak = max(peak, sum(map(_rss_bytes, pids)))
            peak_pss = max(peak_pss, sum(map(_pss_bytes, pids)))
            peak_root = max(peak_root, _rss_bytes(process.pid))
            for pid in pids:
                cpu_by_pid[pid] = max(cpu_by_pid.get(pid, 0.0), _cpu_seconds(pid))
            done.wait(sample_every)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    output, _ = process.communicate()
    seconds = time.perf_counter() - start
    done.set()
    sampler.join()
    # Sampling misses the last moments of each process; waited-for processes are counted
    # exactly by the kernel, but not those that no one waits for (a forkserver's workers).
    cpu = max(sum(cpu_by_pid.values()), _children_cpu_seconds() - cpu_before)
    return TimedRun(seconds, peak, process.returncode, output, cpu, peak_root, peak_pss)


def _children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def mib(n_bytes: int) -> str:
    return f"{n_bytes / 2**20:,.0f} MiB"


if __name__ == "__main__":  # a quick look at the documents
    docs = build_documents(int(sys.argv[1]) if len(sys.argv) > 1 else 20000)
    sizes = sorted(len(d["text"]) for d in docs)
    print(len(docs), "documents; median", sizes[len(sizes) // 2], "chars; total", sum(sizes))
