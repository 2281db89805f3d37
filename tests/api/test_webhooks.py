"""The report.final webhook against a real local HTTP receiver: signature, payload without
personal data, retries with backoff after a 500, bounded attempts, idempotent tasks."""

from __future__ import annotations

import ast
import datetime as dt
import hashlib
import hmac
import json
import time

import pytest
from django.utils import timezone
from django_q.models import Schedule
from werkzeug import Response as WerkzeugResponse

from clinic import webhooks
from clinic.models import WebhookDelivery
from reports.services import report_generate

SECRET = "whsec-test-secret"


@pytest.fixture
def receiver(httpserver, settings):
    settings.REPORT_FINAL_TASK = "clinic.webhooks.report_final_webhook"
    settings.REPORT_WEBHOOK_URL = httpserver.url_for("/hooks/report")
    settings.REPORT_WEBHOOK_SECRET = SECRET
    settings.REPORT_WEBHOOK_TIMEOUT = 2.0
    settings.REPORT_WEBHOOK_BACKOFF_SECONDS = 30
    settings.REPORT_WEBHOOK_MAX_ATTEMPTS = 3
    return httpserver


class Recorder:
    """A receiver that checks the signature the way an integration would."""

    def __init__(self, statuses: list[int]):
        self.statuses = list(statuses)
        self.requests: list[dict] = []

    def __call__(self, request):
        body = request.get_data()
        header = request.headers["X-OphAI-Signature"]
        parts = dict(item.split("=", 1) for item in header.split(","))
        expected = hmac.new(
            SECRET.encode(), parts["t"].encode() + b"." + body, hashlib.sha256
        ).hexdigest()
        self.requests.append(
            {
                "body": json.loads(body),
                "signature_ok": hmac.compare_digest(expected, parts["v1"]),
                "fresh": abs(time.time() - int(parts["t"])) < 60,
                "event": request.headers["X-OphAI-Event"],
                "delivery": request.headers["X-OphAI-Delivery"],
                "attempt": request.headers["X-OphAI-Attempt"],
            }
        )
        return WerkzeugResponse("ok", status=self.statuses.pop(0))


def retries():
    """Our retry schedules (migrations add others, e.g. the AI reconciler)."""
    return Schedule.objects.filter(func="clinic.webhooks.webhook_retry")


