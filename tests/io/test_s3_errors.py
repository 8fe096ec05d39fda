"""S3 set-up mistakes end in one short message before any work: a missing output bucket, a
wrong key or secret (moto's server with its signature checks on, real s3fs and botocore)."""

from __future__ import annotations

import json
import os
import urllib.request
from pathlib import Path

import fsspec
import pytest
import yaml
from click.testing import CliRunner

from recipeflow.cli import main
from recipeflow.orchestration.runner import RunRefused, prepare
from recipeflow.recipe.loading import load_recipe
from tests.s3 import s3_endpoint

BUCKET = "recipeflow-errors"


def _moto_auth(endpoint: str, actions_before_auth: str) -> None:
    request = urllib.request.Request(f"{endpoint}/moto-api/reset-auth", method="POST",
                                     data=actions_before_auth.encode(),
                                     headers={"Content-Type": "text/plain"})
    urllib.request.urlopen(request).close()


@pytest.fixture(scope="module")
def s3_user():
    """An endpoint that checks signatures, and the real key of a user allowed everything."""
    import boto3
    from s3fs import S3FileSystem

    with s3_endpoint(BUCKET) as endpoint:
        iam = boto3.client("iam", endpoint_url=endpoint)
        iam.create_user(UserName="recipeflow")
        iam.put_user_policy(UserName="recipeflow", PolicyName="all", PolicyDocument=json.dumps(
            {"Version": "2012-10-17",
             "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
        key = iam.create_access_key(UserName="recipeflow")["AccessKey"]
        _moto_auth(endpoint, "0")
        try:
            yield key["AccessKeyId"], key["SecretAccessKey"]
        finally:
            _moto_auth(endpoint, "inf")
            S3FileSystem.clear_instance_cache()


@pytest.fixture
def as_user(s3_user, monkeypatch):
    from s3fs import S3FileSystem

    key_id, secret = s3_user
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key_id)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    S3FileSystem.clear_instance_cache()
    yield s3_user
    S3FileSystem.clear_instance_cache()


def recipe_file(tmp_path: Path, inputs: str, output: dict) -> str:
    (tmp_path / "docs.jsonl").write_text('{"text": "hello"}\n')
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump({
        "name": "s3-errors", "inputs": {"docs": {"path": inputs, "format": "jsonl"}},
        "process": [{"text_length_filter": {"min_length": 1}}], "output": output}))
    return str(path)


def test_a_missing_output_bucket_is_an_error_unless_create_bucket(tmp_path, as_user) -> None:
    missing = "recipeflow-no-such-bucket"
    path = recipe_file(tmp_path, str(tmp_path / "docs.jsonl"), {"path": f"s3://{missing}/out"})
    with pytest.raises(RunRefused) as refused:
        prepare(load_recipe(path), str(tmp_path))
    message = str(refused.value)
    assert f"s3://{missing} of s3://{missing}/out does not exist" in message
    assert "output.create_bucket: true" in message
    fs = fsspec.filesystem("s3", skip_instance_cache=True)
    assert not fs.exists(missing)

    prepare(load_recipe(path, ["output.create_bucket=true"]), str(tmp_path))
    assert fs.exists(missing)


@pytest.mark.parametrize("wrong", ["secret", "key"])
def test_wrong_credentials_give_a_short_error_naming_url_and_source(
    tmp_path, as_user, monkeypatch, wrong
) -> None:
    key_id, secret = as_user
    if wrong == "secret":
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret-" + secret[:4])
    else:
        key_id = "AKIAWRONGWRONGWRONG1"
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", key_id)
    fs = fsspec.filesystem("s3", skip_instance_cache=True, key=as_user[0], secret=secret)
    fs.pipe(f"{BUCKET}/in/docs.jsonl", b'{"text": "hello"}\n')

    for inputs, field in ((f"s3://{BUCKET}/in/*.jsonl", "inputs.docs.path"),
                          (str(tmp_path / "docs.jsonl"), "output.path")):
        path = recipe_file(tmp_path, inputs, {"path": f"s3://{BUCKET}/datasets/out"})
        result = CliRunner().invoke(main, ["run", "--no-progress", path])
        output = result.output
        assert result.exit_code == 2, output
        assert "Traceback" not in output and len(output.strip().splitlines()) <= 3, output
        url = inputs if field.startswith("inputs") else f"s3://{BUCKET}/datasets/out"
        assert f"{field}: cannot access {url}" in output
        assert "environment variables AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY" in output
        assert f"key id ...{key_id[-4:]}" in output
        assert secret not in output and os.environ["AWS_SECRET_ACCESS_KEY"] not in output
