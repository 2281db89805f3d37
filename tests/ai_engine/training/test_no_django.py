from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[3]


def test_training_core_imports_no_django() -> None:
    modules = [
        "labels",
        "data",
        "losses",
        "metrics",
        "nets",
        "plots",
        "trainer",
        "evaluate",
        "importer",
        "cli",
    ]
    code = (
        "import sys\n"
        + "".join(f"import ai_engine.training.{m}\n" for m in modules)
        + "leaked = sorted(m for m in sys.modules if m == 'django' or m.startswith('django.'))\n"
        + "print(leaked)\n"
        + "sys.exit(1 if leaked else 0)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip() == "[]"
