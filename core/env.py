"""Small helpers that read settings from the environment (healthchecks-style)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured

TRUE_VALUES = {"1", "true", "yes", "on"}
FALSE_VALUES = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in TRUE_VALUES:
        return True
    if value in FALSE_VALUES:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (1/0, true/false), not {raw!r}")


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be an integer, not {raw!r}") from exc


def env_list(name: str, default: list[str] | None = None) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return list(default or [])
    return [item.strip() for item in raw.split(",") if item.strip()]


def env_secret(name: str, default: str = "") -> str:
    """Read NAME, or the file named by NAME_FILE (Docker/systemd credentials)."""
    file_path = os.environ.get(f"{name}_FILE")
    if file_path:
        try:
            return Path(file_path).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ImproperlyConfigured(
                f"{name}_FILE points at {file_path!r}, which cannot be read: {exc}"
            ) from exc
    return os.environ.get(name, default)


def require(name: str, value: str) -> str:
    if not value:
        raise ImproperlyConfigured(
            f"{name} must be set in production (DJANGO_ENV=production). See README, 'Configuration'."
        )
    return value


def web_address(name: str, value: str) -> str:
    """`value` if it is an http(s) address with a host (or empty); ImproperlyConfigured otherwise."""
    if not value:
        return value
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc or " " in value:
        raise ImproperlyConfigured(
            f"{name} must be an http:// or https:// address such as "
            f"https://clinic.example.org, not {value!r}"
        )
    return value


S3_ADDRESSING_STYLES = {"auto", "path", "virtual"}


def env_s3_media_storage() -> dict[str, Any] | None:
    """The STORAGES["default"] entry for S3-compatible media, or None when MEDIA_S3_BUCKET is unset.

    Keys come from MEDIA_S3_ACCESS_KEY_ID / MEDIA_S3_SECRET_ACCESS_KEY (or their *_FILE); with
    neither, boto3 finds credentials itself (instance role, AWS_* variables).
    """
    bucket = env_str("MEDIA_S3_BUCKET").strip()
    if not bucket:
        return None
    access_key = env_secret("MEDIA_S3_ACCESS_KEY_ID").strip()
    secret_key = env_secret("MEDIA_S3_SECRET_ACCESS_KEY").strip()
    if bool(access_key) != bool(secret_key):
        raise ImproperlyConfigured(
            "MEDIA_S3_ACCESS_KEY_ID and MEDIA_S3_SECRET_ACCESS_KEY (or their *_FILE) go together: "
            "set both, or neither to let boto3 find credentials (instance role, AWS_* variables)."
        )
    addressing_style = env_str("MEDIA_S3_ADDRESSING_STYLE").strip().lower()
    if addressing_style and addressing_style not in S3_ADDRESSING_STYLES:
        raise ImproperlyConfigured(
            f"MEDIA_S3_ADDRESSING_STYLE must be one of {sorted(S3_ADDRESSING_STYLES)}, "
            f"not {addressing_style!r}"
        )
    return {
        "BACKEND": "core.storage.PrivateMediaStorage",
        "OPTIONS": {
            "bucket_name": bucket,
            "endpoint_url": env_str("MEDIA_S3_ENDPOINT_URL").strip() or None,
            "region_name": env_str("MEDIA_S3_REGION").strip() or None,
            "access_key": access_key or None,
            "secret_key": secret_key or None,
            "addressing_style": addressing_style or None,
            # A folder inside a shared bucket, e.g. "ophai"; keys never start with "/".
            "location": env_str("MEDIA_S3_PREFIX").strip().strip("/"),
        },
    }
