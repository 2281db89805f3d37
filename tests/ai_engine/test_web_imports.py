"""Web processes never load torch, timm or pytorch_grad_cam; only the `ai` cluster runs models."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.imports import REPO_ROOT, loaded_after_import


def run_python(*args: str, timeout: int = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - the current interpreter on our own code
        [sys.executable, *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_serving_pages_apis_and_admin_loads_no_model_libraries() -> None:
    # A fresh interpreter: this one has torch loaded by the engine's other tests.
    done = run_python(str(Path(__file__).with_name("web_process.py")))

    assert done.returncode == 0, done.stderr[-4000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    chains = "\n\n".join(f"{name}:\n" + "\n".join(c) for name, c in result["first_import"].items())
    assert result["loaded"] == [], chains


def test_result_shapes_and_summary_need_no_numpy_or_torch() -> None:
    modules = ["ai_engine.inference.results", "ai_engine.inference.summary"]
    assert loaded_after_import(modules, ["torch", "numpy", "cv2", "PIL"], timeout=60) == []
