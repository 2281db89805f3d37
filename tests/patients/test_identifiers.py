import pytest
from django.core.exceptions import ValidationError

from patients.identifiers import (
    mask_national_id,
    mask_phone,
    national_id_check_char,
    normalize_national_id,
    normalize_phone,
)


def valid_id(first17: str = "11010519491231002") -> str:
    return first17 + national_id_check_char(first17)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("13812348000", "13812348000"),
        ("+86 138-1234-8000", "13812348000"),
        ("0086 13812348000", "13812348000"),
        ("010-12345678", "01012345678"),
    ],
)
def test_phone_numbers_are_normalised(raw, expected):
    assert normalize_phone(raw) == expected


@pytest.mark.parametrize("raw", ["12345", "23812348000", "1381234800a", "138123480001"])
def test_implausible_phone_numbers_are_refused_with_an_example(raw):
    with pytest.raises(ValidationError) as excinfo:
        normalize_phone(raw)
    assert excinfo.value.code == "invalid_phone"
    assert "13812348000" in excinfo.value.messages[0]


def test_a_known_valid_resident_id_passes_and_is_uppercased():
    # GB 11643-1999's worked example: 11010519491231002X
    assert normalize_national_id("11010519491231002x") == "11010519491231002X"


def test_a_wrong_check_character_is_refused():
    wrong = "110105194912310021"
    with pytest.raises(ValidationError) as excinfo:
        normalize_national_id(wrong)
    assert excinfo.value.code == "invalid_national_id_checksum"


def test_an_impossible_birth_date_in_the_id_is_refused():
    with pytest.raises(ValidationError) as excinfo:
        normalize_national_id(valid_id("11010519490231002"))
    assert excinfo.value.code == "invalid_national_id_date"


@pytest.mark.parametrize("raw", ["1101051949123100", "11010519491231002Y", ""])
def test_malformed_ids_are_refused(raw):
    with pytest.raises(ValidationError) as excinfo:
        normalize_national_id(raw)
    assert excinfo.value.code == "invalid_national_id"


def test_masking_hides_the_middle_of_phone_and_id_numbers():
    assert mask_phone("13812348000") == "138****8000"
    assert mask_phone("01012345678") == "010****5678"
    assert mask_phone("") == ""
    assert mask_national_id("11010519491231002X") == "110***********002X"
