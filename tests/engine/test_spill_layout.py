"""An output laid out in passes (keys, spill, write: bounded memory) is the same files, byte
for byte, as the same output laid out in memory."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from recipeflow.engine import output_layout, spill_layout
from recipeflow.io import megatron, writers
from recipeflow.recipe.models import OutputSpec


def documents(n: int) -> pa.Table:
    rng = np.random.default_rng(1)
    lengths = rng.integers(1, 60, n)
    return pa.table({
        "id": [f"doc-{i}" for i in range(n)],
        # Long enough that a file's column spans several 1 MB pages: Arrow cuts pages where
        # chunks end, so a spilled file written in other chunks would differ (it must not).
        "text": ["é " * (30 * int(k)) + f"text {i}" for i, k in enumerate(lengths)],
        "n_tokens": pa.array(lengths, pa.int64()),
        "token_ids": pa.array([list(range(i, i + int(k))) for i, k in enumerate(lengths)], pa.list_(pa.uint32())),
        "phase": [None if i % 17 == 0 else ("stable" if i % 5 else "anneal") for i in range(n)],
    })


def stage_files(tmp_path, n: int = 3000, parts: int = 7) -> list[str]:
    """Stage outputs as the engine leaves them; the later ones carry a column the first lack
    (a field only some documents got), so the output's schema is their union."""
    table = documents(n)
    size = -(-n // parts)
    paths = []
    for k, start in enumerate(range(0, n, size)):
        part = table.slice(start, size)
        if k >= 3:
            part = part.append_column("score", pa.array(np.linspace(0, 1, len(part))))
        paths.append(writers.write_table(part, str(tmp_path / "stages" / f"stage-{k}.parquet")).path)
    return paths


LAYOUTS = {
    "shuffle": {"shuffle": {"seed": 3}},
    "shuffle, rows": {"shuffle": {"seed": 3}, "target_shard_rows": 700},
    "phases, tokens": {"partition_by": "phase", "target_shard_tokens": 20_000},
    "jsonl, shuffle, phases": {"format": "jsonl.gz", "shuffle": {"seed": 9}, "partition_by": "phase"},
    "megatron, shuffle, tokens": {"format": "megatron", "shuffle": {"seed": 1}, "target_shard_tokens": 30_000},
}


@pytest.mark.parametrize("name", list(LAYOUTS))
def test_laid_out_in_passes_equals_in_memory(tmp_path, name):
    paths = stage_files(tmp_path)
    output = OutputSpec.model_validate({"path": str(tmp_path / "out"), **LAYOUTS[name]})
    in_memory = output_layout.write_data(paths, str(tmp_path / "a"), output, vocab_size=4000)
    # Chunks of about 40 documents: many chunks per file, spill files from every stage output.
    in_passes = spill_layout.write_data(paths, str(tmp_path / "b"), output, vocab_size=4000,
                                        in_memory_bytes=0, chunk_bytes=40 * 4000)

    def entries(files, folder):
        return [f.entry(str(tmp_path / folder)) for f in files]

    assert entries(in_passes, "b") == entries(in_memory, "a")
    assert len(in_memory) > 1 or name == "shuffle"
    if output.format == "megatron":
        ids = [list(d) for f in in_passes for d in megatron.MegatronReader(f.path[: -len(".bin")])]
        assert sum(len(d) for d in ids) == sum(f.tokens for f in in_passes)


def test_small_outputs_are_laid_out_in_memory(tmp_path, monkeypatch):
    paths = stage_files(tmp_path, n=200)
    output = OutputSpec.model_validate({"path": str(tmp_path / "out"), "shuffle": {"seed": 0}})
    monkeypatch.setattr(spill_layout, "_spill", lambda *a, **k: pytest.fail("spilled a small output"))
    assert spill_layout.write_data(paths, str(tmp_path / "a"), output)
