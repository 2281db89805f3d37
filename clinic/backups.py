"""Backups of the database and media, and a restore drill that proves a backup restores.

A backup is a folder: `db.dump` (PostgreSQL custom format) or `db.sqlite3`, `media.tar.gz`, and
`manifest.json` with the row count of every table and the SHA-256 of every media file. On
PostgreSQL the counts and the dump read the same snapshot (`pg_export_snapshot`), so they
agree exactly even while the clinic keeps working. The media are read through the configured
storage, so a local MEDIA_ROOT and an S3-compatible bucket (MEDIA_S3_BUCKET) back up alike.
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.apps import apps
from django.conf import settings
from django.core.files.storage import Storage, default_storage
from django.db import connection, transaction
from django.utils import timezone

MANIFEST = "manifest.json"


def _tables() -> list[str]:
    return sorted(
        {
            model._meta.db_table
            for model in apps.get_models(include_auto_created=True)
            if model._meta.managed
        }
    )


def _count_rows(cursor, tables: list[str]) -> dict[str, int]:
    counts = {}
    for table in tables:
        cursor.execute(f'SELECT COUNT(*) FROM "{table}"')  # noqa: S608 - table names come from Django models
        counts[table] = cursor.fetchone()[0]
    return counts


def _media_files(root: Path) -> Iterator[Path]:
    if root.is_dir():
        yield from sorted(p for p in root.rglob("*") if p.is_file())


def _stored_names(storage: Storage, folder: str = "") -> Iterator[str]:
    """Every file in the media storage, through its own listing: a folder or an S3 bucket."""
    try:
        directories, files = storage.listdir(folder)
    except FileNotFoundError:  # no media folder yet
        return
    for name in sorted(files):
        yield posixpath.join(folder, name)
    for directory in sorted(directories):
        yield from _stored_names(storage, posixpath.join(folder, directory))


class _HashingReader:
    """Hands a file's bytes to tarfile and hashes exactly the bytes it archived."""

    def __init__(self, handle) -> None:
        self.handle = handle
        self.digest = hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        chunk = self.handle.read(size)
        self.digest.update(chunk)
        return chunk


def _archive_media(storage: Storage, target: Path) -> dict[str, str]:
    """Write every media file into a tar.gz; returns {name: sha256} of what was archived.

    The same code reads a local MEDIA_ROOT and an S3-compatible bucket (each object is
    downloaded once, hashed as it goes into the archive).
    """
    files = {}
    archived_at = int(time.time())
    with tarfile.open(target, "w:gz") as archive:
        for name in _stored_names(storage):
            try:
                handle = storage.open(name, "rb")
            except FileNotFoundError:  # deleted by the clinic since the listing
                continue
            with handle:
                info = tarfile.TarInfo(name)
                info.size = handle.size
                info.mtime = archived_at
                info.mode = 0o640
                reader = _HashingReader(handle)
                archive.addfile(info, reader)
            files[name] = reader.digest.hexdigest()
    return files


def _storage_description(storage: Storage) -> str:
    bucket = getattr(storage, "bucket_name", None)
    if bucket:
        location = getattr(storage, "location", "")
        return f"s3://{bucket}/{location}".rstrip("/")
    return "filesystem"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _pg_env() -> dict[str, str]:
    db = settings.DATABASES["default"]
    env = dict(os.environ)
    if db.get("PASSWORD"):
        env["PGPASSWORD"] = db["PASSWORD"]
    return env


def _pg_args(dbname: str | None = None) -> list[str]:
    db = settings.DATABASES["default"]
    return [
        "-h", db.get("HOST") or "127.0.0.1",
        "-p", str(db.get("PORT") or 5432),
        "-U", db.get("USER") or "postgres",
        "-d", dbname or db["NAME"],
    ]  # fmt: skip


def _run_pg_tool(program: str, *args: str, check: bool = True) -> None:
    """Run a PostgreSQL client program (pg_dump, pg_restore, createdb, dropdb) found on PATH."""
    executable = shutil.which(program)
    if executable is None:
        raise RuntimeError(f"{program} is not installed (Debian package postgresql-client)")
    subprocess.run([executable, *args], check=check, env=_pg_env(), capture_output=True)  # noqa: S603 - fixed programs, arguments from settings


