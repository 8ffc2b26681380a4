"""quality.checksums: GB 11643 citizen IDs, GB 32100 credit codes, mobiles."""

from __future__ import annotations

import pytest

from quality.checksums import (
    CITIZEN_ID_CHECK,
    CREDIT_CODE_ALPHABET,
    citizen_id_check_char,
    citizen_id_problem,
    credit_code_check_char,
    credit_code_problem,
    is_citizen_id,
    is_credit_code,
    is_mobile,
)

VALID_IDS = ["11010519491231002X", "440524188001010014", "11010119900307803X"]
VALID_CODES = ["91350100M000100Y43"]


@pytest.mark.parametrize("value", VALID_IDS)
def test_known_valid_citizen_ids(value):
    assert is_citizen_id(value)
    assert citizen_id_problem(value) is None


@pytest.mark.parametrize("value", VALID_CODES)
def test_known_valid_credit_codes(value):
    assert credit_code_check_char(value[:17]) == value[17]
    assert is_credit_code(value)


def test_every_wrong_citizen_id_check_char_is_named():
    body = "11010519491231002"
    assert citizen_id_check_char(body) == "X"
    for wrong in CITIZEN_ID_CHECK.replace("X", ""):
        assert citizen_id_problem(body + wrong) == f"check character is {wrong}, expected X"


def test_every_wrong_credit_code_check_char_is_named():
    body = "91350100M000100Y4"
    assert credit_code_check_char(body) == "3"
    for wrong in CREDIT_CODE_ALPHABET.replace("3", ""):
        assert credit_code_problem(body + wrong) == f"check character is {wrong}, expected 3"


@pytest.mark.parametrize("birth", ["19490230", "19491301", "20230229", "19490000"])
def test_impossible_birth_date(birth):
    body = "110105" + birth + "002"
    value = body + citizen_id_check_char(body)
    assert citizen_id_problem(value) == f"birth date {birth} is not a real date"


@pytest.mark.parametrize("value", ["", "1101051949123100", "01010519491231002X"])
def test_malformed_citizen_ids(value):
    assert citizen_id_problem(value) == "must be 17 digits followed by a digit or X"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("11010519491231002x", "ends in a lower-case x (declare normalize: [upper] on the field"),
        ("110105 19491231002X", "has spaces inside (declare normalize: [strip_spaces] on the field"),
        ("１10105194912310021", "has the full-width character '１' at position 1 (declare normalize: [nfkc]"),
    ],
)
def test_citizen_ids_in_a_usual_wrong_shape_say_which_normalisation_accepts_them(value, message):
    assert citizen_id_problem(value).startswith(message)


@pytest.mark.parametrize("value", ["91350100M000100Y4", "91350100M000100I43", "9135010OM000100Y43"])
def test_malformed_credit_codes(value):
    assert credit_code_problem(value) == "must be 18 characters of the GB 32100 alphabet (no I, O, S, V, Z)"


def test_mobile():
    assert is_mobile("13800138000")
    assert not is_mobile("12800138000")
    assert not is_mobile("1380013800")
    assert not is_mobile("+8613800138000")


def test_vectorised_checks_agree_with_the_per_value_functions():
    import random

    from quality._fast_checks import citizen_id_mask, credit_code_mask

    rng = random.Random(7)
    ids, codes = [], []
    for _ in range(3000):
        body = f"{rng.randint(100000, 999999)}{rng.randint(1800, 2099)}{rng.randint(0, 13):02d}"
        body += f"{rng.randint(0, 32):02d}{rng.randint(0, 999):03d}"
        ids.append(body + rng.choice([citizen_id_check_char(body), *"0123456789X"]))
        cbody = "".join(rng.choice(CREDIT_CODE_ALPHABET) for _ in range(17))
        codes.append(cbody + rng.choice([credit_code_check_char(cbody), *CREDIT_CODE_ALPHABET]))
    ids += [
        "",
        "x",
        "11010519491231002x",
        "中文中文中文中文中文中文中文中文中文",
        None,
        "20000229" * 2 + "12",
    ]
    codes += ["", "91350100M000100Y4I", "中文", None]
    assert citizen_id_mask(ids).tolist() == [isinstance(v, str) and is_citizen_id(v) for v in ids]
    assert credit_code_mask(codes).tolist() == [isinstance(v, str) and is_credit_code(v) for v in codes]
    assert sum(citizen_id_mask(ids)) > 300
