"""``url_filter``: drop documents whose URL is on a blocklist (domains, URLs, words in the URL).

The checks, reason codes and parameter names follow DataTrove's ``URLFilter`` (FineWeb's first
filter): ``extra_domains`` / ``extra_urls`` are accepted for ``domains`` / ``urls``, the domain
checks use the registered domain and the host as tldextract gives them (see
:meth:`UrlFilter.check`), and ``use_integrated_lists`` adds DataTrove's built-in lists: its
three word lists ship with recipeflow (``data/datatrove_*.txt``, Apache-2.0), while its domain
and URL lists (the UT1 blacklist, CC BY-SA 4.0, 18 MB compressed and 125 MB of domains) do not:
they are read from ``integrated_lists_path`` or from an installed ``datatrove`` package. Lists
may also be named in the recipe, inline or as files (any fsspec path, one entry per line, ``#``
starts a comment line).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence
from typing import Any, Literal
from pathlib import Path
from urllib.parse import urlsplit

import fsspec
import pyarrow as pa
from pydantic import AliasChoices, Field, model_validator

from recipeflow.operators.base import Filter, OperatorParams, Rejection
from recipeflow.operators.registry import register

# Words of a URL: what lies between non-alphanumeric characters (as DataTrove splits them).
_NON_ALPHANUMERIC = re.compile(r"[^a-zA-Z0-9]+")
REASON_STATISTIC = "url_block_reason"
MATCH_STATISTIC = "url_block_match"
_DATA = Path(__file__).parent / "data"
# DataTrove's asset holding the UT1 domain and URL lists (members `domains` and `urls`).
_DATATROVE_TARBALL = "url_filterblacklistsv0_3_0.tar.gz"


def _files_field(what: str) -> Any:
    return Field(
        [],
        description=f"Files of {what}, one per line ('#' comment lines); any fsspec path.",
    )


class UrlFilterParams(OperatorParams):
    url_field: str = Field("url", description="Document field that holds the URL.")
    domains: list[str] = Field(
        [],
        validation_alias=AliasChoices("domains", "extra_domains"),
        description="Blocked domains (DataTrove: extra_domains). A URL is blocked when its "
        "registered domain (example.com of www.example.com) or its whole host is listed.",
    )
    domain_files: list[str] = _files_field("blocked domains")
    urls: list[str] = Field(
        [],
        validation_alias=AliasChoices("urls", "extra_urls"),
        description="Blocked URLs, exact match (DataTrove: extra_urls).",
    )
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
        False,
        description="Add DataTrove's built-in lists: its banned, soft banned and subword lists "
        "(shipped) and its UT1 domain and URL lists (from integrated_lists_path or an installed "
        "datatrove package). DataTrove's default is true; recipeflow's is false, as those lists "
        "are not shipped.",
    )
    integrated_lists_path: str | None = Field(
        None,
        description="recipeflow's own: DataTrove's " + _DATATROVE_TARBALL + " (or a folder "
        "holding its `domains` and `urls` files) for use_integrated_lists; null: the one inside "
        "an installed datatrove package.",
    )

    @model_validator(mode="after")
    def _integrated_lists_found(self):
        if self.use_integrated_lists:
            integrated_domain_source(self.integrated_lists_path)
        return self


def integrated_domain_source(path: str | None) -> str:
    """Where DataTrove's UT1 domain and URL lists are read from; a clear error when nowhere."""
    if path is not None:
        return path
    import importlib.util

    spec = importlib.util.find_spec("datatrove")
    if spec is not None and spec.submodule_search_locations:
        candidate = Path(list(spec.submodule_search_locations)[0]) / "assets" / _DATATROVE_TARBALL
        if candidate.is_file():
            return str(candidate)
    raise ValueError(
        "use_integrated_lists: DataTrove's domain and URL lists (the UT1 blacklist, CC BY-SA "
        "4.0, 18 MB) are not shipped with recipeflow; `pip install datatrove` (its wheel holds "
        f"assets/{_DATATROVE_TARBALL}) or set integrated_lists_path to that file or to a folder "
        "with its `domains` and `urls` files. DataTrove's word lists are shipped and need neither"
    )


