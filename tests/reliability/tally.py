"""Counters the reliability tests record; conftest.py prints them as a table at the end."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Tally:
    faults_injected: int = 0
    faults_survived: int = 0
    bad_inputs_tried: int = 0
    bad_inputs_handled: int = 0
    served_back_checked: int = 0  # accepted uploads fetched back as browsers and the API get them
    served_back_clean: int = 0  # ... with no EXIF, comment, XMP, script string or appended data
    spoof_texts_tried: int = 0  # names/text fields that spoof (bidi, zero-width, marks, numbers)
    spoof_texts_handled: int = 0  # ... refused with a message, or stored normalised
    denied_requests: int = 0
    leaks_found: int = 0
    deploy_warnings: int | None = None  # None: not checked in this run
    backup: str | None = None  # what the restore drill verified, or why it did not pass
    peak_rss_growth_mb: float | None = None
    nested_json_tried: int = (
        0  # API bodies nested 1,000 deep (tests/reliability/test_hostile_requests.py)
    )
    nested_json_handled: int = 0
    crafted_cursors_tried: int = 0  # hand-made pagination cursors on every list
    crafted_cursors_handled: int = 0
    # per kind of bad real photo (blur, occlusion, ...): [tried, given the expected verdict]
    bad_photos: dict[str, list[int]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def used(self) -> bool:
        return bool(
            self.faults_injected
            or self.bad_inputs_tried
            or self.spoof_texts_tried
            or self.nested_json_tried
            or self.crafted_cursors_tried
            or self.bad_photos
            or self.denied_requests
            or self.deploy_warnings is not None
            or self.backup is not None
        )


TALLY = Tally()


def count_bad_photo(kind: str, *, handled: bool) -> None:
    counts = TALLY.bad_photos.setdefault(kind, [0, 0])
    counts[0] += 1
    counts[1] += handled


def note(text: str) -> None:
    """Print a line (visible with -s) and keep it for the summary (visible always)."""
    print(text)
    TALLY.notes.append(text)
