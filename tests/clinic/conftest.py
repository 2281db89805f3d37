"""Fixtures of the clinic tests: an S3-compatible server (moto) on loopback and its buckets."""

from __future__ import annotations

import socket
import uuid
from dataclasses import dataclass

import boto3
import pytest

from core.env import env_s3_media_storage
from tests.conftest import REQUIRE_SERVICES

REGION = "us-east-1"
ACCESS_KEY = "ophai-test-key"
SECRET_KEY = "ophai-test-secret"  # noqa: S105 - moto accepts any credentials


@pytest.fixture(scope="session")
def s3_endpoint():
    """A moto S3 server on 127.0.0.1 and a free port, for the whole session."""
    try:
        from moto.server import ThreadedMotoServer

        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
    except (ImportError, OSError) as exc:
        message = f"the moto S3 server cannot start: {exc} (pip install -r requirements.txt)"
        if REQUIRE_SERVICES:
            pytest.fail(message)
        pytest.skip(message)
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@dataclass
class Bucket:
    name: str
    client: object

    def keys(self) -> set[str]:
        listing = self.client.list_objects_v2(Bucket=self.name)
        return {entry["Key"] for entry in listing.get("Contents", [])}

    def read(self, key: str) -> bytes:
        return self.client.get_object(Bucket=self.name, Key=key)["Body"].read()


def use_bucket(monkeypatch, settings, *, endpoint: str, bucket: str) -> None:
    """Configure media storage exactly as production does: from MEDIA_S3_* variables."""
    for name, value in {
        "MEDIA_S3_BUCKET": bucket,
        "MEDIA_S3_ENDPOINT_URL": endpoint,
        "MEDIA_S3_REGION": REGION,
        "MEDIA_S3_ACCESS_KEY_ID": ACCESS_KEY,
        "MEDIA_S3_SECRET_ACCESS_KEY": SECRET_KEY,
        "MEDIA_S3_ADDRESSING_STYLE": "path",
    }.items():
        monkeypatch.setenv(name, value)
    settings.STORAGES = {**settings.STORAGES, "default": env_s3_media_storage()}


@pytest.fixture
def bucket(s3_endpoint, monkeypatch, settings) -> Bucket:
    client = boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        region_name=REGION,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
    )
    name = f"ophai-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=name)
    use_bucket(monkeypatch, settings, endpoint=s3_endpoint, bucket=name)
    return Bucket(name=name, client=client)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def unreachable_bucket(monkeypatch, settings) -> None:
    """A bucket endpoint where nothing listens: connections are refused at once."""
    endpoint = f"http://127.0.0.1:{free_port()}"
    use_bucket(monkeypatch, settings, endpoint=endpoint, bucket="ophai-media")
