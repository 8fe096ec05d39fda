"""S3 credentials from a Prefect ``AwsCredentials`` block, for this process and its workers.

The recipe names the block (``run.aws_credentials_block``), never the credentials; the runner
puts the name in the environment, where worker processes inherit it, and every task calls
:func:`configure_credentials` before touching storage.
"""

from __future__ import annotations

import os
from typing import Any

from recipeflow.io import storage

# Name of a Prefect AwsCredentials block to take S3 credentials from (set by the runner from
# `run.aws_credentials_block`, inherited by worker processes). The recipe names the block, never
# the credentials.
AWS_BLOCK_ENV = "RECIPEFLOW_AWS_CREDENTIALS_BLOCK"
_configured_block: str | None = None


def configure_credentials() -> None:
    """Give s3fs the credentials of the AwsCredentials block named in the environment, once
    per process; without one, s3fs uses the standard AWS variables or profile."""
    global _configured_block
    name = os.environ.get(AWS_BLOCK_ENV)
    if not name or name == _configured_block:
        return
    from prefect_aws import AwsCredentials

    creds = AwsCredentials.load(name)
    options: dict[str, Any] = {}
    if creds.aws_access_key_id:
        options["key"] = creds.aws_access_key_id
    if creds.aws_secret_access_key:
        options["secret"] = creds.aws_secret_access_key.get_secret_value()
    if creds.aws_session_token:
        options["token"] = creds.aws_session_token
    if creds.profile_name:
        options["profile"] = creds.profile_name
    endpoint = creds.aws_client_parameters.endpoint_url
    if endpoint:
        options["endpoint_url"] = endpoint
    if creds.region_name:
        options["client_kwargs"] = {"region_name": creds.region_name}
    key_id = f", key id ...{creds.aws_access_key_id[-4:]}" if creds.aws_access_key_id else ""
    storage.use_s3_options(options, source=f"Prefect AwsCredentials block {name!r}{key_id}")
    _configured_block = name
