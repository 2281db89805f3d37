"""The report summary from an OpenAI-compatible LLM, with the template as the fallback.

The LLM sees only the de-identified facts (reports.facts). Whatever goes wrong — no LLM
configured, unreachable, HTTP errors, timeouts, a malformed or empty reply, a refusal — the
report still gets a summary: the deterministic template, with the reason recorded.
"""

from __future__ import annotations

import json
import logging
import re
import unicodedata
from dataclasses import dataclass
from typing import Any

import openai
from django.conf import settings
from django.utils.translation import gettext_lazy as _

from reports.models import TEMPLATE_SOURCE
from reports.summary import template_summary

logger = logging.getLogger(__name__)

SUMMARY_MAX_CHARS = 2000
LANGUAGE_NAMES = {"zh-hans": "Simplified Chinese (简体中文)", "en": "English"}

SYSTEM_PROMPT = """\
You write the plain-language explanation at the end of an eye-screening report, for the \
patient to read. Write in {language_name}.

Rules:
- Use only the facts in the user's JSON message. Never invent findings, measurements, \
diagnoses, dates or advice that are not there.
- When "doctor_review" is present, it is the authority: your explanation must agree with the \
doctor's conclusion and recommendation and never contradict or soften them. Speak the \
doctor's words; mention an AI finding only when its "confirmed_by_doctor" is true, and then \
without naming an eye the doctor did not name. "eye_conclusions" is the doctor's conclusion \
per eye (with ICD-10 codes and names): those eyes may be named. Findings whose "outcome" is not \
"abnormal" are not findings.
- When "doctor_review" is null, say clearly that a doctor has not reviewed the results yet and \
that the AI findings are suggestions, not a diagnosis.
- An eye's "diabetic" block is the AI's diabetic retinopathy grade (give it in the words of \
"grade_text_zh" or "grade_text_en", e.g. "中度非增殖期糖尿病视网膜病变 (R2)"), whether the eye \
is "referable" or "vision_threatening", and macular oedema ("dme"). Before a doctor's review, \
state them as AI suggestions; once reviewed, only as the doctor's conclusion allows.
- Mention flagged measurements (eye pressure outside 10-21 mmHg, low vision) and photos that \
could not be assessed. Explain medical terms simply. Keep it under 250 words (or 400 Chinese \
characters), no headings, no lists, no markdown.
- The patient is not named in the facts; do not address them by name.

Reply with a JSON object and nothing else: {{"summary": "<the explanation>"}}"""


# Why the template wrote a summary: stored as written here (logs and audit read it in English),
# shown to staff through fallback_reason_text in their language.
FALLBACK_REASONS = (
    (re.compile(r"no LLM configured"), _("no language model is configured")),
    (re.compile(r"the model refused"), _("the language model declined to write it")),
    (
        re.compile(r"malformed reply: (?P<detail>.*)"),
        _("the language model's reply could not be used (%(detail)s)"),
    ),
    (
        re.compile(r"timed out after (?P<detail>[\d.]+) s"),
        _("the language model did not answer within %(detail)s s"),
    ),
    (
        re.compile(r"HTTP (?P<detail>\d+) from the LLM server"),
        _("the language model server answered with HTTP status %(detail)s"),
    ),
    (
        re.compile(r"LLM server unreachable: (?P<detail>.*)"),
        _("the language model server could not be reached (%(detail)s)"),
    ),
    (
        re.compile(r"LLM client error: (?P<detail>.*)"),
        _("the language model client failed (%(detail)s)"),
    ),
)


def fallback_reason_text(reason: str) -> str:
    """A stored fallback reason in the active language (an unknown one as stored)."""
    for pattern, text in FALLBACK_REASONS:
        match = pattern.fullmatch(reason)
        if match:
            return str(text) % match.groupdict() if match.groupdict() else str(text)
    return reason


def summary_source_text(source: str) -> str:
    """Who drafted a summary, from its stored source ("template" or "llm:<model>")."""
    if source == TEMPLATE_SOURCE:
        return str(_("the template"))
    model = source.removeprefix("llm:")
    return str(_("the language model %(model)s") % {"model": model})


class MalformedReply(ValueError):
    """The LLM answered, but not with a usable {"summary": "..."} object."""


class Refusal(MalformedReply):
    """The model declined to answer; asking again will not change that."""


@dataclass(frozen=True)
class SummaryResult:
    text: str
    source: str  # "llm:<model>" or "template"
    fallback_reason: str = ""

    @property
    def is_template(self) -> bool:
        return self.source == TEMPLATE_SOURCE


