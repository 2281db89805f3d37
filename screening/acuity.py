"""Visual acuity as Chinese clinics write it: the 5-point record (五分记录, GB/T 11533) and
decimal acuity, with logMAR kept internally. Plain Python (no Django): conversions, parsing of
what a person types, and formatting in a chosen notation.

    5-point  L = 5 − logMAR        decimal  V = 10^(−logMAR)

The standard's rows (3.0 = 0.01 … 4.0 = 0.1 … 5.0 = 1.0 … 5.3 = 2.0) are the chart's rounded
values (5.1 is written 1.2, not 1.26), so they are looked up, both ways, before the formula.

Low vision below the chart is a category with a conventional logMAR for averaging, from the
Freiburg acuity work (Schulze-Bonsel et al., IOVS 2006;47:1236; Bach et al. 2007; Lange et al.
2009): counting fingers 1.9, hand motion 2.3; light perception 2.7 and no light perception 3.0
are imputations. A counting-fingers distance ("CF/30cm") is recorded but does not change the value.
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

FIVE_POINT = "five_point"
DECIMAL = "decimal"
NOTATIONS = (FIVE_POINT, DECIMAL)

CF, HM, LP, NLP = "CF", "HM", "LP", "NLP"
LOW_VISION_LOGMAR: dict[str, Decimal] = {
    CF: Decimal("1.9"),
    HM: Decimal("2.3"),
    LP: Decimal("2.7"),
    NLP: Decimal("3.0"),
}
LOW_VISION_CHINESE = {CF: "指数", HM: "手动", LP: "光感", NLP: "无光感"}
_LOW_VISION_WORDS = {
    "CF": CF,
    "FC": CF,
    "指数": CF,
    "数指": CF,
    "HM": HM,
    "手动": HM,
    "LP": LP,
    "PL": LP,
    "光感": LP,
    "NLP": NLP,
    "NPL": NLP,
    "无光感": NLP,
}

# GB/T 11533 (标准对数视力表): 5-point value → decimal value as the chart prints it.
FIVE_POINT_TABLE: tuple[tuple[Decimal, Decimal], ...] = tuple(
    (Decimal(five), Decimal(dec))
    for five, dec in (
        ("3.0", "0.01"),
        ("3.1", "0.012"),
        ("3.2", "0.015"),
        ("3.3", "0.02"),
        ("3.4", "0.025"),
        ("3.5", "0.03"),
        ("3.6", "0.04"),
        ("3.7", "0.05"),
        ("3.8", "0.06"),
        ("3.9", "0.08"),
        ("4.0", "0.1"),
        ("4.1", "0.12"),
        ("4.2", "0.15"),
        ("4.3", "0.2"),
        ("4.4", "0.25"),
        ("4.5", "0.3"),
        ("4.6", "0.4"),
        ("4.7", "0.5"),
        ("4.8", "0.6"),
        ("4.9", "0.8"),
        ("5.0", "1.0"),
        ("5.1", "1.2"),
        ("5.2", "1.5"),
        ("5.3", "2.0"),
    )
)
_DECIMAL_BY_FIVE = dict(FIVE_POINT_TABLE)
_FIVE_BY_DECIMAL = {dec: five for five, dec in FIVE_POINT_TABLE}

FIVE_POINT_MIN, FIVE_POINT_MAX = Decimal("3.0"), Decimal("5.3")
DECIMAL_MIN, DECIMAL_MAX = Decimal("0.01"), Decimal("2.0")
LOGMAR_MIN, LOGMAR_MAX = Decimal("-0.3"), Decimal("2.0")  # the chart's range
LOGMAR_PLACES = Decimal("0.001")
CF_DISTANCE_MAX_CM = 600

_NUMBER = re.compile(r"^\d+(\.\d+)?$|^\.\d+$")
_LOW_VISION = re.compile(
    r"^(?P<word>[A-Z]+|[\u4e00-\u9fff]+)\s*(?:[/@:：]?\s*(?P<distance>\d+)\s*(?P<unit>CM|M|厘米|米)?)?$"
)


class AcuityError(ValueError):
    """Input that is no acuity; `code` names the problem for the caller's own message."""

    def __init__(self, code: str, text: str = "") -> None:
        super().__init__(f"{code}: {text!r}")
        self.code = code
        self.text = text


@dataclass(frozen=True)
class Acuity:
    """One acuity: logMAR (on the chart, or the conventional value of a low-vision category)."""

    logmar: Decimal
    category: str = ""  # '', CF, HM, LP or NLP
    cf_distance_cm: int | None = None

    @property
    def decimal(self) -> Decimal:
        return decimal_from_logmar(self.logmar)

    @property
    def five_point(self) -> Decimal:
        return five_point_from_logmar(self.logmar)

    def format(self, notation: str, *, chinese: bool = True) -> str:
        return format_acuity(self, notation, chinese=chinese)


def _quantize(value: Decimal) -> Decimal:
    return value.quantize(LOGMAR_PLACES, rounding=ROUND_HALF_UP) + 0  # + 0: no "-0.000"


