from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[3]


def test_inference_core_imports_no_django() -> None:
    modules = [
        "card",
        "package",
        "decode",
        "preprocess",
        "quality",
        "cam",
        "areas",
        "predict",
        "summary",
        "results",
    ]
    code = (
        "import sys\n"
        + "".join(f"import ai_engine.inference.{m}\n" for m in modules)
        + "leaked = sorted(m for m in sys.modules if m == 'django' or m.startswith('django.'))\n"
        + "print(leaked)\n"
        + "sys.exit(1 if leaked else 0)\n"
    )
    done = subprocess.run(  # noqa: S603 - fixed code, current interpreter
        [sys.executable, "-c", code],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip() == "[]"


def test_card_module_needs_no_torch() -> None:
    code = "import sys, ai_engine.inference.card\nsys.exit(1 if 'torch' in sys.modules else 0)\n"
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )  # noqa: S603
    assert done.returncode == 0, done.stderr
