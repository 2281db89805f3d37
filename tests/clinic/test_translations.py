"""The Simplified Chinese catalogue is complete and its placeholders match the English source.

Parses the .po file with the standard library only; needs no database.
"""

import ast
import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest

PO_PATH = Path(__file__).resolve().parents[2] / "locale" / "zh_Hans" / "LC_MESSAGES" / "django.po"

# Named python-format placeholders such as %(size)s or %(count)d (conversion flags included).
PLACEHOLDER = re.compile(r"%\((\w+)\)[#0 +-]*\d*(?:\.\d+)?[diouxXeEfFgGcrsa]")
KEYWORD = re.compile(r"^(msgctxt|msgid_plural|msgid|msgstr(?:\[\d+\])?)\s+(\".*\")\s*$")


@dataclass
class Entry:
    line: int
    flags: set[str] = field(default_factory=set)
    fields: dict[str, str] = field(default_factory=dict)

    @property
    def msgid(self) -> str:
        return self.fields.get("msgid", "")

    @property
    def is_plural(self) -> bool:
        return "msgid_plural" in self.fields

    @property
    def msgstr(self) -> str:
        return self.fields.get("msgstr[0]" if self.is_plural else "msgstr", "")

    def __str__(self) -> str:
        return f"line {self.line}: {self.msgid!r}"


def _unquote(literal: str) -> str:
    # PO string literals use C escapes, which a Python string literal reads the same way.
    return ast.literal_eval(literal)


def parse_po(path: Path) -> tuple[Entry | None, list[Entry]]:
    """Return (header, entries); obsolete (#~) entries are skipped."""
    entries: list[Entry] = []
    entry: Entry | None = None
    key: str | None = None
    seen_msgstr = False

    def start(lineno: int) -> Entry:
        nonlocal seen_msgstr
        new = Entry(line=lineno)
        entries.append(new)
        seen_msgstr = False
        return new

    for lineno, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#~"):
            key = None
            if not line:
                entry = None
            continue
        if line.startswith("#"):
            if entry is None or seen_msgstr:
                entry = start(lineno)
            if line.startswith("#,"):
                entry.flags.update(f.strip() for f in line[2:].split(",") if f.strip())
            key = None
            continue
        match = KEYWORD.match(line)
        if match:
            name, literal = match.groups()
            if entry is None or (seen_msgstr and name in ("msgctxt", "msgid")):
                entry = start(lineno)
            if name.startswith("msgstr"):
                seen_msgstr = True
            key = name
            entry.fields[key] = _unquote(literal)
            continue
        if line.startswith('"') and entry is not None and key is not None:
            entry.fields[key] += _unquote(line)
            continue
        raise AssertionError(f"{path}:{lineno}: cannot parse {raw!r}")

    entries = [e for e in entries if "msgid" in e.fields]
    header = next((e for e in entries if e.msgid == "" and "msgctxt" not in e.fields), None)
    return header, [e for e in entries if e is not header]


@pytest.fixture(scope="module")
def catalogue() -> tuple[Entry | None, list[Entry]]:
    assert PO_PATH.exists(), f"{PO_PATH} is missing; run makemessages -l zh_Hans"
    return parse_po(PO_PATH)


def test_header(catalogue):
    header, entries = catalogue
    assert header is not None
    assert "fuzzy" not in header.flags
    assert "Language: zh_Hans\n" in header.msgstr
    assert "Plural-Forms: nplurals=1; plural=0;\n" in header.msgstr
    assert "charset=UTF-8" in header.msgstr
    assert entries, "the catalogue has no messages"


def test_every_entry_is_translated(catalogue):
    _, entries = catalogue
    untranslated = [str(e) for e in entries if not e.msgstr.strip()]
    assert not untranslated, "untranslated:\n" + "\n".join(untranslated)


def test_no_entry_is_fuzzy(catalogue):
    _, entries = catalogue
    fuzzy = [str(e) for e in entries if "fuzzy" in e.flags]
    assert not fuzzy, "fuzzy:\n" + "\n".join(fuzzy)


def test_placeholders_match(catalogue):
    _, entries = catalogue
    wrong = []
    for e in entries:
        if "python-format" not in e.flags:
            continue
        expected = set(PLACEHOLDER.findall(e.msgid))
        if e.is_plural:
            expected |= set(PLACEHOLDER.findall(e.fields["msgid_plural"]))
        translations = {k: v for k, v in e.fields.items() if k.startswith("msgstr")}
        for name, text in translations.items():
            found = set(PLACEHOLDER.findall(text))
            if found != expected:
                wrong.append(f"{e} {name}: expected {sorted(expected)}, found {sorted(found)}")
    assert not wrong, "placeholder mismatch:\n" + "\n".join(wrong)


def test_parser_reads_a_sample(tmp_path):
    sample = tmp_path / "django.po"
    sample.write_text(
        'msgid ""\nmsgstr ""\n"Language: zh_Hans\\n"\n'
        '#: a.py:1\n#, python-format\nmsgid "The file is %(size)s; "\n"the limit is %(limit)s."\n'
        'msgstr "文件大小为 %(size)s，超过上限 %(limit)s。"\n\n'
        '#, fuzzy\nmsgid "one"\nmsgid_plural "%(n)d many"\nmsgstr[0] ""\n\n'
        '#~ msgid "gone"\n#~ msgstr ""\n',
        encoding="utf-8",
    )
    header, entries = parse_po(sample)
    assert header is not None and "Language: zh_Hans" in header.msgstr
    assert [e.msgid for e in entries] == ["The file is %(size)s; the limit is %(limit)s.", "one"]
    assert entries[0].flags == {"python-format"}
    assert PLACEHOLDER.findall(entries[0].msgstr) == ["size", "limit"]
    assert entries[1].is_plural and entries[1].msgstr == "" and "fuzzy" in entries[1].flags