def logmar_from_five_point(five: Decimal) -> Decimal:
    """4.9 → 0.100 (exact: L = 5 − logMAR)."""
    return _quantize(Decimal(5) - Decimal(five))


def logmar_from_decimal(va: Decimal) -> Decimal:
    """0.8 → 0.100 (the standard's row), 0.9 → 0.046 (−log10 V, to 0.001)."""
    va = Decimal(va)
    if va <= 0:
        raise AcuityError("out_of_range", str(va))
    row = _FIVE_BY_DECIMAL.get(va)  # Decimal("0.80") and Decimal("0.8") are one key
    if row is not None:
        return logmar_from_five_point(row)
    return _quantize(Decimal(repr(-math.log10(float(va)))))


def five_point_from_logmar(logmar: Decimal) -> Decimal:
    """0.1 → 4.9; to one decimal place as the 5-point record is written."""
    return (Decimal(5) - Decimal(logmar)).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)


def decimal_from_logmar(logmar: Decimal) -> Decimal:
    """0.1 → 0.8 (the standard's row), 0.046 → 0.90; two places, three below 0.1."""
    logmar = Decimal(logmar)
    five = Decimal(5) - logmar
    if five == five.quantize(Decimal("0.1")) and five in _DECIMAL_BY_FIVE:
        return _DECIMAL_BY_FIVE[five]
    value = Decimal(repr(10 ** (-float(logmar))))
    places = Decimal("0.01") if value >= Decimal("0.095") else Decimal("0.001")
    return value.quantize(places, rounding=ROUND_HALF_UP)


def _plain(value: Decimal, *, min_places: int = 1) -> str:
    """Decimal("0.80") → "0.8", Decimal("1.00") → "1.0": no trailing zeros past `min_places`."""
    text = f"{value:f}"
    if "." in text:
        whole, frac = text.split(".")
        frac = frac.rstrip("0").ljust(min_places, "0")
        return f"{whole}.{frac}"
    return f"{text}.{'0' * min_places}"


def parse_acuity(text: object) -> Acuity | None:
    """What a person typed → Acuity; '' or None → None.

    5-point (3.0–5.3) and decimal (0.01–2.0) do not overlap, so the number says its notation.
    Also CF/HM/LP/NLP (FC, PL, NPL) or 指数/手动/光感/无光感, a CF distance as "CF/30cm", "指数 50cm"
    or "CF 1m". Raises AcuityError with code 'invalid', 'out_of_range' or 'bad_distance'.
    """
    if text is None:
        return None
    raw = str(text).strip()
    if raw == "":
        return None
    cleaned = unicodedata.normalize("NFKC", raw).upper()  # full-width ４．９, ／
    if _NUMBER.match(cleaned):
        try:
            value = Decimal(cleaned)
        except InvalidOperation as exc:  # pragma: no cover - the pattern admits numbers only
            raise AcuityError("invalid", raw) from exc
        if DECIMAL_MIN <= value <= DECIMAL_MAX:
            return Acuity(logmar=logmar_from_decimal(value))
        if FIVE_POINT_MIN <= value <= FIVE_POINT_MAX:
            return Acuity(logmar=logmar_from_five_point(value))
        raise AcuityError("out_of_range", raw)
    match = _LOW_VISION.match(cleaned)
    if match is None or match["word"] not in _LOW_VISION_WORDS:
        raise AcuityError("invalid", raw)
    category = _LOW_VISION_WORDS[match["word"]]
    distance = None
    if match["distance"] is not None:
        if category != CF:
            raise AcuityError("bad_distance", raw)
        distance = int(match["distance"]) * (100 if match["unit"] in ("M", "米") else 1)
        if not 1 <= distance <= CF_DISTANCE_MAX_CM:
            raise AcuityError("bad_distance", raw)
    return Acuity(logmar=LOW_VISION_LOGMAR[category], category=category, cf_distance_cm=distance)


def acuity_from_stored(
    logmar: Decimal | None, category: str = "", cf_distance_cm: int | None = None
) -> Acuity | None:
    """The stored columns (logMAR, category, CF distance) → Acuity; no logMAR → None."""
    if logmar is None:
        return None
    return Acuity(logmar=Decimal(logmar), category=category or "", cf_distance_cm=cf_distance_cm)


def format_acuity(acuity: Acuity | None, notation: str, *, chinese: bool = True) -> str:
    """4.9 / 0.8 / 指数/30cm (CF/30cm in English); '' for no acuity."""
    if acuity is None:
        return ""
    if acuity.category:
        word = LOW_VISION_CHINESE[acuity.category] if chinese else acuity.category
        if acuity.cf_distance_cm is not None:
            return f"{word}/{acuity.cf_distance_cm}cm"
        return word
    if notation == DECIMAL:
        return _plain(acuity.decimal)
    if notation == FIVE_POINT:
        return _plain(acuity.five_point)
    raise ValueError(f"unknown notation {notation!r}")
