"""Known vulnerabilities and yanked releases among the installed Python packages, from PyPI.

    .venv/bin/python scripts/audit_dependencies.py [--requirements requirements.txt]

pip-audit asks PyPI for each release's JSON (`/pypi/<name>/<version>/json`), which lists the
release's known vulnerabilities (from the PyPA advisory database / OSV). Where that is served,
`scripts/audit_dependencies.sh` runs pip-audit and this script is not needed. Our package
mirror serves only the project JSON (`/pypi/<name>/json`); its `vulnerabilities` list is the
one for the project's newest release, and its `releases` say whether a release was yanked.
So for every installed distribution this script reports:

- vulnerable: installed == newest release and PyPI lists an open vulnerability for it → fails;
- yanked: the installed release was withdrawn by its maintainers → fails;
- behind: a newer release exists in the same major.minor series (a patch we should take;
  for Django every patch release is a security release) → fails for the pinned packages;
- not covered: installed is older than the newest release and is the newest of its series;
  PyPI's project JSON cannot say what is known against it → listed by name, not a pass.

Exit status 1 on any failure, 2 when PyPI cannot be reached at all. Standard library only.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

PYPI = "https://pypi.org/pypi"
# Releases we hold back on purpose, with the reason; a newer patch of these is reported, not failed.
HELD = {
    "torch": "the brief pins torch 2.14.1 + torchvision 0.29.1: the pair on our machines' disk",
    "torchvision": "the brief pins torch 2.14.1 + torchvision 0.29.1: the pair on our machines' disk",
}
RELEASE = re.compile(r"^(\d+)\.(\d+)(?:\.(\d+))?$")  # final releases only: no a/b/rc/dev/post


@dataclass
class Verdict:
    name: str
    installed: str
    pinned: bool
    newest: str = ""
    vulnerabilities: list[str] = field(default_factory=list)
    yanked: str | None = None
    newer_patch: str | None = None
    covered: bool = False
    error: str | None = None

    @property
    def failed(self) -> bool:
        behind = self.pinned and self.newer_patch and self.name not in HELD
        return bool(self.vulnerabilities or self.yanked or behind)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requirements", type=Path, default=Path("requirements.txt"))
    parser.add_argument("--pypi", default=PYPI, help="PyPI's JSON API (a mirror of it)")
    args = parser.parse_args(argv)

    pinned = pinned_names(args.requirements)
    installed = {
        canonical(dist.metadata["Name"]): dist.version
        for dist in metadata.distributions()
        if dist.metadata["Name"]
    }
    installed.pop("pip", None)
    try:  # one probe first: an unreachable PyPI is said at once, not after every package
        fetch_json(f"{args.pypi.rstrip('/')}/pip/json")
    except (urllib.error.URLError, TimeoutError, json.JSONDecodeError) as exc:
        print(f"dependency audit: NOT RUN — PyPI's JSON API cannot be reached ({exc})")
        return 2
    with ThreadPoolExecutor(max_workers=8) as pool:
        verdicts = list(
            pool.map(
                lambda item: judge(item[0], item[1], pinned=item[0] in pinned, pypi=args.pypi),
                sorted(installed.items()),
            )
        )
    if all(verdict.error for verdict in verdicts):
        print(
            f"dependency audit: NOT RUN — PyPI's JSON API cannot be reached ({verdicts[0].error})"
        )
        return 2
    return report(verdicts)


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pinned_names(requirements: Path) -> set[str]:
    names = set()
    for line in requirements.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line:
            names.add(canonical(line.split("==", 1)[0].split("[", 1)[0]))
    return names


def judge(name: str, installed: str, *, pinned: bool, pypi: str = PYPI) -> Verdict:
    verdict = Verdict(name=name, installed=installed, pinned=pinned)
    try:
        project = fetch_json(f"{pypi.rstrip('/')}/{name}/json")
    except (urllib.error.URLError, TimeoutError, json.JSONDecodeError) as exc:
        verdict.error = str(exc)
        return verdict
    verdict.newest = project["info"]["version"]
    files = project.get("releases", {}).get(installed, [])
    if files and all(file.get("yanked") for file in files):
        verdict.yanked = files[0].get("yanked_reason") or "no reason given"
    if installed == verdict.newest:
        verdict.covered = True
        verdict.vulnerabilities = [
            f"{vuln['id']} (fixed in {', '.join(vuln.get('fixed_in') or ['no release yet'])})"
            for vuln in project.get("vulnerabilities", [])
            if not vuln.get("withdrawn")
        ]
    verdict.newer_patch = newer_in_series(installed, project.get("releases", {}))
    return verdict


def fetch_json(url: str, attempts: int = 3) -> dict:
    """GET and parse; a refused connection or a 5xx is tried again after 1 s, then 2 s."""
    for attempt in range(attempts):
        try:
            with urllib.request.urlopen(url, timeout=30) as response:  # noqa: S310
                return json.load(response)
        except urllib.error.HTTPError as exc:
            if exc.code < 500 or attempt == attempts - 1:
                raise
        except (urllib.error.URLError, TimeoutError):
            if attempt == attempts - 1:
                raise
        time.sleep(2**attempt)
    raise AssertionError("unreachable")


def newer_in_series(installed: str, releases: dict[str, list]) -> str | None:
    """The newest final, not-yanked release with the same major.minor, if newer than installed."""
    mine = RELEASE.match(installed)
    if mine is None:
        return None
    key = lambda version: tuple(int(part or 0) for part in RELEASE.match(version).groups())  # noqa: E731
    same_series = [
        version
        for version, files in releases.items()
        if RELEASE.match(version)
        and RELEASE.match(version).groups()[:2] == mine.groups()[:2]
        and files
        and not all(file.get("yanked") for file in files)
    ]
    newest = max(same_series, key=key, default=installed)
    return newest if key(newest) > key(installed) else None


def report(verdicts: list[Verdict]) -> int:
    failed = [verdict for verdict in verdicts if verdict.failed]
    unreachable = [verdict for verdict in verdicts if verdict.error]
    covered = [verdict for verdict in verdicts if verdict.covered]
    uncovered = [verdict for verdict in verdicts if not verdict.covered and not verdict.error]
    for verdict in failed:
        problems = [*verdict.vulnerabilities]
        if verdict.yanked:
            problems.append(f"yanked: {verdict.yanked}")
        if verdict.pinned and verdict.newer_patch and verdict.name not in HELD:
            problems.append(f"{verdict.newer_patch} is out in the same series")
        print(f"FAIL {verdict.name}=={verdict.installed}: {'; '.join(problems)}")
    for verdict in verdicts:
        if verdict.name in HELD and verdict.newer_patch and not verdict.failed:
            print(
                f"held {verdict.name}=={verdict.installed} ({verdict.newer_patch} is out): "
                f"{HELD[verdict.name]}"
            )
    behind = [v for v in verdicts if v.newer_patch and not v.pinned]
    if behind:
        print(
            "behind (not pinned by us, installed as a dependency): "
            + ", ".join(f"{v.name} {v.installed}→{v.newer_patch}" for v in behind)
        )
    if uncovered:
        print(
            "not covered (older than the newest release; PyPI's project JSON cannot say what is "
            "known against them): "
            + ", ".join(f"{v.name} {v.installed} (newest {v.newest})" for v in uncovered)
        )
    if unreachable:
        print("not reached: " + ", ".join(f"{v.name} ({v.error})" for v in unreachable))
    print(
        f"dependency audit (PyPI project JSON; pip-audit's per-release JSON is not served here): "
        f"{len(verdicts)} installed distributions, {len(covered)} checked against PyPI's "
        f"vulnerability list, {len(failed)} failing, {len(uncovered)} not covered, "
        f"{len(unreachable)} not reached"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
