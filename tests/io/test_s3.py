"""Inputs, outputs and the stage cache on S3 (moto's server on 127.0.0.1, real s3fs)."""

from __future__ import annotations

import json

import fsspec
import pyarrow.parquet as pq
import pytest
import yaml

from recipeflow.datasets import versions
from recipeflow.orchestration.runner import run_recipe
from tests.conftest import SAMPLE_WARC
from tests.s3 import CREDENTIALS, s3_endpoint

BUCKET = "recipeflow-test"


@pytest.fixture(scope="module")
def s3():
    with s3_endpoint(BUCKET) as endpoint:
        fs = fsspec.filesystem("s3", skip_instance_cache=True)
        fs.put(str(SAMPLE_WARC), f"{BUCKET}/raw/pages.warc.gz")
        yield endpoint


def test_recipe_reads_and_writes_s3(tmp_path, prefect_api, s3):
    recipe = {
        "name": "s3-run",
        "inputs": {"pages": {"path": f"s3://{BUCKET}/raw/*.warc.gz"}},
        "process": [{"html_extract": {}}, {"text_length_filter": {"min_length": 1000}}, {"exact_dedup": {}}],
        "output": {"path": f"s3://{BUCKET}/datasets/pages", "keep_rejected": True},
        "run": {"executor": "processes", "workers": 2, "shard_size": 100},
    }
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(recipe))
    [first] = run_recipe(str(path), progress=False)
    [second] = run_recipe(str(path), progress=False)  # nothing changed: no version
    [third] = run_recipe(str(path), ["output.keep_rejected=false"], progress=False)

    listed = versions.list_versions(f"s3://{BUCKET}/datasets/pages")
    assert second["committed"] is False and second["parent"] == first["version"]
    assert [v["version"] for v in listed] == [first["version"], third["version"]]
    assert third["parent"] == first["version"]
    assert [f["sha256"] for f in first["files"]] == [f["sha256"] for f in third["files"]]

    fs = fsspec.filesystem("s3", skip_instance_cache=True)
    folder = f"{BUCKET}/datasets/pages/versions/{first['version']}"
    with fs.open(f"{folder}/{first['files'][0]['path']}", "rb") as f:
        table = pq.read_table(f)
    assert table.num_rows == first["files"][0]["rows"]
    assert table.column("input_file")[0].as_py().startswith(f"s3://{BUCKET}/raw/")
    # The stage cache lives on S3 too, the shards' documents in packs (uploaded whole).
    assert fs.ls(f"{BUCKET}/datasets/pages/cache/packs")
    assert any(p.endswith("kept.parquet") for p in fs.find(f"{BUCKET}/datasets/pages/cache/packs"))
    # Credentials never reach a manifest.
    manifest = fs.cat(f"{folder}/manifest.json").decode()
    for secret in CREDENTIALS.values():
        assert secret not in manifest
    assert json.loads(manifest)["inputs"][0]["files"][0]["url"] == f"s3://{BUCKET}/raw/pages.warc.gz"


def test_credentials_from_a_prefect_aws_credentials_block(tmp_path, prefect_api, s3, monkeypatch):
    """No AWS variables in the environment: s3fs gets key, secret and endpoint from the block."""
    import os

    from prefect_aws import AwsCredentials
    from prefect_aws.client_parameters import AwsClientParameters

    AwsCredentials(
        aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        region_name="us-east-1",
        aws_client_parameters=AwsClientParameters(endpoint_url=s3),
    ).save("recipeflow-test-s3", overwrite=True)
    for key in [*CREDENTIALS, "AWS_ENDPOINT_URL"]:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    recipe = {
        "name": "s3-block",
        "inputs": {"pages": {"path": f"s3://{BUCKET}/raw/*.warc.gz"}},
        "process": [{"html_extract": {}}, {"text_length_filter": {"min_length": 1000}}],
        "output": {"path": f"s3://{BUCKET}/datasets/from-block"},
        "run": {"executor": "processes", "workers": 2, "shard_size": 100,
                "aws_credentials_block": "recipeflow-test-s3"},
    }
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(recipe))
    [manifest] = run_recipe(str(path), progress=False)
    assert manifest["rows"] > 0
    assert CREDENTIALS["AWS_SECRET_ACCESS_KEY"] not in json.dumps(manifest)
    os.environ.pop("RECIPEFLOW_AWS_CREDENTIALS_BLOCK", None)
