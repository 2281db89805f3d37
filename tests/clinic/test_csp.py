"""Content-Security-Policy: every HTML page carries it, and nothing the pages need breaks it.

Scripts come only from this site's files: no template holds an inline script, an on*
handler or a javascript: URL. tests/web/ loads the pages in Chromium and fails on any
violation the browser reports.
"""

from __future__ import annotations

import re

import pytest

from tests.conftest import REPO_ROOT

POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; font-src 'self' data:; object-src 'none'; base-uri 'self'; "
    "form-action 'self'; frame-ancestors 'none'"
)
INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.IGNORECASE)
HANDLER = re.compile(r"\son[a-z]+\s*=", re.IGNORECASE)


def test_the_policy_allows_no_inline_or_foreign_script(settings):
    assert settings.CONTENT_SECURITY_POLICY == POLICY


@pytest.mark.parametrize(
    ("who", "url"),
    [
        (None, "/login/"),
        ("doctor", "/"),
        ("technician", "/patients/new/"),
        ("admin_user", "/admin/"),
        ("admin_user", "/api/docs/"),
        ("doctor", "/no-such-page/"),
    ],
)
def test_every_html_page_carries_the_policy(client, db, request, who, url):
    if who is not None:
        client.force_login(request.getfixturevalue(who))

    response = client.get(url)

    assert response["Content-Type"].startswith("text/html")
    assert response["Content-Security-Policy"] == POLICY


def test_the_api_docs_start_swagger_ui_from_a_file(client, admin_user):
    client.force_login(admin_user)

    page = client.get("/api/docs/").content.decode()
    script = client.get("/api/docs/?script=")

    assert INLINE_SCRIPT.findall(page) == []
    assert script.status_code == 200
    assert script["Content-Type"].startswith("application/javascript")
    assert "SwaggerUIBundle" in script.content.decode()


def test_json_and_files_do_not_carry_it(client, db):
    response = client.get("/healthz")

    assert response["Content-Type"] == "application/json"
    assert "Content-Security-Policy" not in response


def templates() -> list:
    folders = [REPO_ROOT / "templates", *REPO_ROOT.glob("*/templates")]
    return sorted(path for folder in folders for path in folder.rglob("*.html"))


@pytest.mark.parametrize("path", templates(), ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_no_template_holds_inline_script(path):
    text = path.read_text(encoding="utf-8")

    assert INLINE_SCRIPT.findall(text) == []
    assert HANDLER.findall(text) == []
    assert "javascript:" not in text.lower()
