"""A stand-in for later apps' tasks: records the calls the workflow queues."""

CALLS: list[tuple[str, tuple]] = []


def record_call(*args) -> None:
    CALLS.append(("called", args))
