"""Private media on S3-compatible object storage (AWS S3, MinIO, Ceph RGW, Aliyun OSS, Tencent COS).

Selected by `MEDIA_S3_BUCKET` (see `core.env.env_s3_media_storage`), so every web and worker
host reads and writes the same photos, heatmaps and PDFs. Files still go out only through the
permission-checked views of `core.media`, which stream them; nothing here hands out URLs.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import cached_property
from typing import Any

from boto3.exceptions import Boto3Error
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from storages.backends.s3 import S3Storage

from core.media import MediaStorageUnavailable

# A bucket that does not answer fails an upload within seconds, not after boto's default
# 60 s connect timeout times five legacy retries. Attempts are counted with botocore's
# `total_max_attempts`: its `max_attempts` counts retries, one more than it reads.
CONNECT_TIMEOUT_SECONDS = 5
READ_TIMEOUT_SECONDS = 30
MAX_ATTEMPTS = 3
STORAGE_ERRORS = (BotoCoreError, ClientError, Boto3Error)
# /healthz must answer before the load balancer's own timeout: one try, ≤ 1 s to connect and
# ≤ 1 s for the reply.
HEALTH_TIMEOUT_SECONDS = 1


class PrivateMediaStorage(S3Storage):
    """S3Storage for patient media: private objects, never overwritten, clear errors."""

    # No ACL header: objects inherit the bucket's private policy (and AWS buckets with ACLs
    # disabled refuse every canned ACL but bucket-owner-full-control).
    default_acl = None
    # url() is not used to serve files; should anything call it, it gets a signed, short-lived
    # URL rather than a public one.
    querystring_auth = True
    querystring_expire = 60
    # Like the filesystem storage: a name already taken gets a suffix, so an original photo is
    # never replaced (one HEAD request per save).
    file_overwrite = False

    def __init__(self, **options: Any) -> None:
        options.setdefault(
            "client_config",
            Config(
                s3={"addressing_style": options.get("addressing_style")},
                signature_version=options.get("signature_version"),
                connect_timeout=CONNECT_TIMEOUT_SECONDS,
                read_timeout=READ_TIMEOUT_SECONDS,
                retries={"total_max_attempts": MAX_ATTEMPTS, "mode": "standard"},
            ),
        )
        super().__init__(**options)

    def check_bucket(self) -> None:
        """HEAD the bucket once (needs the list permission the keys have); raises STORAGE_ERRORS."""
        self._health_client.head_bucket(Bucket=self.bucket_name)

    @cached_property
    def _health_client(self) -> Any:
        # Not self.connection: its timeouts and retries suit uploads, not a health probe.
        return self._create_session().client(
            "s3",
            region_name=self.region_name,
            use_ssl=self.use_ssl,
            endpoint_url=self.endpoint_url,
            verify=self.verify,
            config=self.client_config.merge(
                Config(
                    connect_timeout=HEALTH_TIMEOUT_SECONDS,
                    read_timeout=HEALTH_TIMEOUT_SECONDS,
                    retries={"total_max_attempts": 1, "mode": "standard"},
                )
            ),
        )

    @contextmanager
    def _translated_errors(self, action: str, name: str) -> Iterator[None]:
        try:
            yield
        except STORAGE_ERRORS as exc:
            raise MediaStorageUnavailable(
                f"Media storage: could not {action} {name!r} in bucket {self.bucket_name!r}"
                f"{f' at {self.endpoint_url}' if self.endpoint_url else ''}: {exc}"
            ) from exc

    def _open(self, name: str, mode: str = "rb"):
        with self._translated_errors("read", name):
            stored = super()._open(name, mode)
            if "r" in mode:
                # Download now, so that a failure is raised here and translated, not at the
                # caller's first read(). Every caller reads the whole file anyway.
                stored.file  # noqa: B018
            return stored

    def _save(self, name: str, content) -> str:
        with self._translated_errors("store", name):
            return super()._save(name, content)

    def delete(self, name: str) -> None:
        with self._translated_errors("delete", name):
            super().delete(name)

    def exists(self, name: str) -> bool:
        with self._translated_errors("look up", name):
            return super().exists(name)

    def size(self, name: str) -> int:
        with self._translated_errors("read the size of", name):
            return super().size(name)

    def listdir(self, path: str) -> tuple[list[str], list[str]]:
        with self._translated_errors("list", path):
            return super().listdir(path)
