import json
import logging

from core.audit import audit_source
from core.logs import JsonFormatter, RequestContextFilter


def test_log_records_carry_the_request_id_and_format_as_json():
    record = logging.LogRecord(
        "ophai.test", logging.WARNING, __file__, 1, "photo %s refused", ("x.jpg",), None
    )
    with audit_source("web", request_id="req-42"):
        assert RequestContextFilter().filter(record) is True
    line = json.loads(JsonFormatter().format(record))
    assert line["request_id"] == "req-42"
    assert line["message"] == "photo x.jpg refused"
    assert (line["level"], line["logger"], line["source"]) == ("WARNING", "ophai.test", "web")


def test_responses_echo_a_given_request_id(client, db):
    response = client.get("/healthz", HTTP_X_REQUEST_ID="abc123")
    assert response["X-Request-ID"] == "abc123"
