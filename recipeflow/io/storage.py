"""All I/O goes through fsspec: local paths by default, ``s3://`` and others alike.

Local paths are made absolute here, once, so tasks in other processes see the same files.
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from collections.abc import Iterator
from typing import IO, Any

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
    if is_local(url):  # without fsspec: a run asks once per shard whether its result is stored
        return os.path.exists(absolute(url))
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


@contextlib.contextmanager
def replacing(url: str, exclusive: bool = False, durable: bool = False) -> Iterator[IO[bytes]]:
    """A binary file to write that appears at ``url`` whole or not at all, when the block ends
    without error; ``exclusive``: only if nothing is there yet, else FileExistsError
    (write-if-absent: a hard link locally, ``If-None-Match: *`` on S3); ``durable``: flushed
    to disk before it takes the name.

    On local disk the bytes go to a temporary name beside ``url``, which then takes its place
    (renamed over it, or hard-linked to it when exclusive, since a link fails on an existing
    name): a full disk, a kill, or a second run writing the same cache address leaves a stray
    temporary file, never a torn ``url`` that a reader could open half-written. An object
    store's PUT is already all-or-nothing, so it is written in place.
    """
    if not is_local(url):
        fs, path = filesystem(url)
        parent = path.rsplit("/", 1)[0]
        if parent:
            fs.makedirs(parent, exist_ok=True)
        with fs.open(path, "xb" if exclusive else "wb") as f:
            yield f
        return
    path = absolute(url)
    parent = os.path.dirname(path)
    os.makedirs(parent, exist_ok=True)
    temporary = os.path.join(parent, f".{os.path.basename(path)}.tmp-{uuid.uuid4().hex}")
    try:
        # Python's own file, not fsspec's: a run writes a result.json per shard, thousands.
        with open(temporary, "wb") as f:
            yield f
            if durable:
                f.flush()
                os.fsync(f.fileno())
        if exclusive:
            os.link(temporary, path)
        else:
            os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def staging_path(folder: str, name: str) -> str:
    """A local file to write now and give its name later (:func:`place_file`): under
    ``folder``'s ``.staging`` when ``folder`` is local (the same disk, so placing it is a
    rename), in the system's temporary folder otherwise."""
    unique = f"{uuid.uuid4().hex}-{name}"
    if not is_local(folder):
        import tempfile

        return os.path.join(tempfile.gettempdir(), f"recipeflow-{unique}")
    staging = os.path.join(absolute(folder), STAGING_DIR)
    os.makedirs(staging, exist_ok=True)
    return os.path.join(staging, unique)


STAGING_DIR = ".staging"


def place_file(local_path: str, url: str) -> None:
    """Give the local file ``local_path`` its final name ``url`` (replacing what is there): a
    rename on local disk, an upload (one PUT, all or nothing) to an object store."""
    fs, path = filesystem(url)
    if is_local(url):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        os.replace(local_path, path)
        return
    try:
        fs.put_file(local_path, path)
    finally:
        os.remove(local_path)


def write_bytes(url: str, data: bytes, exclusive: bool = False, durable: bool = False) -> None:
    """Write ``data`` to ``url``, whole or not at all (see :func:`replacing`)."""
    with replacing(url, exclusive, durable) as f:
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


def open_binary(url: str) -> IO[bytes]:
    """``url`` opened for reading bytes: a local path with Python's own file (a run opens its
    inputs once per shard, thousands of times; fsspec's open costs 50 µs more), others through
    fsspec. Use it as a context manager."""
    if is_local(url):
        return open(absolute(url), "rb")
    return fsspec.open(url, "rb").open()


def read_bytes(url: str) -> bytes:
    if is_local(url):  # Python's own file: a run reads a result.json per shard, thousands
        with open(absolute(url), "rb") as f:
            return f.read()
    fs, path = filesystem(url)
    with fs.open(path, "rb") as f:
        return f.read()


def write_json(url: str, value: Any, *, durable: bool = False, exclusive: bool = False,
               indent: int | None = 2) -> bytes:
    """Write ``value`` as JSON, indented unless ``indent`` is None (Python's C encoder: a big
    machine-read file writes 10 times faster), whole or not at all (``durable`` and
    ``exclusive``: see :func:`replacing`); returns the bytes written. A task's result is read
    by any run that computes the same address, perhaps while another writes it."""
    data = (json.dumps(value, indent=indent, ensure_ascii=False, default=str) + "\n").encode("utf-8")
    write_bytes(url, data, exclusive, durable)
    return data


def read_json(url: str) -> Any:
    return json.loads(read_bytes(url))


def remove(url: str, recursive: bool = False) -> None:
    fs, path = filesystem(url)
    try:
        fs.rm(path, recursive=recursive)
    except FileNotFoundError:
        pass


# Object stores whose first path segment is a bucket that writing would create silently.
BUCKET_PROTOCOLS = ("s3", "s3a", "gs", "gcs")


