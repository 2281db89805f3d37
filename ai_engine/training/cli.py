"""Argument helpers shared by the train/evaluate/import management commands (no Django)."""

from __future__ import annotations

import argparse
import json
import shlex
from typing import Any


def json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("must be a JSON object, e.g. '{\"drop_rate\": 0.2}'")
    return value


def key_value(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected COLUMN=VALUE (got {text!r})")
    return key.strip(), value.strip()


def comma_list(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def float_triple(text: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected three numbers like 0.5,0.5,0.5 (got {text!r})"
        ) from None
    if len(values) != 3:
        raise argparse.ArgumentTypeError(f"expected three numbers like 0.5,0.5,0.5 (got {text!r})")
    return values


def reproducing_command(
    parser: argparse.ArgumentParser, options: dict[str, Any], prefix: str, skip: set[str]
) -> str:
    """The command line that gives these options: every option that differs from its default."""
    words = [prefix]
    for action in parser._actions:  # noqa: SLF001 - argparse has no public list of actions
        if not action.option_strings or action.dest in skip or action.dest not in options:
            continue
        value = options[action.dest]
        if value == action.default or action.dest == "help":
            continue
        flag = max(action.option_strings, key=len)
        if isinstance(action, argparse.BooleanOptionalAction):
            words.append(flag if value else flag.replace("--", "--no-", 1))
        elif action.nargs == 0:
            words.append(flag)
        elif isinstance(value, list) and action.type in (key_value,):
            words.extend(f"{flag} {shlex.quote(f'{k}={v}')}" for k, v in value)
        elif isinstance(value, list):
            words.append(f"{flag} {shlex.quote(','.join(str(v) for v in value))}")
        elif isinstance(value, dict):
            words.append(f"{flag} {shlex.quote(json.dumps(value, separators=(',', ':')))}")
        else:
            words.append(f"{flag} {shlex.quote(str(value))}")
    return " ".join(words)
