"""Test settings: fast hashing, tasks run inline, media in a temporary folder."""

from __future__ import annotations

import tempfile
from pathlib import Path

from clinic.settings import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
MEDIA_ROOT = Path(tempfile.mkdtemp(prefix="ophai-test-media-"))
# django-q2 reads its configuration once at import, so `sync` must be set here, not by
# override_settings (TECH-NOTES). Tests that need a real broker start real qcluster processes.
Q_CLUSTER = {**Q_CLUSTER, "sync": True}  # noqa: F405
LANGUAGE_CODE = "en"
