"""The summary from a real local HTTP server standing in for an OpenAI-compatible LLM."""

from __future__ import annotations

import json
import time

import openai
import pytest
from werkzeug import Response

from patients.models import Patient
from reports.facts import report_inputs
from reports.llm import summary_for_facts
from reports.models import Report
from reports.services import report_generate
from reports.summary import template_summary

CHAT_PATH = "/v1/chat/completions"


def completion(content: str | None, *, refusal: str | None = None) -> dict:
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": "qwen-test",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": refusal},
                "finish_reason": "stop",
            }
        ],
    }


def summary_reply(text: str) -> dict:
    return completion(json.dumps({"summary": text}, ensure_ascii=False))


@pytest.fixture
def llm(httpserver, settings):
    settings.LLM_BASE_URL = httpserver.url_for("/v1")
    settings.LLM_MODEL = "qwen-test"
    settings.LLM_API_KEY = "sk-test"
    settings.LLM_TIMEOUT = 0.5
    settings.LLM_MAX_RETRIES = 0
    return httpserver


@pytest.fixture
def facts(signed_record):
    return report_inputs(record=signed_record).facts


def test_a_good_reply_becomes_the_summary_with_the_model_as_source(llm, facts):
    llm.expect_oneshot_request(CHAT_PATH, method="POST").respond_with_json(
        summary_reply("您的右眼有糖尿病视网膜病变的迹象，医生建议转诊。")
    )
    result = summary_for_facts(facts, language="zh-hans")
    assert (result.text, result.source, result.fallback_reason) == (
        "您的右眼有糖尿病视网膜病变的迹象，医生建议转诊。",
        "llm:qwen-test",
        "",
    )
    request = json.loads(llm.log[0][0].get_data())
    assert request["model"] == "qwen-test"
    assert request["response_format"] == {"type": "json_object"}
    assert [m["role"] for m in request["messages"]] == ["system", "user"]
    assert "Simplified Chinese" in request["messages"][0]["content"]
    assert "never contradict" in request["messages"][0]["content"]
    assert json.loads(request["messages"][1]["content"]) == json.loads(
        json.dumps(facts, ensure_ascii=False)
    )
    assert llm.log[0][0].headers["Authorization"] == "Bearer sk-test"


def test_the_request_carries_no_name_phone_id_number_or_patient_id(llm, signed_record, doctor):
    patient = signed_record.patient
    Patient.objects.filter(pk=patient.pk).update(national_id="11010519491231002X")
    patient.refresh_from_db()
    # A doctor's free text that names the patient must not leak either.
    review = signed_record.reviews.get()
    review.conclusion_text = f"{patient.name}（{patient.patient_id}，电话 {patient.phone}）右眼渗出"
    review.save(update_fields=["conclusion_text"])
    llm.expect_oneshot_request(CHAT_PATH, method="POST").respond_with_json(
        summary_reply("医生建议转诊。")
    )

    report = report_generate(record=signed_record, actor=doctor)

    assert report.summary_source == "llm:qwen-test"
    body = llm.log[0][0].get_data().decode("utf-8")
    for value in (patient.name, patient.phone, patient.national_id, patient.patient_id):
        assert value not in body
    assert "右眼渗出" in body  # the clinical content itself is sent


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        (Response("upstream exploded", status=500), "HTTP 500 from the LLM server"),
        (Response("no such model", status=404), "HTTP 404 from the LLM server"),
        (
            Response(
                json.dumps(completion(None, refusal="I can't help with that.")),
                content_type="application/json",
            ),
            "the model refused",
        ),
    ],
    ids=["http-500", "http-404", "refusal"],
)
def test_errors_fall_back_to_the_template_with_the_reason(llm, facts, reply, reason):
    llm.expect_request(CHAT_PATH, method="POST").respond_with_response(reply)
    result = summary_for_facts(facts, language="zh-hans")
    assert (result.source, result.fallback_reason) == ("template", reason)
    assert result.text == template_summary(facts, language="zh-hans")
    assert len(llm.log) == 1  # a refusal or a 4xx/5xx is not asked again (LLM_MAX_RETRIES=0)


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("this is not json", "malformed reply: not JSON"),
        ('{"text": "wrong key"}', "malformed reply: no 'summary' key"),
        ('{"summary": 42}', "malformed reply: 'summary' is not a string"),
        ('{"summary": "   "}', "malformed reply: empty summary"),
        ("", "malformed reply: empty reply"),
        (
            json.dumps({"summary": "长" * 2001}),
            "malformed reply: summary longer than 2000 characters",
        ),
    ],
    ids=["not-json", "wrong-key", "not-a-string", "blank", "empty", "too-long"],
)
def test_a_malformed_reply_is_asked_once_more_then_falls_back(llm, facts, content, reason):
    llm.expect_request(CHAT_PATH, method="POST").respond_with_json(completion(content))
    result = summary_for_facts(facts, language="en")
    assert (result.source, result.fallback_reason) == ("template", reason)
    assert result.text == template_summary(facts, language="en")
    assert len(llm.log) == 2