def llm_configured() -> bool:
    return bool(settings.LLM_BASE_URL and settings.LLM_MODEL)


def summary_for_facts(facts: dict[str, Any], *, language: str) -> SummaryResult:
    """The LLM's summary of `facts` in `language`, or the template summary and why."""
    if not llm_configured():
        return _template(facts, language, "no LLM configured", log=False)
    try:
        text = _ask_with_one_retry(facts, language=language)
    except Refusal:
        return _template(facts, language, "the model refused")
    except MalformedReply as exc:
        return _template(facts, language, f"malformed reply: {exc}")
    except openai.APITimeoutError:
        return _template(facts, language, f"timed out after {settings.LLM_TIMEOUT:g} s")
    except openai.APIStatusError as exc:
        return _template(facts, language, f"HTTP {exc.status_code} from the LLM server")
    except openai.APIConnectionError as exc:
        return _template(facts, language, f"LLM server unreachable: {_cause(exc)}")
    except openai.OpenAIError as exc:  # the client's own base class: anything else it raises
        return _template(facts, language, f"LLM client error: {type(exc).__name__}: {exc}")
    return SummaryResult(text=text, source=f"llm:{settings.LLM_MODEL}"[:120])


def _ask_with_one_retry(facts: dict[str, Any], *, language: str) -> str:
    client = openai.OpenAI(
        base_url=settings.LLM_BASE_URL,
        # Local OpenAI-compatible servers often need no key, but the client insists on one.
        api_key=settings.LLM_API_KEY or "not-needed",
        timeout=settings.LLM_TIMEOUT,
        max_retries=settings.LLM_MAX_RETRIES,
    )
    messages = [
        {
            "role": "system",
            "content": SYSTEM_PROMPT.format(language_name=LANGUAGE_NAMES.get(language, language)),
        },
        {"role": "user", "content": json.dumps(facts, ensure_ascii=False, sort_keys=True)},
    ]
    try:
        return _ask(client, messages)
    except Refusal:
        raise
    except MalformedReply as exc:
        logger.info("LLM reply unusable (%s); asking once more", exc)
        return _ask(client, messages)


def _ask(client: openai.OpenAI, messages: list[dict[str, str]]) -> str:
    # The raw body, read by us: a proxy's HTML page or a truncated body must be a malformed
    # reply, not an AttributeError from the client's model parsing.
    raw = client.chat.completions.with_raw_response.create(
        model=settings.LLM_MODEL,
        messages=messages,
        response_format={"type": "json_object"},
        temperature=0.2,
        max_tokens=1200,
    )
    try:
        body = json.loads(raw.text)
        message = body["choices"][0]["message"]
    # RecursionError: JSON nested too deep for the parser
    except (json.JSONDecodeError, RecursionError, KeyError, IndexError, TypeError) as exc:
        raise MalformedReply("not a chat completion") from exc
    if not isinstance(message, dict):
        raise MalformedReply("not a chat completion")
    if message.get("refusal"):
        raise Refusal("the model refused")
    return parse_summary(message.get("content"))


def parse_summary(content: object) -> str:
    """The summary text of a reply `{"summary": "..."}`; MalformedReply if unusable."""
    if not isinstance(content, str) or not content.strip():
        raise MalformedReply("empty reply")
    try:
        payload = json.loads(content)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise MalformedReply("not JSON") from exc
    if not isinstance(payload, dict) or "summary" not in payload:
        raise MalformedReply("no 'summary' key")
    summary = payload["summary"]
    if not isinstance(summary, str):
        raise MalformedReply("'summary' is not a string")
    summary = _clean_text(summary)
    if not summary:
        raise MalformedReply("empty summary")
    if len(summary) > SUMMARY_MAX_CHARS:
        raise MalformedReply(f"summary longer than {SUMMARY_MAX_CHARS} characters")
    return summary


def _clean_text(text: str) -> str:
    """Drop control and format characters (bidi overrides included); keep line breaks."""
    kept = (
        ch for ch in text if ch == "\n" or unicodedata.category(ch) not in ("Cc", "Cf", "Cs", "Co")
    )
    return "".join(kept).strip()


def _template(
    facts: dict[str, Any], language: str, reason: str, *, log: bool = True
) -> SummaryResult:
    if log:
        logger.warning("Report summary falls back to the template: %s", reason)
    return SummaryResult(
        text=template_summary(facts, language=language),
        source=TEMPLATE_SOURCE,
        fallback_reason=reason[:300],
    )


def _cause(exc: BaseException) -> str:
    cause = exc.__cause__ or exc
    return f"{type(cause).__name__}"
