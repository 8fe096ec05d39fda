"""A real S3 endpoint on 127.0.0.1 (moto's server), started and stopped by the tests."""

from __future__ import annotations

import os
import socket
from contextlib import contextmanager
from typing import Iterator

CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "recipeflow-test-key",
    "AWS_SECRET_ACCESS_KEY": "recipeflow-test-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def s3_endpoint(bucket: str) -> Iterator[str]:
    """Start moto's S3 server, create ``bucket`` with versioning on, export the standard AWS
    variables (AWS_ENDPOINT_URL included) and yield the endpoint URL; stop it afterwards."""
    import copy

    import boto3
    import fsspec
    from moto.server import ThreadedMotoServer
    from s3fs import S3FileSystem

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    saved = {k: os.environ.get(k) for k in [*CREDENTIALS, "AWS_ENDPOINT_URL"]}
    # A test's credentials block leaves its key and endpoint in fsspec's s3 options: restored below.
    saved_options = copy.deepcopy(fsspec.config.conf.get("s3"))
    os.environ.update(CREDENTIALS, AWS_ENDPOINT_URL=endpoint)
    # s3fs instances made for an earlier endpoint (another test module's) would still call it.
    S3FileSystem.clear_instance_cache()
    try:
        client = boto3.client("s3", endpoint_url=endpoint)
        client.create_bucket(Bucket=bucket)
        client.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        yield endpoint
    finally:
        server.stop()
        if saved_options is None:
            fsspec.config.conf.pop("s3", None)
        else:
            fsspec.config.conf["s3"] = saved_options
        S3FileSystem.clear_instance_cache()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
