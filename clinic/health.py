"""/healthz for load balancers and monitoring: database, broker, workers, models, media.

The HTTP status answers "can this web process serve requests?" (database, broker and, with S3
media, the bucket); the body also reports what degrades service without stopping it (no worker
heartbeat, no active model package, little disk space under a local MEDIA_ROOT). It shows no
patient data and needs no login.
"""

from __future__ import annotations

import datetime as dt
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.files.storage import FileSystemStorage, storages
from django.db import DatabaseError, connection
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache

from clinic.models import WorkerHeartbeat

if TYPE_CHECKING:
    from core.storage import PrivateMediaStorage

HEARTBEAT_STALE = dt.timedelta(minutes=3)


def check_database() -> dict[str, Any]:
    began = time.perf_counter()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError as exc:
        return {"ok": False, "error": exc.__class__.__name__}
    return {
        "ok": True,
        "ms": round((time.perf_counter() - began) * 1000, 1),
        "vendor": connection.vendor,
    }


def check_broker() -> dict[str, Any]:
    if not settings.REDIS_URL:
        from django_q.models import OrmQ

        try:
            depth = OrmQ.objects.count()
        except DatabaseError as exc:
            return {"ok": False, "kind": "orm", "error": exc.__class__.__name__}
        return {"ok": True, "kind": "orm", "queued": depth}
    import redis

    try:
        client = redis.Redis.from_url(
            settings.REDIS_URL, socket_connect_timeout=1, socket_timeout=1
        )
        client.ping()
    except redis.exceptions.RedisError as exc:
        return {"ok": False, "kind": "redis", "error": exc.__class__.__name__}
    return {"ok": True, "kind": "redis"}


def check_workers(now: dt.datetime) -> dict[str, Any]:
    beats = {beat.cluster: beat for beat in WorkerHeartbeat.objects.all()}
    clusters = {}
    for name in ("default", settings.AI_CLUSTER_NAME):
        beat = beats.get(name)
        age = (now - beat.seen_at).total_seconds() if beat else None
        clusters[name] = {
            "ok": beat is not None and now - beat.seen_at < HEARTBEAT_STALE,
            "seconds_since_heartbeat": None if age is None else round(age),
            "host": beat.host if beat else "",
        }
    return {"ok": all(c["ok"] for c in clusters.values()), "clusters": clusters}


def check_models() -> dict[str, Any]:
    from ai_engine.models import Analysis, AnalysisStatus, ModelPackage

    active = list(ModelPackage.objects.filter(state="active"))
    missing = [
        str(p)
        for p in active
        if not (Path(p.path) / p.card.get("weights", {}).get("file", "")).is_file()
    ]
    waiting = Analysis.objects.filter(
        status__in=(AnalysisStatus.QUEUED, AnalysisStatus.RUNNING)
    ).count()
    # A quality model alone diagnoses nothing: some active package must be a diagnosis model.
    return {
        "ok": any(not p.is_quality_model for p in active) and not missing,
        "active": [
            f"{p.name} {p.version}" + (" (quality)" if p.is_quality_model else "") for p in active
        ],
        "missing_weights": missing,
        "analyses_waiting": waiting,
    }


def check_media() -> dict[str, Any]:
    """Free disk under a local MEDIA_ROOT, or whether the S3-compatible bucket answers."""
    storage = storages["default"]
    if isinstance(storage, FileSystemStorage):
        return check_disk(Path(storage.location))
    return check_bucket(storage)


def check_disk(root: Path) -> dict[str, Any]:
    root.mkdir(parents=True, exist_ok=True)
    usage = shutil.disk_usage(root)
    free_gb = usage.free / 1024**3
    return {
        "ok": free_gb >= settings.HEALTH_MIN_FREE_DISK_GB,
        "storage": "local",
        "free_gb": round(free_gb, 1),
    }


def check_bucket(storage: PrivateMediaStorage) -> dict[str, Any]:
    """One HEAD request; an error names its class and S3 code only (no endpoint, no keys)."""
    from botocore.exceptions import ClientError  # boto3 loads only where media are on S3

    from core.storage import STORAGE_ERRORS

    began = time.perf_counter()
    try:
        storage.check_bucket()
    except STORAGE_ERRORS as exc:
        failure = {"ok": False, "storage": "s3", "error": exc.__class__.__name__}
        if isinstance(exc, ClientError):  # the server answered, e.g. 403 (keys), 404 (bucket)
            failure["code"] = exc.response.get("Error", {}).get("Code", "")
        return failure
    return {"ok": True, "storage": "s3", "ms": round((time.perf_counter() - began) * 1000, 1)}


@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    now = timezone.now()
    checks = {"database": check_database(), "broker": check_broker()}
    if checks["database"]["ok"]:
        checks["workers"] = check_workers(now)
        checks["models"] = check_models()
    checks["media"] = media = check_media()
    # A host that cannot reach the media bucket can neither store nor serve photos, heatmaps
    # and reports (uploads answer 503), so it leaves the load balancer like one without its
    # database; if the bucket is down for every host, so is the clinic's core work. Little free
    # disk under a local MEDIA_ROOT still serves: it only degrades.
    serving = (
        checks["database"]["ok"]
        and checks["broker"]["ok"]
        and (media["ok"] or media["storage"] == "local")
    )
    degraded = not all(check["ok"] for check in checks.values())
    status = "fail" if not serving else "degraded" if degraded else "ok"
    return JsonResponse(
        {"status": status, "checks": checks, "time": now.isoformat()},
        status=200 if serving else 503,
    )
