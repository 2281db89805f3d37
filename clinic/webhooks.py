"""Outbound webhooks: tell an integration (e.g. the mini-program's backend) that a report is
final. django-q2 tasks on the default cluster; every attempt is a `WebhookDelivery` row.

Request::

    POST REPORT_WEBHOOK_URL
    Content-Type: application/json
    X-OphAI-Event: report.final
    X-OphAI-Delivery: <event UUID, the same for every attempt>
    X-OphAI-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>

The body carries the report's ID, number, version, language and verification code and the
patient's WeChat openid when bound; never a name, phone or ID number. A 2xx answer ends the
event; a network error, 408, 429 or 5xx is retried with exponential backoff
(``REPORT_WEBHOOK_BACKOFF_SECONDS`` × 2^(attempt−1)) up to ``REPORT_WEBHOOK_MAX_ATTEMPTS``
attempts; any other 4xx is final (retrying cannot help).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging
import time
import uuid
from typing import Any

import requests
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django_q.models import Schedule
from django_q.tasks import schedule

from clinic.models import WebhookDelivery

logger = logging.getLogger(__name__)

EVENT_REPORT_FINAL = "report.final"
# Event IDs derive from the report, so a task that runs twice makes the same event.
EVENT_NAMESPACE = uuid.UUID("8d0f6f0e-4a49-4f55-9b8e-0e3c2d6f0a11")
RETRY_TASK = "clinic.webhooks.webhook_retry"
RETRYABLE_STATUSES = {408, 429}
SIGNATURE_HEADER = "X-OphAI-Signature"


def sign(body: bytes, secret: str, timestamp: int) -> str:
    """The signature header's value for `body` sent at `timestamp`."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={digest.hexdigest()}"


def verify(body: bytes, header: str, secret: str, *, tolerance: int = 300) -> bool:
    """What a receiver does: recompute the HMAC and refuse stale timestamps (replays)."""
    try:
        parts = dict(item.split("=", 1) for item in header.split(","))
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs(time.time() - timestamp) > tolerance:
        return False
    expected = sign(body, secret, timestamp).split("v1=", 1)[1]
    return hmac.compare_digest(expected, parts.get("v1", ""))


def report_final_payload(report_id: int) -> dict[str, Any] | None:
    from patients.models import PatientAccount
    from reports.models import Report, ReportStatus

    report = Report.objects.select_related("record").filter(pk=report_id).first()
    if report is None or report.status != ReportStatus.FINAL:
        return None
    openids = list(
        PatientAccount.objects.filter(patient_id=report.record.patient_id)
        .order_by("bound_at")
        .values_list("wechat_openid", flat=True)
    )
    return {
        "event": EVENT_REPORT_FINAL,
        "report": {
            "id": report.pk,
            "number": report.number,
            "version": report.version,
            "language": report.language,
            "verification_code": report.verification_code,
            "generated_at": report.generated_at.isoformat(),
            "record_id": report.record_id,
        },
        "patient": {"wechat_openid": openids[0] if openids else None},
    }


def report_final_webhook(report_id: int) -> str | None:
    """Task queued by reports when a final version commits (REPORT_FINAL_TASK)."""
    if not settings.REPORT_WEBHOOK_URL:
        return None
    payload = report_final_payload(report_id)
    if payload is None:
        logger.info("Webhook: report %s is missing or not final; nothing to send", report_id)
        return None
    event_id = uuid.uuid5(EVENT_NAMESPACE, f"{EVENT_REPORT_FINAL}:{report_id}")
    payload = {"event_id": str(event_id), **payload}
    deliver(
        event_id=event_id,
        event=EVENT_REPORT_FINAL,
        object_id=str(report_id),
        payload=payload,
        attempt=1,
    )
    return str(event_id)


def webhook_retry(event_id: str, attempt: int) -> None:
    """Scheduled retry: send the first attempt's payload again."""
    first = WebhookDelivery.objects.filter(event_id=event_id).order_by("attempt").first()
    if first is None:
        return
    deliver(
        event_id=uuid.UUID(event_id),
        event=first.event,
        object_id=first.object_id,
        payload=first.payload,
        attempt=attempt,
    )


def deliver(
    *, event_id: uuid.UUID, event: str, object_id: str, payload: dict, attempt: int
) -> WebhookDelivery | None:
    """Make attempt number `attempt` once; schedule the next one if it failed retryably."""
    deliveries = WebhookDelivery.objects.filter(event_id=event_id)
    if deliveries.filter(delivered=True).exists():
        return None
    url = settings.REPORT_WEBHOOK_URL
    try:
        # Claim the attempt first: a task delivered twice never sends the same attempt twice.
        with transaction.atomic():
            row = WebhookDelivery.objects.create(
                event_id=event_id,
                event=event,
                object_id=object_id,
                url=url,
                payload=payload,
                attempt=attempt,
            )
    except IntegrityError:
        return None

    secret = settings.REPORT_WEBHOOK_SECRET
    if not secret:
        row.error = "REPORT_WEBHOOK_SECRET is not set: unsigned webhooks are never sent."
        row.save(update_fields=["error"])
        logger.error("Webhook %s not sent: REPORT_WEBHOOK_SECRET is not set", event_id)
        return row

    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "OphAI-Clinic-Webhook/1",
        "X-OphAI-Event": event,
        "X-OphAI-Delivery": str(event_id),
        "X-OphAI-Attempt": str(attempt),
        SIGNATURE_HEADER: sign(body, secret, int(time.time())),
    }
    started = time.monotonic()
    retryable = True
    try:
        response = requests.post(
            url,
            data=body,
            headers=headers,
            timeout=settings.REPORT_WEBHOOK_TIMEOUT,
            allow_redirects=False,
        )
    except requests.RequestException as exc:
        row.error = f"{type(exc).__name__}: {exc}"[:2000]
    else:
        row.status_code = response.status_code
        row.delivered = 200 <= response.status_code < 300
        if not row.delivered:
            row.error = response.text[:500]
            retryable = response.status_code >= 500 or response.status_code in RETRYABLE_STATUSES
    row.duration_ms = int((time.monotonic() - started) * 1000)

    if not row.delivered and retryable and attempt < settings.REPORT_WEBHOOK_MAX_ATTEMPTS:
        delay = settings.REPORT_WEBHOOK_BACKOFF_SECONDS * 2 ** (attempt - 1)
        row.next_retry_at = timezone.now() + dt.timedelta(seconds=delay)
        schedule(
            RETRY_TASK,
            str(event_id),
            attempt + 1,
            name=f"webhook {event_id} #{attempt + 1}",
            schedule_type=Schedule.ONCE,
            next_run=row.next_retry_at,
        )
    row.save(update_fields=["status_code", "delivered", "error", "duration_ms", "next_retry_at"])
    log = logger.info if row.delivered else logger.warning
    log(
        "Webhook %s %s attempt %s: %s%s",
        event,
        event_id,
        attempt,
        row.status_code or row.error[:100],
        f", retry at {row.next_retry_at:%H:%M:%S}" if row.next_retry_at else "",
    )
    return row
