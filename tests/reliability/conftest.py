"""The reliability suite's summary table, printed after the test session (`make test-reliability`)."""

from __future__ import annotations

from tests.reliability.tally import TALLY


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if not TALLY.used():
        return
    write = terminalreporter.write_line
    terminalreporter.section("reliability: what was injected and what was counted")
    for line in TALLY.notes:
        write(line)
    rows = [
        ("faults injected / survived", f"{TALLY.faults_injected} / {TALLY.faults_survived}"),
        (
            "bad inputs tried / handled",
            f"{TALLY.bad_inputs_tried} / {TALLY.bad_inputs_handled}",
        ),
        (
            "uploads served back / with no metadata or trailer",
            f"{TALLY.served_back_checked} / {TALLY.served_back_clean}",
        ),
        (
            "spoofing texts tried / handled",
            f"{TALLY.spoof_texts_tried} / {TALLY.spoof_texts_handled}",
        ),
        (
            "nested JSON bodies tried / handled",
            f"{TALLY.nested_json_tried} / {TALLY.nested_json_handled}",
        ),
        (
            "crafted cursors tried / handled",
            f"{TALLY.crafted_cursors_tried} / {TALLY.crafted_cursors_handled}",
        ),
        (
            "peak RSS growth over the bombs",
            "not measured"
            if TALLY.peak_rss_growth_mb is None
            else f"{TALLY.peak_rss_growth_mb:.0f} MB",
        ),
        (
            "leaks found",
            f"{TALLY.leaks_found} (in {TALLY.denied_requests} denied requests)",
        ),
        (
            "deploy warnings",
            "not checked" if TALLY.deploy_warnings is None else str(TALLY.deploy_warnings),
        ),
        ("backup restored and verified", TALLY.backup or "not run"),
    ]
    rows += [
        (f"bad photos: {kind} (tried / expected verdict)", f"{tried} / {handled}")
        for kind, (tried, handled) in TALLY.bad_photos.items()
    ]
    width = max(len(name) for name, _ in rows)
    terminalreporter.section("reliability summary")
    for name, value in rows:
        write(f"{name:<{width}}  {value}")
