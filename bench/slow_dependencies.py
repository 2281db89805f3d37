"""Seconds until a dependency that never answers is given up on: the media bucket's health probe
and the LLM summary call.

    .venv/bin/python bench/slow_dependencies.py [--runs 5] [--llm-timeout 2]

Each run points the dependency at a local socket that accepts connections and stays silent.
The tests check the configuration behind these figures (timeouts, one attempt, no retries);
the wall-clock time lives here. Targets: the /healthz bucket probe ≤ 2 s (1 s to connect + 1 s
for the reply, one attempt); the LLM call LLM_TIMEOUT × (LLM_MAX_RETRIES + 1) plus the openai
client's back-off between attempts (under a second). Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROBE_TARGET_SECONDS = 2.0


def timed(runs: int, call: Callable[[], object]) -> list[float]:
    seconds = []
    for _ in range(runs):
        began = time.perf_counter()
        call()
        seconds.append(time.perf_counter() - began)
    return seconds


def report(name: str, seconds: list[float], connections: int, target: float) -> None:
    print(
        f"{name:<28} median {statistics.median(seconds):.2f} s, max {max(seconds):.2f} s "
        f"over {len(seconds)} runs, {connections / len(seconds):.1f} connections per run "
        f"(target ≤ {target:.1f} s)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--llm-timeout", type=float, default=2.0, help="LLM_TIMEOUT for the run")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="ophai-bench-slow-"))
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "clinic.settings",
            "DJANGO_ENV": "development",
            "OPHAI_VAR_DIR": str(workdir),
            "LOG_LEVEL": "ERROR",
        }
    )
    os.environ.pop("DATABASE_URL", None)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    import openai
    from django.conf import settings

    from core.storage import PrivateMediaStorage
    from reports.llm import _ask_with_one_retry
    from tests.silent_server import silent_server

    def ask_llm() -> None:
        # The call itself, without the template it falls back to
        try:
            _ask_with_one_retry({}, language="zh-hans")
        except openai.OpenAIError:
            pass

    with silent_server() as (url, accepted):
        storage = PrivateMediaStorage(
            bucket_name="ophai-bench",
            endpoint_url=url,
            region_name="us-east-1",
            access_key="bench",
            secret_key="bench-secret",  # noqa: S106 (a local stand-in)
            addressing_style="path",
        )
        from clinic.health import check_bucket

        seconds = timed(args.runs, lambda: check_bucket(storage))
        report("/healthz bucket probe", seconds, len(accepted), PROBE_TARGET_SECONDS)

    with silent_server() as (url, accepted):
        settings.LLM_BASE_URL = f"{url}/v1"
        settings.LLM_MODEL = "bench"
        settings.LLM_TIMEOUT = args.llm_timeout
        target = settings.LLM_TIMEOUT * (settings.LLM_MAX_RETRIES + 1) + 1
        seconds = timed(args.runs, ask_llm)
        report("LLM summary call", seconds, len(accepted), target)


if __name__ == "__main__":
    main()