def backup_create(*, destination: Path) -> Path:
    """Write a backup folder under `destination`; returns its path."""
    folder = destination / f"ophai-{timezone.now():%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:6]}"
    folder.mkdir(parents=True)
    tables = _tables()
    manifest: dict[str, Any] = {
        "created_at": timezone.now().isoformat(),
        "vendor": connection.vendor,
    }
    if connection.vendor == "postgresql":
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            cursor.execute("SELECT pg_export_snapshot()")
            snapshot = cursor.fetchone()[0]
            manifest["counts"] = _count_rows(cursor, tables)
            _run_pg_tool(
                "pg_dump",
                "--format=custom",
                f"--snapshot={snapshot}",
                "-f",
                str(folder / "db.dump"),
                *_pg_args(),
            )
    elif connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            manifest["counts"] = _count_rows(cursor, tables)
        connection.ensure_connection()
        target = sqlite3.connect(folder / "db.sqlite3")
        with target:
            connection.connection.backup(target)  # SQLite's online backup: a consistent copy
        target.close()
    else:
        raise RuntimeError(f"backups support PostgreSQL and SQLite, not {connection.vendor}")
    manifest["media_storage"] = _storage_description(default_storage)
    manifest["files"] = _archive_media(default_storage, folder / "media.tar.gz")
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True), encoding="utf-8")
    return folder


@dataclass
class DrillResult:
    tables_checked: int = 0
    rows_expected: int = 0
    files_checked: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def restore_drill(*, backup: Path) -> DrillResult:
    """Restore `backup` into a scratch database and folder, then compare with its manifest."""
    manifest = json.loads((backup / MANIFEST).read_text(encoding="utf-8"))
    result = DrillResult()
    counts = _restored_counts(backup, manifest)
    for table, expected in sorted(manifest["counts"].items()):
        result.tables_checked += 1
        result.rows_expected += expected
        actual = counts.get(table)
        if actual != expected:
            result.problems.append(
                f"table {table}: {actual} rows restored, {expected} in the manifest"
            )
    with tempfile.TemporaryDirectory(prefix="ophai-drill-media-") as scratch:
        with tarfile.open(backup / "media.tar.gz", "r:gz") as archive:
            archive.extractall(scratch, filter="data")
        restored = {p.relative_to(scratch).as_posix(): p for p in _media_files(Path(scratch))}
        for relative, expected in sorted(manifest["files"].items()):
            result.files_checked += 1
            path = restored.get(relative)
            if path is None:
                result.problems.append(f"file {relative}: missing from the archive")
            elif _sha256(path) != expected:
                result.problems.append(f"file {relative}: checksum differs")
    return result


def _restored_counts(backup: Path, manifest: dict[str, Any]) -> dict[str, int]:
    tables = sorted(manifest["counts"])
    if manifest["vendor"] == "sqlite":
        restored = sqlite3.connect(backup / "db.sqlite3")
        try:
            return _count_rows(restored.cursor(), tables)
        finally:
            restored.close()
    import psycopg2

    scratch = f"ophai_drill_{uuid.uuid4().hex[:10]}"
    server = _pg_args("postgres")[:-2]
    _run_pg_tool("createdb", *server, scratch)
    try:
        _run_pg_tool(
            "pg_restore",
            "--no-owner",
            "--exit-on-error",
            *_pg_args(scratch),
            str(backup / "db.dump"),
        )
        db = settings.DATABASES["default"]
        with psycopg2.connect(
            dbname=scratch,
            host=db.get("HOST") or "127.0.0.1",
            port=db.get("PORT") or 5432,
            user=db.get("USER") or "postgres",
            password=db.get("PASSWORD") or None,
        ) as restored:
            counts = _count_rows(restored.cursor(), tables)
        restored.close()
        return counts
    finally:
        _run_pg_tool("dropdb", "--if-exists", *server, scratch, check=False)
