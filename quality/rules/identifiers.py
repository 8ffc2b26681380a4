"""The identifiers subjects are keyed on: ``citizen_id`` (GB 11643), ``credit_code`` (GB 32100),
``mobile`` (mainland mobile number).

GX decides which values fail with the vectorised checks of :mod:`quality._fast_checks`
(custom expectations for the two checksums, a regex for mobile numbers); the explanation
then asks :mod:`quality.checksums` what exactly is wrong with each failing value.
"""

from __future__ import annotations

from quality import _gx, checksums
from quality._fast_checks import citizen_id_mask, credit_code_mask
from quality.rules.base import BadValue, Column, GxExpectation, NoParams, RuleKind, fmt

MOBILE_PATTERN = r"^1[3-9]\d{9}$"
CITIZEN_ID_METRIC = "column_values.sharehub_citizen_id"
CREDIT_CODE_METRIC = "column_values.sharehub_credit_code"


def _citizen_id(c: Column[NoParams]) -> GxExpectation:
    cls = _gx.column_map_expectation(
        "ExpectColumnValuesToBeValidCitizenId",
        CITIZEN_ID_METRIC,
        citizen_id_mask,
        "Values are 18-digit GB 11643 citizen ID numbers with a real birth date and check character.",
    )
    return cls, {"column": c.field}


def _explain_citizen_id(bad: BadValue[NoParams]) -> str:
    return checksums.citizen_id_problem(str(bad.value)) or "is not a valid citizen ID"


def _credit_code(c: Column[NoParams]) -> GxExpectation:
    cls = _gx.column_map_expectation(
        "ExpectColumnValuesToBeValidCreditCode",
        CREDIT_CODE_METRIC,
        credit_code_mask,
        "Values are GB 32100 unified social credit codes with the right check character.",
    )
    return cls, {"column": c.field}


def _explain_credit_code(bad: BadValue[NoParams]) -> str:
    return checksums.credit_code_problem(str(bad.value)) or "is not a valid credit code"


def _mobile(c: Column[NoParams]) -> GxExpectation:
    return _gx.expectations().ExpectColumnValuesToMatchRegex, {"column": c.field, "regex": MOBILE_PATTERN}


def _explain_mobile(bad: BadValue[NoParams]) -> str:
    return f"{fmt(bad.value)} is not an 11-digit mainland mobile number"


CITIZEN_ID = RuleKind(
    name="citizen_id",
    params=NoParams,
    expectation=_citizen_id,
    explain=_explain_citizen_id,
    meaning="GB 11643 18-digit ID, real birth date",
    string_values=True,
)
CREDIT_CODE = RuleKind(
    name="credit_code",
    params=NoParams,
    expectation=_credit_code,
    explain=_explain_credit_code,
    meaning="GB 32100 unified social credit code",
    string_values=True,
)
MOBILE = RuleKind(
    name="mobile",
    params=NoParams,
    expectation=_mobile,
    explain=_explain_mobile,
    meaning="mainland mobile, 11 digits",
    string_values=True,
)
KINDS = (CITIZEN_ID, CREDIT_CODE, MOBILE)
