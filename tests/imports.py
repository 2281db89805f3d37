"""What importing some modules drags in, seen from a fresh interpreter (the test process itself
has Django, torch and the rest loaded by other tests)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def loaded_after_import(
    modules: Iterable[str], watched: Iterable[str], *, timeout: int = 120
) -> list[str]:
    """Import `modules` in a new interpreter; the `watched` packages (or their submodules)
    that are then in sys.modules."""
    code = (
        "import json, sys\n"
        + "".join(f"import {module}\n" for module in modules)
        + f"watched = {sorted(watched)!r}\n"
        + "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules"
        + " if m.split('.')[0] in watched})))\n"
    )
    done = subprocess.run(  # noqa: S603 - the current interpreter on our own code
        [sys.executable, "-c", code],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])
