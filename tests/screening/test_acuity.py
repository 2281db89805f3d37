"""screening.acuity: the 5-point record and decimal acuity, converted through logMAR."""

from decimal import Decimal

import pytest

from screening.acuity import (
    DECIMAL,
    FIVE_POINT,
    FIVE_POINT_TABLE,
    Acuity,
    AcuityError,
    decimal_from_logmar,
    five_point_from_logmar,
    format_acuity,
    logmar_from_decimal,
    logmar_from_five_point,
    parse_acuity,
)

# GB/T 11533 as printed on the standard logarithmic chart (标准对数视力表).
STANDARD_ROWS = [
    ("4.0", "0.1", "1.000"),
    ("4.1", "0.12", "0.900"),
    ("4.2", "0.15", "0.800"),
    ("4.3", "0.2", "0.700"),
    ("4.4", "0.25", "0.600"),
    ("4.5", "0.3", "0.500"),
    ("4.6", "0.4", "0.400"),
    ("4.7", "0.5", "0.300"),
    ("4.8", "0.6", "0.200"),
    ("4.9", "0.8", "0.100"),
    ("5.0", "1.0", "0.000"),
    ("5.1", "1.2", "-0.100"),
    ("5.2", "1.5", "-0.200"),
    ("5.3", "2.0", "-0.300"),
]


@pytest.mark.parametrize(("five", "dec", "logmar"), STANDARD_ROWS)
def test_the_standard_rows_map_exactly_both_ways(five, dec, logmar):
    assert logmar_from_five_point(Decimal(five)) == Decimal(logmar)
    assert logmar_from_decimal(Decimal(dec)) == Decimal(logmar)
    assert decimal_from_logmar(Decimal(logmar)) == Decimal(dec)
    assert five_point_from_logmar(Decimal(logmar)) == Decimal(five)
    assert format_acuity(parse_acuity(five), DECIMAL) == dec
    assert format_acuity(parse_acuity(dec), FIVE_POINT) == five


def test_the_table_covers_3_0_to_5_3_in_steps_of_0_1():
    assert [str(five) for five, _dec in FIVE_POINT_TABLE] == [
        f"{tenths / 10:.1f}" for tenths in range(30, 54)
    ]
    assert dict(FIVE_POINT_TABLE)[Decimal("3.4")] == Decimal("0.025")


def test_off_table_values_use_the_formula():
    # 5-point L = 5 − logMAR; decimal V = 10^(−logMAR)
    assert logmar_from_decimal(Decimal("0.9")) == Decimal("0.046")
    assert decimal_from_logmar(Decimal("0.046")) == Decimal("0.90")
    assert decimal_from_logmar(Decimal("1.155")) == Decimal("0.070")
    assert five_point_from_logmar(Decimal("0.046")) == Decimal("5.0")


def test_every_decimal_entry_comes_back_as_entered():
    changed = []
    for hundredths in range(1, 201):
        entered = Decimal(hundredths) / 100
        shown = Decimal(format_acuity(parse_acuity(str(entered)), DECIMAL))
        if shown != entered:
            changed.append((str(entered), str(shown)))
    # 1.26 is the exact 5.1, which the standard prints as 1.2.
    assert changed == [("1.26", "1.2")]


def test_every_five_point_entry_comes_back_as_entered():
    for tenths in range(30, 54):
        entered = f"{tenths / 10:.1f}"
        via_decimal = format_acuity(parse_acuity(entered), DECIMAL)
        assert format_acuity(parse_acuity(via_decimal), FIVE_POINT) == entered


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("4.9", Acuity(Decimal("0.100"))),
        (" 0.8 ", Acuity(Decimal("0.100"))),
        ("1", Acuity(Decimal("0.000"))),  # decimal 1.0: the notations do not overlap
        ("5", Acuity(Decimal("0.000"))),  # 5-point 5.0
        ("４．６", Acuity(Decimal("0.400"))),  # full-width, as a Chinese input method types it
        ("指数／30cm", Acuity(Decimal("1.9"), "CF", 30)),
        ("CF", Acuity(Decimal("1.9"), "CF")),
        ("fc", Acuity(Decimal("1.9"), "CF")),
        ("CF/30cm", Acuity(Decimal("1.9"), "CF", 30)),
        ("指数/30cm", Acuity(Decimal("1.9"), "CF", 30)),
        ("指数 50厘米", Acuity(Decimal("1.9"), "CF", 50)),
        ("CF 1m", Acuity(Decimal("1.9"), "CF", 100)),
        ("HM", Acuity(Decimal("2.3"), "HM")),
        ("手动", Acuity(Decimal("2.3"), "HM")),
        ("LP", Acuity(Decimal("2.7"), "LP")),
        ("光感", Acuity(Decimal("2.7"), "LP")),
        ("NLP", Acuity(Decimal("3.0"), "NLP")),
        ("无光感", Acuity(Decimal("3.0"), "NLP")),
        ("", None),
        (None, None),
    ],
)
def test_what_people_type_is_parsed(text, expected):
    assert parse_acuity(text) == expected


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("abc", "invalid"),
        ("-1", "invalid"),
        ("4.9.1", "invalid"),
        ("CF/", "invalid"),
        ("0", "out_of_range"),
        ("0.005", "out_of_range"),
        ("2.5", "out_of_range"),  # between the notations
        ("5.4", "out_of_range"),
        ("HM/30cm", "bad_distance"),
        ("CF/0cm", "bad_distance"),
        ("CF/7m", "bad_distance"),
    ],
)
def test_input_that_is_no_acuity_is_refused_with_a_code(text, code):
    with pytest.raises(AcuityError) as excinfo:
        parse_acuity(text)
    assert excinfo.value.code == code


@pytest.mark.parametrize(
    ("text", "five", "dec", "english"),
    [
        ("0.8", "4.9", "0.8", "0.8"),
        ("5.0", "5.0", "1.0", "1.0"),
        ("3.4", "3.4", "0.025", "0.025"),
        ("CF/30cm", "指数/30cm", "指数/30cm", "CF/30cm"),
        ("手动", "手动", "手动", "HM"),
        ("NLP", "无光感", "无光感", "NLP"),
    ],
)
def test_formatting_in_each_notation(text, five, dec, english):
    value = parse_acuity(text)
    assert format_acuity(value, FIVE_POINT) == five
    assert format_acuity(value, DECIMAL) == dec
    assert format_acuity(value, DECIMAL, chinese=False) == english
    assert format_acuity(None, DECIMAL) == ""


def test_the_module_has_no_django():
    import screening.acuity as module

    source = open(module.__file__, encoding="utf-8").read()
    assert "django" not in source.lower().replace("no django", "")