@pytest.mark.parametrize(
    "reply",
    [
        Response("<html>proxy login</html>", status=200, content_type="text/html"),
        Response("{not json", status=200, content_type="application/json"),
        Response('{"choices": []}', status=200, content_type="application/json"),
        Response('{"hello": 1}', status=200, content_type="application/json"),
        Response("[" * 1000 + "]" * 1000, status=200, content_type="application/json"),
    ],
    ids=["html-page", "broken-json", "no-choices", "not-a-completion", "nested-1000-deep"],
)
def test_a_body_that_is_not_a_chat_completion_falls_back(llm, facts, reply):
    llm.expect_request(CHAT_PATH, method="POST").respond_with_response(reply)
    result = summary_for_facts(facts, language="en")
    assert (result.source, result.fallback_reason) == (
        "template",
        "malformed reply: not a chat completion",
    )
    assert len(llm.log) == 2


def test_a_malformed_reply_followed_by_a_good_one_uses_the_good_one(llm, facts):
    llm.expect_ordered_request(CHAT_PATH, method="POST").respond_with_json(completion("oops"))
    llm.expect_ordered_request(CHAT_PATH, method="POST").respond_with_json(
        summary_reply("A doctor reviewed your photos.")
    )
    result = summary_for_facts(facts, language="en")
    assert (result.text, result.source) == ("A doctor reviewed your photos.", "llm:qwen-test")


def test_a_timeout_falls_back_to_the_template(llm, facts, monkeypatch):
    def slow(request):
        time.sleep(1.0)
        return Response(json.dumps(summary_reply("too late")), content_type="application/json")

    clients = []
    real_client = openai.OpenAI
    monkeypatch.setattr(
        "reports.llm.openai.OpenAI",
        lambda **kwargs: clients.append(real_client(**kwargs)) or clients[-1],
    )
    llm.expect_request(CHAT_PATH, method="POST").respond_with_handler(slow)
    result = summary_for_facts(facts, language="zh-hans")
    assert (result.source, result.fallback_reason) == ("template", "timed out after 0.5 s")
    # How long it waits is configuration, not a stopwatch: LLM_TIMEOUT per call, no retries
    assert [(client.timeout, client.max_retries) for client in clients] == [(0.5, 0)]


def test_an_unreachable_server_falls_back_to_the_template(settings, facts):
    settings.LLM_BASE_URL = "http://127.0.0.1:9/v1"  # discard port: nothing listens
    settings.LLM_MODEL = "qwen-test"
    settings.LLM_MAX_RETRIES = 0
    result = summary_for_facts(facts, language="zh-hans")
    assert result.source == "template"
    assert result.fallback_reason.startswith("LLM server unreachable")


def test_without_an_llm_configured_the_template_is_the_default(facts):
    result = summary_for_facts(facts, language="zh-hans")
    assert (result.source, result.fallback_reason) == ("template", "no LLM configured")


def test_the_fallback_reason_is_stored_on_the_report(llm, signed_record, doctor, caplog):
    llm.expect_request(CHAT_PATH, method="POST").respond_with_response(Response("", status=503))
    report = report_generate(record=signed_record, actor=doctor)
    stored = Report.objects.get(pk=report.pk)
    assert (stored.summary_source, stored.summary_fallback_reason) == (
        "template",
        "HTTP 503 from the LLM server",
    )
    assert stored.summary_ai == stored.summary_final
    assert "falls back to the template: HTTP 503" in caplog.text
