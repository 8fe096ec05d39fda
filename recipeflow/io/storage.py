"""All I/O goes through fsspec: local paths by default, ``s3://`` and others alike.

Local paths are made absolute here, once, so tasks in other processes see the same files.
"""

from __future__ import annotations

import json
import os
import uuid
from typing import Any

import fsspec
from fsspec.core import url_to_fs


class OutputNotWritable(OSError):
    """The output root cannot be created or written to."""


def is_local(url: str) -> bool:
    return "://" not in url or url.startswith("file://")


def absolute(url: str) -> str:
    """A local path made absolute (and ``~`` expanded); other URLs as they are."""
    if url.startswith("file://"):
        url = url[len("file://"):]
    if is_local(url):
        return os.path.abspath(os.path.expanduser(url))
    return url.rstrip("/")


def join(url: str, *parts: str) -> str:
    return "/".join([url.rstrip("/"), *[p.strip("/") for p in parts]])


def filesystem(url: str) -> tuple[fsspec.AbstractFileSystem, str]:
    return url_to_fs(url)


def exists(url: str) -> bool:
    fs, path = filesystem(url)
    return fs.exists(path)


def makedirs(url: str) -> None:
    fs, path = filesystem(url)
    fs.makedirs(path, exist_ok=True)


def list_dir(url: str) -> list[str]:
    """Names (not paths) of the entries of a folder; empty if it does not exist."""
    fs, path = filesystem(url)
    fs.invalidate_cache(path)  # s3fs caches listings: a long-lived process must see new versions
    try:
        entries = fs.ls(path, detail=False)
    except FileNotFoundError:
        return []
    return sorted(e.rstrip("/").rsplit("/", 1)[-1] for e in entries)


def write_bytes(url: str, data: bytes, exclusive: bool = False) -> None:
    """Write ``data`` to ``url``; ``exclusive``: only if nothing is there yet (write-if-absent:
    ``O_EXCL`` locally, ``If-None-Match: *`` on S3), else FileExistsError."""
    fs, path = filesystem(url)
    parent = path.rsplit("/", 1)[0]
    if parent:
        fs.makedirs(parent, exist_ok=True)
    with fs.open(path, "xb" if exclusive else "wb") as f:
        f.write(data)


def copy_file(source: str, target: str) -> None:
    """Stream ``source`` to ``target`` (any two fsspec URLs), parent folders made."""
    import shutil

    fs, path = filesystem(target)
    parent = path.rsplit("/", 1)[0]
    if parent:
        fs.makedirs(parent, exist_ok=True)
    with fsspec.open(source, "rb") as src, fs.open(path, "wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)


def find_files(url: str) -> list[str]:
    """Every file under a folder, as full URLs (local paths stay paths); empty if none."""
    fs, path = filesystem(url)
    fs.invalidate_cache(path)
    try:
        found = fs.find(path)
    except FileNotFoundError:
        return []
    prefix = url[: len(url) - len(path.rstrip("/"))] if url.rstrip("/").endswith(path.rstrip("/")) else ""
    return sorted(prefix + f for f in found)


def read_bytes(url: str) -> bytes:
    fs, path = filesystem(url)
    with fs.open(path, "rb") as f:
        return f.read()


def write_json(url: str, value: Any, exclusive: bool = False) -> bytes:
    """Write ``value`` as indented JSON; returns the bytes written."""
    data = (json.dumps(value, indent=2, ensure_ascii=False, default=str) + "\n").encode("utf-8")
    write_bytes(url, data, exclusive)
    return data


def read_json(url: str) -> Any:
    return json.loads(read_bytes(url))


def remove(url: str, recursive: bool = False) -> None:
    fs, path = filesystem(url)
    try:
        fs.rm(path, recursive=recursive)
    except FileNotFoundError:
        pass


def check_writable(root: str, *, recipe: str, field: str) -> None:
    """Fail before any work if ``root`` cannot hold a dataset: create it and write a probe."""
    probe = join(root, f".write-check-{uuid.uuid4().hex}")
    try:
        makedirs(root)
        write_bytes(probe, b"")
        remove(probe)
    except (OSError, PermissionError, ValueError) as exc:
        raise OutputNotWritable(
            f"{recipe}: {field}: cannot write to the output root {root!r} ({exc}). "
            "Choose a folder you can write to, or fix its permissions or credentials."
        ) from exc


def use_s3_options(options: dict[str, Any]) -> None:
    """Options (credentials, endpoint, region) for every s3fs filesystem made from now on in
    this process; instances made before are dropped so they pick them up."""
    fsspec.config.conf.setdefault("s3", {}).update(options)
    fsspec.filesystem("s3").clear_instance_cache()
