"""``url_filter``: drop documents whose URL is on a blocklist (domains, URLs, words in the URL).

The checks and reason codes follow DataTrove's ``URLFilter`` (FineWeb's first filter). Unlike
DataTrove, no list is built in or downloaded: every list is empty until the recipe names one,
inline or as files (any fsspec path, one entry per line, ``#`` starts a comment line). FineWeb
used the UT1 blacklist (https://dsi.ut-capitole.fr/blacklists/): give its ``domains`` and
``urls`` files as ``domain_files`` / ``url_files``.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence
from typing import Any, Literal
from urllib.parse import urlsplit

import fsspec
import pyarrow as pa
from pydantic import Field, field_validator

from recipeflow.operators.base import Filter, OperatorParams, Rejection
from recipeflow.operators.registry import register

# Words of a URL: what lies between non-alphanumeric characters (as DataTrove splits them).
_NON_ALPHANUMERIC = re.compile(r"[^a-zA-Z0-9]+")
REASON_STATISTIC = "url_block_reason"
MATCH_STATISTIC = "url_block_match"
_NO_URLS_BUILT_IN = (
    "recipeflow bundles and downloads no blocklist: name your lists with domain_files, "
    "url_files, banned_word_files... (e.g. the UT1 blacklist's `domains` file, which FineWeb used)"
)


def _files_field(what: str) -> Any:
    return Field(
        [],
        description=f"Files of {what}, one per line ('#' comment lines); any fsspec path.",
    )


class UrlFilterParams(OperatorParams):
    url_field: str = Field("url", description="Document field that holds the URL.")
    domains: list[str] = Field(
        [],
        description="Blocked domains; each blocks its subdomains too (example.com blocks "
        "www.example.com).",
    )
    domain_files: list[str] = _files_field("blocked domains")
    urls: list[str] = Field([], description="Blocked URLs (exact match).")
    url_files: list[str] = _files_field("blocked URLs")
    banned_words: list[str] = Field(
        [],
        description="Drop a URL that has any of these words (URL split on non-alphanumerics).",
    )
    banned_word_files: list[str] = _files_field("banned words")
    soft_banned_words: list[str] = Field(
        [],
        description="Drop a URL that has at least soft_word_threshold of these words.",
    )
    soft_banned_word_files: list[str] = _files_field("soft banned words")
    soft_word_threshold: int = Field(
        2, ge=1, description="How many soft banned words a URL may not reach."
    )
    banned_subwords: list[str] = Field(
        [],
        description="Drop a URL that contains any of these anywhere, once lower-cased and "
        "stripped of non-alphanumerics (catches words glued together: 'freexxxvideos').",
    )
    banned_subword_files: list[str] = _files_field("banned subwords")
    missing_url: Literal["drop", "keep"] = Field(
        "drop", description="A document without a URL: drop it (reason no_url) or keep it."
    )
    use_integrated_lists: bool = Field(
        False, description="DataTrove's downloaded lists; not available: " + _NO_URLS_BUILT_IN
    )

    @field_validator("use_integrated_lists")
    @classmethod
    def _no_integrated_lists(cls, value: bool) -> bool:
        if value:
            raise ValueError(_NO_URLS_BUILT_IN)
        return value


@functools.lru_cache(maxsize=32)
def _file_entries(path: str) -> tuple[str, ...]:
    """The entries of a list file (read once per process): stripped, no blanks or comments."""
    with fsspec.open(path, "rt", encoding="utf-8", compression="infer") as handle:
        lines = [line.strip() for line in handle]
    return tuple(line for line in lines if line and not line.startswith("#"))


def _entries(inline: Iterable[str], files: Sequence[str]) -> list[str]:
    found = [entry.strip() for entry in inline if entry.strip()]
    for path in files:
        found.extend(_file_entries(path))
    return found


def _normalized_word(word: str) -> str:
    return _NON_ALPHANUMERIC.sub("", word).lower()


def _domain(entry: str) -> str:
    return entry.lower().strip(".")


def url_host(url: str) -> str | None:
    """The URL's host name, lower-case, without port or credentials; a URL without a
    scheme ("example.com/page") is read as one with."""
    try:
        host = urlsplit(url if "//" in url else "//" + url).hostname
    except ValueError:  # e.g. an unbalanced IPv6 bracket
        return None
    host = (host or "").strip(".")
    return host or None


def parent_domains(host: str) -> list[str]:
    """``a.b.example.com`` -> ``[b.example.com, example.com, com]``."""
    labels = host.split(".")
    return [".".join(labels[i:]) for i in range(1, len(labels))]


@register
class UrlFilter(Filter):
    """Drop documents whose URL's domain, URL or URL words are blocklisted (as DataTrove's URLFilter).

    Checks in order, each with DataTrove's reason code: ``domain`` (the host is a listed
    domain), ``subdomain`` (the host is under a listed domain), ``url`` (the exact URL is
    listed), ``hard_blacklisted`` (a banned word), ``soft_blacklisted`` (at least
    ``soft_word_threshold`` soft banned words), ``blacklisted_subword``; ``no_url`` when the
    document has none. Word checks ignore case. Statistics: ``url_block_reason`` and
    ``url_block_match`` (what matched), null for kept documents.

    Lists are empty by default; nothing is downloaded. List files are read when the operator
    starts; cached results know the file paths, not their contents, so give a changed list a
    new path (e.g. a dated name).
    """

    name = "url_filter"
    version = "1"
    Params = UrlFilterParams

    def __init__(self, params=None):
        super().__init__(params)
        p = self.params
        self._domains = {_domain(e) for e in _entries(p.domains, p.domain_files)}
        self._urls = set(_entries(p.urls, p.url_files))
        self._banned = {_normalized_word(e) for e in _entries(p.banned_words, p.banned_word_files)}
        self._soft = {
            _normalized_word(e) for e in _entries(p.soft_banned_words, p.soft_banned_word_files)
        }
        subwords = {_normalized_word(e) for e in _entries(p.banned_subwords, p.banned_subword_files)}
        subwords.discard("")
        self._subwords = (
            re.compile("|".join(re.escape(w) for w in sorted(subwords, key=len, reverse=True)))
            if subwords
            else None
        )

    def check(self, url: str | None) -> tuple[str, str] | None:
        """``(reason, what matched)`` when ``url`` is blocked, else ``None``."""
        if not url:
            if self.params.missing_url == "keep":
                return None
            return "no_url", f"no {self.params.url_field!r} value"
        host = url_host(url)
        if host is not None and self._domains:
            if host in self._domains:
                return "domain", host
            listed = next((d for d in parent_domains(host) if d in self._domains), None)
            if listed is not None:
                return "subdomain", listed
        if url in self._urls:
            return "url", url
        return self._check_words(url)

    def _check_words(self, url: str) -> tuple[str, str] | None:
        words = set(_NON_ALPHANUMERIC.split(url.lower()))
        banned = sorted(words & self._banned)
        if banned:
            return "hard_blacklisted", ",".join(banned)
        soft = sorted(words & self._soft)
        if self._soft and len(soft) >= self.params.soft_word_threshold:
            return "soft_blacklisted", ",".join(soft)
        if self._subwords is not None:
            found = self._subwords.search(_normalized_word(url))
            if found:
                return "blacklisted_subword", found.group(0)
        return None

    def compute_stats(self, batch: pa.Table) -> dict[str, Any]:
        field = self.params.url_field
        if field in batch.column_names:
            urls = [u if isinstance(u, str) else None for u in batch.column(field).to_pylist()]
        else:
            urls = [None] * len(batch)
        verdicts = [self.check(url) for url in urls]
        return {
            REASON_STATISTIC: pa.array([v[0] if v else None for v in verdicts], pa.string()),
            MATCH_STATISTIC: pa.array([v[1] if v else None for v in verdicts], pa.string()),
        }

    def decide(self, stats: dict[str, Any]) -> list[Rejection | None]:
        reasons = _as_list(stats[REASON_STATISTIC])
        matches = _as_list(stats[MATCH_STATISTIC])
        return [
            None if reason is None else Rejection(reason, REASON_STATISTIC, None, f"matched={match}")
            for reason, match in zip(reasons, matches)
        ]


def _as_list(values: Any) -> list[Any]:
    return values.to_pylist() if isinstance(values, (pa.Array, pa.ChunkedArray)) else list(values)
