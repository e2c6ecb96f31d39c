from __future__ import annotations

from datetime import date

import pytest
from stdnum.cn import ric, uscc

from cardops.core.errors import ValidationFailed
from cardops.parties.demo import ORGANISATIONS, PERSONS
from cardops.parties.service import (
    clean_filename,
    resident_id_birth_date,
    resident_id_gender,
    sniff_content_type,
    validate_mobile,
    validate_resident_id,
    validate_uscc,
)

VALID_ID = "11010519491231002X"


def _with_check(first17: str) -> str:
    return first17 + ric.calc_check_digit(first17 + "0")


def test_valid_resident_id_is_normalised() -> None:
    assert ric.is_valid(VALID_ID)
    assert validate_resident_id(VALID_ID) == VALID_ID
    assert validate_resident_id(" 110105 19491231 002x ") == VALID_ID
    assert validate_resident_id("１１０１０５１９４９１２３１００２ｘ") == VALID_ID  # full-width
    assert resident_id_birth_date(VALID_ID) == date(1949, 12, 31)
    assert resident_id_gender(VALID_ID) == "female"  # 17th digit 2 is even
    assert resident_id_gender("110108197501010017") == "male"


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("110105194912310021", "check digit"),  # wrong check digit
        ("11010519491231002", "18 characters"),  # too short
        ("1101051949123100A2", "18 characters"),  # a letter in the middle
        (_with_check("11010519491331002"), "birth date"),  # month 13
        (_with_check("99999919491231002"), "region"),  # no such region
        ("", "Enter"),
    ],
)
def test_invalid_resident_ids_are_refused_with_a_reason(value: str, fragment: str) -> None:
    with pytest.raises(ValidationFailed) as info:
        validate_resident_id(value, field="applicant_id")
    assert info.value.field == "applicant_id"
    assert fragment in info.value.localized("en")


def test_resident_id_with_a_future_birth_date_is_refused() -> None:
    number = _with_check("11010520990101001")
    with pytest.raises(ValidationFailed) as info:
        validate_resident_id(number)
    assert "future" in info.value.localized("en")


def test_mobile_numbers() -> None:
    assert validate_mobile("138 0013 8000") == "13800138000"
    assert validate_mobile("+86 138-0013-8000") == "13800138000"
    assert validate_mobile("8613800138000") == "13800138000"
    for bad in ("12800138000", "1380013800", "138001380001", "0755-88888888", "abc"):
        with pytest.raises(ValidationFailed) as info:
            validate_mobile(bad, field="contact_mobile")
        assert info.value.field == "contact_mobile"
        assert "11 digits" in info.value.localized("en")


def test_uscc() -> None:
    assert validate_uscc("91110000600037341L") == "91110000600037341L"
    assert validate_uscc("9111 0000 6000 3734 1l") == "91110000600037341L"
    with pytest.raises(ValidationFailed) as info:
        validate_uscc("91110000600037341M")
    assert info.value.field == "uscc"
    assert "check character" in info.value.localized("en")
    with pytest.raises(ValidationFailed) as info:
        validate_uscc("A1110000600037341L")
    assert "capital letters" in info.value.localized("en")
    with pytest.raises(ValidationFailed):
        validate_uscc("12345")


def test_chinese_messages() -> None:
    with pytest.raises(ValidationFailed) as info:
        validate_resident_id("110105194912310021")
    assert "身份证" in info.value.localized("zh_CN")


def test_demo_numbers_are_valid() -> None:
    assert all(ric.is_valid(p[1]) for p in PERSONS)
    assert all(uscc.is_valid(o[2]) for o in ORGANISATIONS)


def test_filenames_and_content_types() -> None:
    assert clean_filename("C:\\scans\\身份证 正面.jpg") == "身份证 正面.jpg"
    assert clean_filename("../../etc/passwd") == "passwd"
    assert clean_filename("a\x00b\n.pdf") == "ab.pdf"
    assert clean_filename("") == "document"
    assert len(clean_filename("x" * 400 + ".pdf")) == 255
    assert clean_filename("x" * 400 + ".pdf").endswith(".pdf")
    assert sniff_content_type(b"%PDF-1.7 ...", "scan.bin", "text/html") == "application/pdf"
    assert sniff_content_type(b"\x89PNG\r\n\x1a\n....", "a.jpg") == "image/png"
    assert sniff_content_type(b"hello", "notes.txt", None) == "text/plain"
    assert sniff_content_type(b"hello", "x", "Text/Plain; charset=utf-8") == "text/plain"
    assert sniff_content_type(b"hello", "x", "bogus") == "application/octet-stream"
