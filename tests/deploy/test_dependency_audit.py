"""scripts/audit_dependencies.py against a stand-in of PyPI's project JSON on loopback."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def audit():
    spec = importlib.util.spec_from_file_location(
        "audit_dependencies", ROOT / "scripts" / "audit_dependencies.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    yield module
    del sys.modules[spec.name]


def _file(yanked: bool = False, reason: str | None = None) -> dict:
    return {"filename": "x.whl", "yanked": yanked, "yanked_reason": reason}


def _project(newest: str, releases: dict[str, list], vulnerabilities=()) -> dict:
    return {
        "info": {"version": newest},
        "releases": releases,
        "vulnerabilities": list(vulnerabilities),
    }


def _serve(httpserver, name: str, body: dict) -> str:
    httpserver.expect_request(f"/pypi/{name}/json").respond_with_json(body)
    return httpserver.url_for("/pypi")


def test_a_vulnerability_listed_for_the_installed_newest_release_fails(audit, httpserver):
    pypi = _serve(
        httpserver,
        "demo",
        _project(
            "2.0.1",
            {"2.0.1": [_file()]},
            [{"id": "PYSEC-2026-1", "fixed_in": [], "withdrawn": None}],
        ),
    )
    verdict = audit.judge("demo", "2.0.1", pinned=True, pypi=pypi)
    assert verdict.covered
    assert verdict.vulnerabilities == ["PYSEC-2026-1 (fixed in no release yet)"]
    assert verdict.failed


def test_a_yanked_release_fails_and_says_why(audit, httpserver):
    pypi = _serve(
        httpserver,
        "demo",
        _project("2.0.1", {"2.0.0": [_file(True, "broken wheel")], "2.0.1": [_file()]}),
    )
    verdict = audit.judge("demo", "2.0.0", pinned=False, pypi=pypi)
    assert verdict.yanked == "broken wheel"
    assert verdict.failed


def test_a_pinned_package_behind_its_series_fails_unless_held(audit, httpserver):
    releases = {"1.4.2": [_file()], "1.4.3": [_file()], "1.5.0": [_file()], "1.4.4": [_file(True)]}
    pypi = _serve(httpserver, "demo", _project("1.5.0", releases))
    behind = audit.judge("demo", "1.4.2", pinned=True, pypi=pypi)
    assert behind.newer_patch == "1.4.3"  # 1.4.4 is yanked; 1.5.0 is another series
    assert behind.failed and not behind.covered

    httpserver.expect_request("/pypi/torchvision/json").respond_with_json(
        _project("1.5.0", releases)
    )
    held = audit.judge("torchvision", "1.4.2", pinned=True, pypi=pypi)
    assert held.newer_patch == "1.4.3" and not held.failed


def test_an_older_release_is_reported_not_covered_rather_than_passed(audit, httpserver, capsys):
    pypi = _serve(httpserver, "demo", _project("6.1.3", {"5.2.19": [_file()], "6.1.3": [_file()]}))
    verdict = audit.judge("demo", "5.2.19", pinned=True, pypi=pypi)
    assert not verdict.covered and not verdict.failed
    assert audit.report([verdict]) == 0
    out = capsys.readouterr().out
    assert "not covered" in out and "demo 5.2.19 (newest 6.1.3)" in out


def test_an_unreachable_pypi_says_not_run(audit, tmp_path, capsys):
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("Django==5.2.19\n")
    code = audit.main(["--requirements", str(requirements), "--pypi", "http://127.0.0.1:1/pypi"])
    assert code == 2
    assert "NOT RUN" in capsys.readouterr().out
