"""People's names as typed into any form, admin page or API: one normaliser for them all.

A name is stored NFC-normalised and refused when it carries characters that change how the
text around it is shown rather than adding letters: control and format characters (bidi
overrides such as U+202E, zero-width spaces and joiners), private-use and surrogate code
points, line and paragraph separators, and more combining marks on one letter than any
script needs (the "Zalgo" stacks that spill over neighbouring table rows).
"""

from __future__ import annotations

import unicodedata

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

# Cc control, Cf format (bidi overrides, zero-width), Co private use, Cs surrogates, Zl/Zp
# line and paragraph separators.
REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Co", "Cs", "Zl", "Zp"})
# After NFC, Latin, Cyrillic and Vietnamese letters carry at most two marks; Thai and
# Devanagari stack up to three. More than that is decoration, not spelling.
MAX_COMBINING_MARKS = 3


def normalize_name(value: str) -> str:
    """`value` NFC-normalised with outer whitespace stripped; ValidationError if it spoofs.

    Codes: ``invalid_characters`` (the first refused character is named by its code point),
    ``too_many_marks``. An empty result is returned as ``""`` for the caller to judge.
    """
    name = unicodedata.normalize("NFC", value).strip()
    marks = 0
    for char in name:
        category = unicodedata.category(char)
        if category in REFUSED_CATEGORIES:
            raise ValidationError(
                _(
                    "The name contains an invisible or control character (%(code)s); "
                    "type the name again without it."
                )
                % {"code": f"U+{ord(char):04X}"},
                code="invalid_characters",
            )
        marks = marks + 1 if category in ("Mn", "Mc", "Me") else 0
        if marks > MAX_COMBINING_MARKS:
            raise ValidationError(
                _(
                    "The name stacks more than %(limit)d accents or marks on one letter; "
                    "type the name again."
                )
                % {"limit": MAX_COMBINING_MARKS},
                code="too_many_marks",
            )
    return name