@functools.lru_cache(maxsize=4)
def _integrated_domains_and_urls(source: str) -> tuple[frozenset[str], frozenset[str]]:
    """DataTrove's lists, entries stripped and kept as they are (DataTrove does not normalise
    them), comment lines skipped."""
    import tarfile

    def entries(lines) -> frozenset[str]:
        return frozenset(x.strip() for x in lines if x and not x.startswith("#"))

    fs, root = fsspec.core.url_to_fs(source)
    if fs.isdir(root):
        found = []
        for name in ("domains", "urls"):
            with fs.open(f"{root.rstrip('/')}/{name}", "rt", encoding="utf-8", errors="replace") as handle:
                found.append(entries(handle))
        return found[0], found[1]
    with fs.open(root, "rb") as raw, tarfile.open(fileobj=raw, mode="r:gz") as tar:
        lists = {}
        for name in ("domains", "urls"):
            member = tar.extractfile(name)
            if member is None:
                raise ValueError(f"{source} has no `{name}` member (not DataTrove's {_DATATROVE_TARBALL}?)")
            lists[name] = entries(line.decode("utf-8", "replace") for line in member)
    return lists["domains"], lists["urls"]


def _bundled_words(name: str) -> list[str]:
    """A DataTrove word list shipped in data/ (lines as DataTrove reads them)."""
    with open(_DATA / f"datatrove_{name}.txt", encoding="utf-8") as handle:
        return [line for line in handle if line[:1] != "#"]


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

    Checks in order, each with DataTrove's reason code: ``domain`` (the URL's registered
    domain is listed: example.com blocks www.example.com), ``subdomain`` (its whole host is
    listed: a.example.com blocks a.example.com only), ``url`` (the exact URL is listed),
    ``hard_blacklisted`` (a banned word), ``soft_blacklisted`` (at least
    ``soft_word_threshold`` soft banned words), ``blacklisted_subword``; ``no_url`` when the
    document has none. DataTrove's parameter names ``extra_domains`` and ``extra_urls`` are
    accepted. Statistics: ``url_block_reason`` and ``url_block_match`` (what matched), null for
    kept documents.

    Lists are empty by default (``use_integrated_lists`` adds DataTrove's); nothing is
    downloaded. List files are read when the operator
    starts; cached results know the file paths, not their contents, so give a changed list a
    new path (e.g. a dated name).
    """

    name = "url_filter"
    version = "2"  # 2: DataTrove's domain/subdomain rules (tldextract)
    Params = UrlFilterParams

    def __init__(self, params=None):
        super().__init__(params)
        p = self.params
        # As DataTrove: URL entries are stripped, not normalised; words are normalised
        # (non-alphanumerics removed, lower case). Domains are compared in lower case (host
        # names ignore case; DataTrove compares them as written, which differs only for
        # upper-case hosts or entries).
        self._domains = {e.lower() for e in _entries(p.domains, p.domain_files)}
        self._urls = set(_entries(p.urls, p.url_files))
        banned = _entries(p.banned_words, p.banned_word_files)
        soft = _entries(p.soft_banned_words, p.soft_banned_word_files)
        subword_entries = _entries(p.banned_subwords, p.banned_subword_files)
        if p.use_integrated_lists:
            domains, urls = _integrated_domains_and_urls(integrated_domain_source(p.integrated_lists_path))
            self._domains |= {d.lower() for d in domains}
            self._urls |= urls
            banned += _bundled_words("banned_words")
            soft += _bundled_words("soft_banned_words")
            subword_entries += _bundled_words("banned_subwords")
        self._banned = {_normalized_word(e) for e in banned}
        self._soft = {_normalized_word(e) for e in soft}
        subwords = {_normalized_word(e) for e in subword_entries}
        subwords.discard("")
        self._subwords = (
            re.compile("|".join(re.escape(w) for w in sorted(subwords, key=len, reverse=True)))
            if subwords
            else None
        )

    @functools.cached_property
    def _tld_extract(self):
        import tldextract

        # The public suffix list snapshot inside the tldextract wheel: nothing is fetched.
        return tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)

    def check(self, url: str | None) -> tuple[str, str] | None:
        """``(reason, what matched)`` when ``url`` is blocked, else ``None``.

        As DataTrove: ``domain`` when the URL's registered domain (tldextract's, public
        suffix list) is listed, ``subdomain`` when its whole host is, so listing
        ``badsubdomain.nice.com`` blocks that host but not ``sdsd.badsubdomain.nice.com``;
        hosts and entries are compared in lower case."""
        if not url:
            if self.params.missing_url == "keep":
                return None
            return "no_url", f"no {self.params.url_field!r} value"
        if self._domains:
            parts = self._tld_extract(url)
            registered, host = parts.top_domain_under_public_suffix.lower(), parts.fqdn.lower()
            if registered in self._domains:
                return "domain", registered
            if host in self._domains:
                return "subdomain", host
        if url in self._urls:
            return "url", url
        return self._check_words(url)

    def _check_words(self, url: str) -> tuple[str, str] | None:
        # DataTrove splits the URL as written (no lower-casing) for whole words.
        words = set(_NON_ALPHANUMERIC.split(url))
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