def check_writable(root: str, *, recipe: str, field: str, create_bucket: bool = False) -> None:
    """Fail before any work if ``root`` cannot hold a dataset: create it and write a probe.

    On an object store the bucket must exist unless ``create_bucket`` (a misspelt bucket name
    must not become a new bucket), and a refusal says which URL and which credentials."""
    probe = join(root, f".write-check-{uuid.uuid4().hex}")
    try:
        if root.split("://", 1)[0] in BUCKET_PROTOCOLS:
            _check_bucket(root, recipe=recipe, field=field, create=create_bucket)
        makedirs(root)
        write_bytes(probe, b"")
        remove(probe)
    except OutputNotWritable:
        raise
    except Exception as exc:
        if not isinstance(exc, (OSError, ValueError)) and not is_access_error(exc):
            raise
        if not is_local(root):
            raise OutputNotWritable(f"{recipe}: {field}: {access_problem(root, exc)}") from None
        raise OutputNotWritable(
            f"{recipe}: {field}: cannot write to the output root {root!r} ({exc}). "
            "Choose a folder you can write to, or fix its permissions or credentials."
        ) from exc


def _check_bucket(root: str, *, recipe: str, field: str, create: bool) -> None:
    fs, path = filesystem(root)
    bucket = path.split("/", 1)[0]
    try:
        fs.info(bucket)
        return
    except FileNotFoundError:
        pass
    except PermissionError:
        return  # may write without listing: the write probe decides, and says why
    protocol = root.split("://", 1)[0]
    if not create:
        spec = field.rsplit(".", 1)[0]
        raise OutputNotWritable(
            f"{recipe}: {field}: the bucket {protocol}://{bucket} of {root} does not exist "
            f"(credentials: {credential_source(root)}); check its name, create it, or set "
            f"{spec}.create_bucket: true to have recipeflow create it")
    fs.makedirs(bucket, exist_ok=True)


# -- credentials in error messages ------------------------------------------------------------

_s3_source: str | None = None  # who gave the s3 options of use_s3_options, for messages


def is_access_error(exc: BaseException) -> bool:
    """A refusal or a lack of credentials (s3fs raises PermissionError; botocore its own)."""
    return isinstance(exc, PermissionError) or type(exc).__name__ in (
        "NoCredentialsError", "PartialCredentialsError", "ClientError")


def access_problem(url: str, exc: BaseException) -> str:
    """One paragraph for a person: the URL, what the store said, which credentials were used
    (never a secret) and what to check."""
    said = str(exc).strip().rstrip(".") or type(exc).__name__
    if said == "Forbidden":
        said = "403 Forbidden"
    endpoint = _endpoint(url)
    at = f" at {endpoint}" if endpoint else ""
    return (f"cannot access {url}{at}: {said}. Credentials used: {credential_source(url)}. "
            "Check the access key and secret (or the profile, or the Prefect block named by "
            "run.aws_credentials_block), the endpoint, and that they may read and write this "
            "bucket")


def credential_source(url: str) -> str:
    """Where the credentials for ``url`` come from, as botocore resolves them; the access key
    id is shown by its last four characters, the secret never."""
    if is_local(url):
        return "local file permissions"
    if not url.startswith(("s3://", "s3a://")):
        return f"the default credentials of the {url.split('://', 1)[0]} filesystem"
    options = fsspec.config.conf.get("s3", {})
    if _s3_source and (options.get("key") or options.get("profile")):
        return _s3_source
    if options.get("key"):
        return f"a key and secret set in fsspec's s3 options (key id ...{str(options['key'])[-4:]})"
    try:
        import botocore.session

        profile = options.get("profile") or os.environ.get("AWS_PROFILE")
        session = botocore.session.Session(profile=profile)
        credentials = session.get_credentials()
    except Exception as error:  # a broken profile: say so rather than hide the first error
        return f"none usable ({error})"
    if credentials is None:
        return ("none found: no AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, no AWS profile, no "
                "run.aws_credentials_block")
    method = {
        "env": "the environment variables AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
        "shared-credentials-file": f"profile {profile or 'default'!r} of ~/.aws/credentials",
        "config-file": f"profile {profile or 'default'!r} of ~/.aws/config",
    }.get(credentials.method, f"botocore's {credentials.method!r} provider")
    key_id = credentials.access_key or ""
    return f"{method} (key id ...{key_id[-4:]})" if key_id else method


def _endpoint(url: str) -> str | None:
    if not url.startswith(("s3://", "s3a://")):
        return None
    options = fsspec.config.conf.get("s3", {})
    return options.get("endpoint_url") or options.get("client_kwargs", {}).get(
        "endpoint_url") or os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")


def use_s3_options(options: dict[str, Any], *, source: str | None = None) -> None:
    """Options (credentials, endpoint, region) for every s3fs filesystem made from now on in
    this process; instances made before are dropped so they pick them up. ``source`` says
    where they came from, for error messages."""
    global _s3_source
    _s3_source = source
    fsspec.config.conf.setdefault("s3", {}).update(options)
    fsspec.filesystem("s3").clear_instance_cache()
