"""The sample: the first N documents of each analysed node, in input order, scanning only
the files needed."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence


from recipeflow.engine import shard_input
from recipeflow.io import readers
from recipeflow.recipe.models import InputSpec
from recipeflow.analyze.model import SampleInput, ShardAnalysis


# ---------------------------------------------------------------------------------------------
# Which shards hold the sample


@dataclass(frozen=True)
class MoreFiles:
    """The files of an input not scanned yet: they come next in input order."""

    input_name: str


@dataclass
class Walk:
    """Where the sample stands: shards still to annotate (key, limit), the shards that make it
    up, and the input whose next files must be scanned first (if the sample reaches them)."""

    todo: list[tuple[str, int | None]]
    included: list[str]
    scan_more: str | None = None


def walk_sample(
    entries: Sequence[SampleInput | MoreFiles], sample: int | None, done: dict[str, ShardAnalysis]
) -> Walk:
    """The first ``sample`` documents (all when None) over ``entries`` in order.

    A shard's ``records`` bounds its documents from above (unreadable records count there but
    yield nothing), so a first round may fall short; the next walk then asks a shard that was
    cut short for more, or the following shards for the rest. The sample is settled when the
    walk has nothing to do and no unscanned files to reach.
    """
    walk = Walk(todo=[], included=[])
    before = 0
    for entry in entries:
        need = None if sample is None else sample - before
        if need is not None and need <= 0:
            break
        if isinstance(entry, MoreFiles):
            walk.scan_more = entry.input_name
            break
        key = entry.shard.key
        walk.included.append(key)
        result = done.get(key)
        if result is not None and (need is None or result.covers(need)):
            before += result.docs
        else:
            walk.todo.append((key, need))
            before += entry.records if need is None else min(entry.records, need)
    return walk


@dataclass
class InputFiles:
    """An input's files, scanned in order only as far as the sample needs: a sample of a
    large crawl does not checksum the whole crawl."""

    name: str
    spec: InputSpec
    format: str
    urls: list[str]
    scans: list[readers.FileScan] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return len(self.scans) == len(self.urls)

    @property
    def records(self) -> int:
        return sum(s.records for s in self.scans)

    def entries(self, shard_size: int) -> list[SampleInput | MoreFiles]:
        """Shards of the scanned files (cut as a run cuts them), then the rest, if any."""
        by_url = {s.url: s for s in self.scans}
        cut = readers.cut_shards(
            self.name, self.format, self.spec.text_field, self.spec.id_field,
            readers.input_root(self.spec.path), self.scans, shard_size,
        )
        entries: list[SampleInput | MoreFiles] = [
            SampleInput(shard_input.source_input(s, by_url), s.records) for s in cut
        ]
        return entries if self.complete else entries + [MoreFiles(self.name)]