def make_final(signed_record, doctor, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        return report_generate(record=signed_record, actor=doctor)


def test_a_final_report_is_announced_signed_and_without_personal_data(
    receiver, signed_record, doctor, own_account, django_capture_on_commit_callbacks
):
    recorder = Recorder([200])
    receiver.expect_oneshot_request("/hooks/report", method="POST").respond_with_handler(recorder)

    report = make_final(signed_record, doctor, django_capture_on_commit_callbacks)

    receiver.check_assertions()
    (sent,) = recorder.requests
    assert (sent["signature_ok"], sent["fresh"], sent["event"], sent["attempt"]) == (
        True,
        True,
        "report.final",
        "1",
    )
    assert sent["body"] == {
        "event": "report.final",
        "event_id": sent["delivery"],
        "report": {
            "id": report.pk,
            "number": report.number,
            "version": 1,
            "language": "zh-hans",
            "verification_code": report.verification_code,
            "generated_at": report.generated_at.isoformat(),
            "record_id": signed_record.pk,
        },
        "patient": {"wechat_openid": own_account.wechat_openid},
    }
    patient = signed_record.patient
    raw = json.dumps(sent["body"], ensure_ascii=False)
    for personal in (patient.name, patient.phone, patient.patient_id, report.access_code):
        assert personal not in raw
    delivery = WebhookDelivery.objects.get()
    assert (delivery.attempt, delivery.status_code, delivery.delivered, delivery.next_retry_at) == (
        1,
        200,
        True,
        None,
    )


def test_a_500_is_retried_with_backoff_and_then_delivered(
    receiver, signed_record, doctor, django_capture_on_commit_callbacks
):
    recorder = Recorder([500, 200])
    receiver.expect_request("/hooks/report", method="POST").respond_with_handler(recorder)

    before = timezone.now()
    make_final(signed_record, doctor, django_capture_on_commit_callbacks)

    first = WebhookDelivery.objects.get()
    assert (first.status_code, first.delivered) == (500, False)
    assert before + dt.timedelta(seconds=29) < first.next_retry_at
    assert first.next_retry_at < timezone.now() + dt.timedelta(seconds=31)
    retry = retries().get()
    assert retry.func == "clinic.webhooks.webhook_retry"
    assert retry.schedule_type == Schedule.ONCE
    assert retry.next_run == first.next_retry_at
    event_id, attempt = ast.literal_eval(retry.args)
    assert attempt == 2

    webhooks.webhook_retry(event_id, attempt)  # what the scheduler runs when it is due

    second = WebhookDelivery.objects.get(attempt=2)
    assert (second.status_code, second.delivered, second.next_retry_at) == (200, True, None)
    assert [r["attempt"] for r in recorder.requests] == ["1", "2"]
    assert all(r["signature_ok"] for r in recorder.requests)
    assert recorder.requests[0]["body"] == recorder.requests[1]["body"]
    assert {r["delivery"] for r in recorder.requests} == {event_id}


def test_backoff_doubles_and_attempts_are_bounded(receiver, final_report):
    receiver.expect_request("/hooks/report").respond_with_data("down", status=503)

    event_id = webhooks.report_final_webhook(final_report.pk)
    webhooks.webhook_retry(event_id, 2)
    webhooks.webhook_retry(event_id, 3)

    rows = list(WebhookDelivery.objects.order_by("attempt"))
    assert [(r.attempt, r.status_code, r.delivered) for r in rows] == [
        (1, 503, False),
        (2, 503, False),
        (3, 503, False),
    ]
    gaps = [(r.next_retry_at - r.attempted_at).total_seconds() for r in rows if r.next_retry_at]
    assert [round(gap) for gap in gaps] == [30, 60]
    assert rows[-1].next_retry_at is None  # the third of 3 attempts schedules nothing
    assert retries().count() == 2


def test_a_client_error_is_not_retried(receiver, final_report):
    receiver.expect_request("/hooks/report").respond_with_data("bad", status=400)
    webhooks.report_final_webhook(final_report.pk)
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status_code, delivery.next_retry_at, delivery.error) == (400, None, "bad")
    assert not retries().exists()


def test_an_unreachable_receiver_is_retried(settings, final_report):
    settings.REPORT_WEBHOOK_URL = "http://127.0.0.1:9/hooks"
    settings.REPORT_WEBHOOK_SECRET = SECRET
    webhooks.report_final_webhook(final_report.pk)
    delivery = WebhookDelivery.objects.get()
    assert delivery.status_code is None
    assert delivery.error.startswith("ConnectionError")
    assert delivery.next_retry_at is not None
    assert retries().count() == 1


def test_running_the_task_twice_sends_once(receiver, final_report):
    recorder = Recorder([200, 200])
    receiver.expect_request("/hooks/report").respond_with_handler(recorder)
    first = webhooks.report_final_webhook(final_report.pk)
    second = webhooks.report_final_webhook(final_report.pk)
    webhooks.webhook_retry(first, 2)  # a stray retry after delivery
    assert first == second
    assert len(recorder.requests) == 1
    assert WebhookDelivery.objects.count() == 1


def test_nothing_is_sent_without_a_secret(receiver, settings, final_report):
    settings.REPORT_WEBHOOK_SECRET = ""
    webhooks.report_final_webhook(final_report.pk)
    assert len(receiver.log) == 0
    assert "REPORT_WEBHOOK_SECRET" in WebhookDelivery.objects.get().error


def test_draft_reports_and_an_unset_url_send_nothing(
    receiver, settings, draft_report, django_capture_on_commit_callbacks
):
    assert webhooks.report_final_webhook(draft_report.pk) is None
    settings.REPORT_WEBHOOK_URL = ""
    assert webhooks.report_final_webhook(draft_report.pk) is None
    assert len(receiver.log) == 0
    assert not WebhookDelivery.objects.exists()


def test_the_verify_helper(settings):
    body = b'{"a":1}'
    now = int(time.time())
    header = webhooks.sign(body, SECRET, now)
    assert webhooks.verify(body, header, SECRET)
    assert not webhooks.verify(body + b" ", header, SECRET)
    assert not webhooks.verify(body, header, "other")
    assert not webhooks.verify(body, webhooks.sign(body, SECRET, now - 3600), SECRET)
    assert not webhooks.verify(body, "garbage", SECRET)
