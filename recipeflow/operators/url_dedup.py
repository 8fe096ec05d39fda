"""``url_dedup``: keep one document per normalised URL (a barrier)."""

from __future__ import annotations

from urllib.parse import urlsplit

import numpy as np
import pyarrow as pa
import xxhash
from pydantic import Field

from recipeflow.operators.dedup.history import HistoryScope, ScopeParams
from recipeflow.operators.dedup.keep import KeepParams, shard_offsets, to_shard_rows
from recipeflow.operators.dedup.keys import _KEPT, KeyDeduplicator
from recipeflow.operators.base import BarrierDecision
from recipeflow.operators.registry import register

# Ports that say nothing about which page a URL names.
_DEFAULT_PORTS = {"http": 80, "https": 443, "": None}


class UrlDedupParams(KeepParams, ScopeParams):
    url_field: str = Field("url", description="The field holding each document's URL.")
    drop_query: bool = Field(
        False, description="Ignore the query string (`?a=b`) when comparing URLs."
    )
    partitions: int = Field(
        1,
        ge=1,
        description="Split the global step into this many tasks by hash range; the result "
        "does not depend on it.",
    )
    save_cluster_size: bool = Field(
        False,
        description="Write into every kept document how many duplicates of its URL were "
        "dropped (DataTrove's save_cluster_size; 0 when none), in `cluster_size_field`.",
    )
    cluster_size_field: str = Field(
        "duplicate_count", description="The field save_cluster_size writes (DataTrove's name)."
    )


def normalize_url(url: str | None, drop_query: bool = False) -> str | None:
    """The part of a URL that says which page it is; None for an empty one.

    The scheme is dropped (http and https name the same page), the host lower-cased and
    without ``www.``, a default port (80, 443) and the fragment dropped, a trailing slash
    removed; the path keeps its case. The query is kept unless ``drop_query``.
    """
    if url is None:
        return None
    url = url.strip()
    if not url:
        return None
    if "://" not in url and not url.startswith("//"):
        url = "//" + url  # "example.com/page": a host, not a relative path
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").rstrip(".")
        port = parts.port
    except ValueError:  # a malformed host or port: compare the text itself
        return url.lower()
    if host.startswith("www."):
        host = host[4:]
    scheme = parts.scheme.lower()
    if port is not None and (port == _DEFAULT_PORTS.get(scheme) or (not scheme and port in (80, 443))):
        port = None
    key = host + (f":{port}" if port is not None else "") + parts.path.rstrip("/")
    if parts.query and not drop_query:
        key += "?" + parts.query
    return key


@register
class UrlDedup(HistoryScope, KeyDeduplicator):
    """Keep one document per URL, compared after normalisation.

    URLs are normalised (no scheme, lower-case host without ``www.``, no default port, no
    fragment, no trailing slash; the query is kept unless ``drop_query``). Of the documents
    sharing a URL, ``keep`` chooses the survivor: the ``first`` in input order, the
    ``longest`` text, or the highest ``score`` of ``score_field``; ties go to the earlier
    document. The others are rejected (reason ``url_duplicate``, detail names the kept id).
    Documents without a URL are kept.

    With ``save_cluster_size`` every kept document gets ``duplicate_count``: how many
    documents with its URL were dropped (DataTrove's field; 0 when none).

    With ``scope: history`` every document the output dataset already published takes part
    too, and always wins its group: a refresh publishes only documents new to the corpus.
    """

    name = "url_dedup"
    version = "1"  # save_cluster_size off leaves the output as it was
    Params = UrlDedupParams
    reason = "url_duplicate"

    def keep_params(self) -> KeepParams:
        return self.params

    def merge(self, partials: list[pa.Table], shard_sizes: list[int]) -> list[BarrierDecision]:
        decisions = super().merge(partials, shard_sizes)
        if not self.params.save_cluster_size:
            return decisions
        # Each dropped document names its kept one: count them per kept document.
        field = self.params.cluster_size_field
        counts = [[0] * size for size in shard_sizes]
        kept = np.concatenate([p.column(_KEPT).to_numpy() for p in partials]) if partials else np.zeros(0, np.int64)
        positions, duplicates = np.unique(kept, return_counts=True)
        shards, rows = to_shard_rows(positions, shard_offsets(shard_sizes))
        for shard, row, count in zip(shards.tolist(), rows.tolist(), duplicates.tolist()):
            counts[shard][row] = count
        for decision, shard_counts in zip(decisions, counts):
            decision.fields = {**(decision.fields or {}), field: shard_counts}
        return decisions

    def keys(self, batch: pa.Table) -> list[bytes | None]:
        field = self.params.url_field
        if batch.num_rows == 0:
            return []
        if field not in batch.column_names:
            raise KeyError(
                f"url_dedup: url_field {field!r} is not a field of the documents (fields: "
                f"{', '.join(c for c in batch.column_names if not c.startswith('__'))}); "
                "set url_field to the field that holds the URL"
            )
        urls = batch.column(field).to_pylist()
        keys: list[bytes | None] = []
        for url in urls:
            normalised = normalize_url(None if url is None else str(url), self.params.drop_query)
            keys.append(None if normalised is None else xxhash.xxh3_128_digest(normalised.encode("utf-8")))
        return keys
