"""Write the five demo departments' source data (SQL, CSV, xlsx, JSON lines, Parquet).

``generate(out_dir)`` is deterministic: the same seed and scale give byte-identical files,
and no date depends on the wall clock (everything is relative to ``REFERENCE_DATE``).
About 1 % of each dataset's rows are deliberately bad, each of a kind the directory's
field rules catch; ``manifest.json`` in ``out_dir`` lists every bad row, the rule it breaks
and the reason, so end-to-end tests can compare the quarantine with what was planted.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import random
import re
import sqlite3
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from quality.checksums import citizen_id_problem, credit_code_problem
from sharehub.demo import identifiers as ids
from sharehub.demo import names
from sharehub.demo.people import (
    REFERENCE_DATE,
    REFERENCE_TIME,
    Enterprise,
    Person,
    make_enterprises,
    make_people,
)
from sharehub.demo.service_items import SERVICE_ITEMS

BAD_SHARE = 0.01
BASE_ROWS = {"licences": 5000, "residents": 5000, "social_insurance": 4000, "debtors": 1000, "guides": 300}

SCJ_CODE = "SCJ-YYZZ-001"
GAJ_CODE = "GAJ-HJRK-001"
RSJ_CODE = "RSJ-SBJF-001"
FY_CODE = "FY-SXBZXR-001"
SGB_CODE = "SGB-BSZN-001"

LICENCE_STATUSES = ("存续", "在业", "吊销", "注销", "迁出")
INSURANCE_TYPES = ("企业职工基本养老保险", "失业保险", "工伤保险", "职工基本医疗保险")
PERIOD_RE = r"^20\d{2}(0[1-9]|1[0-2])$"
ID_OR_USCC_RE = r"^([1-9]\d{16}[0-9X]|[0-9A-HJ-NP-RTUWXY]{2}\d{6}[0-9A-HJ-NP-RTUWXY]{10})$"
BASE_MIN, BASE_MAX = 4000, 30000
FUTURE_YEAR = 2062  # a 2026 -> 2062 typo: far enough ahead to stay "future" for decades

# Chinese CSV headers of the 公安 export, in column order (field name -> header).
GAJ_HEADERS = {
    "id_no": "公民身份号码",
    "name": "姓名",
    "gender": "性别",
    "ethnicity": "民族",
    "birth_date": "出生日期",
    "address": "户籍地址",
    "mobile": "联系电话",
    "issue_authority": "签发机关",
    "id_valid_from": "有效期起始日期",
    "id_valid_until": "有效期截止日期",
}
XLSX_SHEET = "参保缴费"
_FIXED_ZIP_TIME = (2026, 11, 1, 0, 0, 0)
_FIXED_DOC_TIME = "2026-11-01T00:00:00Z"


@dataclass(frozen=True)
class Defect:
    """One deliberately bad row: which row (its primary key), which rule it breaks, and why."""

    dataset: str
    key: str  # primary key values joined by "|"
    field: str
    # not_null | primary_key | citizen_id | credit_code | mobile | enum | range | regex | not_future
    # | compare | cast
    rule: str
    value: str | None
    reason: str


class _Picker:
    """Hands out distinct row positions in a seeded random order."""

    def __init__(self, rng: random.Random, n: int) -> None:
        self._order = list(range(n))
        rng.shuffle(self._order)
        self._used: set[int] = set()

    def take(self, ok: Callable[[int], bool] | None = None) -> int | None:
        for i in self._order:
            if i not in self._used and (ok is None or ok(i)):
                self._used.add(i)
                return i
        return None


def _rows(name: str, scale: float) -> int:
    return max(1, round(BASE_ROWS[name] * scale))


def _slots(n: int, kinds: Sequence[str]) -> list[str]:
    """The defect kinds to plant: about ``BAD_SHARE`` of ``n`` rows, cycling through ``kinds``."""
    return [kinds[i % len(kinds)] for i in range(max(1, round(n * BAD_SHARE)))]


def _d(value: dt.date | None) -> str | None:
    return None if value is None else value.isoformat()


def _ts(value: dt.datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S")


def _future(d: dt.date) -> dt.date:
    return d.replace(year=FUTURE_YEAR, day=min(d.day, 28))


def _reason(field: str, rule: str, detail: str) -> str:
    return f"{field}: {rule}: {detail}"


# ----------------------------------------------------------------------------- 市场监管: licences


def _licences(
    rng: random.Random, ents: list[Enterprise]
) -> tuple[list[dict[str, Any]], list[Defect], set[int]]:
    rows: list[dict[str, Any]] = [
        {
            "uscc": e.uscc,
            "ent_name": e.name,
            "ent_type": e.ent_type,
            "legal_rep": e.legal_rep,
            "reg_capital": e.reg_capital,
            "est_date": _d(e.est_date),
            "valid_until": _d(e.valid_until),
            "reg_authority": e.reg_authority,
            "address": e.address,
            "business_scope": e.business_scope,
            "status": e.status,
            "updated_at": _ts(e.updated_at),
        }
        for e in ents
    ]
    kinds = (
        "credit_code_check",
        "credit_code_letter",
        "name_null",
        "est_future",
        "status_enum",
        "capital_negative",
        "duplicate",
    )
    pick = _Picker(rng, len(rows))
    defects: list[Defect] = []
    for kind in _slots(len(rows), kinds):
        i = pick.take()
        if i is None:
            break
        r = rows[i]
        if kind == "credit_code_check":
            r["uscc"] = ids.credit_code_wrong_check(r["uscc"], rng)
            defects.append(
                _d_(SCJ_CODE, r["uscc"], "uscc", "credit_code", r["uscc"], credit_code_problem(r["uscc"]))
            )
        elif kind == "credit_code_letter":
            r["uscc"] = ids.credit_code_bad_letter(r["uscc"])
            defects.append(
                _d_(SCJ_CODE, r["uscc"], "uscc", "credit_code", r["uscc"], credit_code_problem(r["uscc"]))
            )
        elif kind == "name_null":
            r["ent_name"] = None
            defects.append(_d_(SCJ_CODE, r["uscc"], "ent_name", "not_null", None, "value is missing"))
        elif kind == "est_future":
            r["est_date"] = _future(dt.date.fromisoformat(r["est_date"])).isoformat()
            defects.append(
                _d_(SCJ_CODE, r["uscc"], "est_date", "not_future", r["est_date"], "date is in the future")
            )
        elif kind == "status_enum":
            r["status"] = rng.choice(("停业", "歇业中", "正常"))
            defects.append(
                _d_(SCJ_CODE, r["uscc"], "status", "enum", r["status"], "value is not in the allowed list")
            )
        elif kind == "capital_negative":
            r["reg_capital"] = f"-{r['reg_capital']}"
            defects.append(
                _d_(SCJ_CODE, r["uscc"], "reg_capital", "range", r["reg_capital"], "value is below min 0")
            )
        elif kind == "duplicate":
            j = pick.take()
            if j is None:
                break
            # the source system exported the same enterprise twice, with a later change stamp
            dup = dict(r)
            dup["updated_at"] = _ts(
                dt.datetime.fromisoformat(r["updated_at"]) + dt.timedelta(minutes=rng.randint(1, 90))
            )
            rows[j] = dup
            for _ in (i, j):
                defects.append(
                    _d_(SCJ_CODE, r["uscc"], "uscc", "primary_key", r["uscc"], "duplicate primary key")
                )
    return rows, defects, pick._used


def _d_(dataset: str, key: str, field: str, rule: str, value: str | None, detail: str | None) -> Defect:
    return Defect(dataset, key, field, rule, value, _reason(field, rule, detail or ""))


# ----------------------------------------------------------------------------- 公安: residents


def _residents(
    rng: random.Random, people: list[Person]
) -> tuple[list[dict[str, Any]], list[Defect], set[int], int]:
    rows: list[dict[str, Any]] = [
        {
            "id_no": p.id_no,
            "name": p.name,
            "gender": p.gender,
            "ethnicity": p.ethnicity,
            "birth_date": _d(p.birth_date),
            "address": p.address,
            "mobile": p.mobile,
            "issue_authority": p.issue_authority,
            "id_valid_from": _d(p.id_valid_from),
            "id_valid_until": _d(p.id_valid_until),
        }
        for p in people
    ]
    split = max(1, round(len(rows) * 0.6))  # residents_20261101.csv gets the first 60 %
    kinds = ("id_check", "id_birth", "mobile", "name_null", "gender_enum", "birth_future", "duplicate")
    pick = _Picker(rng, len(rows))
    defects: list[Defect] = []
    seen_ids = {r["id_no"] for r in rows}
    for kind in _slots(len(rows), kinds):
        i = pick.take()
        if i is None:
            break
        r = rows[i]
        if kind == "id_check":
            r["id_no"] = ids.citizen_id_wrong_check(r["id_no"], rng)
            defects.append(
                _d_(GAJ_CODE, r["id_no"], "id_no", "citizen_id", r["id_no"], citizen_id_problem(r["id_no"]))
            )
        elif kind == "id_birth":
            new = r["id_no"]
            while new in seen_ids:
                new = ids.citizen_id_impossible_birth(
                    r["id_no"][:6], int(r["id_no"][6:10]), rng, int(r["id_no"][14:17])
                )
            seen_ids.add(new)
            r["id_no"] = new
            defects.append(_d_(GAJ_CODE, new, "id_no", "citizen_id", new, citizen_id_problem(new)))
        elif kind == "mobile":
            m = r["mobile"]
            r["mobile"] = rng.choice((m[:-1], m[:3] + " " + m[3:], "0571-" + m[3:11], "12" + m[2:]))
            defects.append(
                _d_(GAJ_CODE, r["id_no"], "mobile", "mobile", r["mobile"], "not an 11-digit mobile number")
            )
        elif kind == "name_null":
            r["name"] = None
            defects.append(_d_(GAJ_CODE, r["id_no"], "name", "not_null", None, "value is missing"))
        elif kind == "gender_enum":
            r["gender"] = rng.choice(("未知", "M", "男性"))
            defects.append(
                _d_(GAJ_CODE, r["id_no"], "gender", "enum", r["gender"], "value is not in the allowed list")
            )
        elif kind == "birth_future":
            r["birth_date"] = _future(dt.date.fromisoformat(r["birth_date"])).isoformat()
            defects.append(
                _d_(
                    GAJ_CODE, r["id_no"], "birth_date", "not_future", r["birth_date"], "date is in the future"
                )
            )
        elif kind == "duplicate":
            # the copy stays in the same file, so it is a duplicate within one batch
            def same_file(k: int, first: bool = i < split) -> bool:
                return (k < split) == first

            j = pick.take(same_file)
            if j is None:
                break
            rows[j] = dict(r)
            for _ in (i, j):
                defects.append(
                    _d_(GAJ_CODE, r["id_no"], "id_no", "primary_key", r["id_no"], "duplicate primary key")
                )
    # one value the connector cannot cast: 30 February (the ID number itself stays valid)
    k = pick.take()
    if k is not None:
        r = rows[k]
        r["birth_date"] = f"{r['birth_date'][:4]}-02-30"
        defects.append(_d_(GAJ_CODE, r["id_no"], "birth_date", "cast", r["birth_date"], "not a valid date"))
    return rows, defects, pick._used, split


# ----------------------------------------------------------------------------- 人社: social insurance


def _social_insurance(
    rng: random.Random, n: int, people: list[Person], employers: list[Enterprise]
) -> tuple[list[dict[str, Any]], list[Defect]]:
    rows: list[dict[str, Any]] = []
    workers = [p for p in people if 18 <= p.age() <= 62]
    rng.shuffle(workers)
    for p in workers:
        if len(rows) >= n:
            break
        employer = rng.choice(employers).uscc
        types = [
            t
            for t, share in zip(INSURANCE_TYPES, (1.0, 0.85, 0.8, 0.95), strict=True)
            if rng.random() < share
        ]
        months = rng.randint(3, 6)
        base = f"{rng.randint(4812, 24930)}.00"
        status = rng.choices(("正常缴费", "暂停", "终止"), weights=(96, 3, 1))[0]
        for back in range(months - 1, -1, -1):
            period = f"2026{10 - back:02d}"
            for t in types:
                rows.append(
                    {
                        "id_no": p.id_no,
                        "name": p.name,
                        "insurance_type": t,
                        "period": period,
                        "base": base,
                        "employer_uscc": employer,
                        "status": status,
                    }
                )
    rows = rows[:n]
    kinds = ("id_check", "uscc_check", "period", "insurance_enum", "base_negative", "name_null", "duplicate")
    pick = _Picker(rng, len(rows))
    touched: set[str] = set()  # one defect per person, so no planted value can collide with another key

    def fresh(k: int) -> bool:
        return rows[k]["id_no"] not in touched

    def key(r: dict[str, Any]) -> str:
        return f"{r['id_no']}|{r['insurance_type']}|{r['period']}"

    defects: list[Defect] = []
    for kind in _slots(len(rows), kinds):
        i = pick.take(fresh)
        if i is None:
            break
        r = rows[i]
        touched.add(r["id_no"])
        if kind == "id_check":
            r["id_no"] = ids.citizen_id_wrong_check(r["id_no"], rng)
            defects.append(
                _d_(RSJ_CODE, key(r), "id_no", "citizen_id", r["id_no"], citizen_id_problem(r["id_no"]))
            )
        elif kind == "uscc_check":
            r["employer_uscc"] = ids.credit_code_wrong_check(r["employer_uscc"], rng)
            problem = credit_code_problem(r["employer_uscc"])
            defects.append(_d_(RSJ_CODE, key(r), "employer_uscc", "credit_code", r["employer_uscc"], problem))
        elif kind == "period":
            r["period"] = f"{r['period'][:4]}{int(r['period'][4:]) + 12:02d}"  # 202601 -> 202613 ...
            defects.append(
                _d_(RSJ_CODE, key(r), "period", "regex", r["period"], f"does not match {PERIOD_RE}")
            )
        elif kind == "insurance_enum":
            r["insurance_type"] = "城乡居民基本养老保险"
            defects.append(
                _d_(
                    RSJ_CODE,
                    key(r),
                    "insurance_type",
                    "enum",
                    r["insurance_type"],
                    "value is not in the allowed list",
                )
            )
        elif kind == "base_negative":
            r["base"] = f"-{r['base']}"
            defects.append(
                _d_(RSJ_CODE, key(r), "base", "range", r["base"], f"value is below min {BASE_MIN}")
            )
        elif kind == "name_null":
            r["name"] = None
            defects.append(_d_(RSJ_CODE, key(r), "name", "not_null", None, "value is missing"))
        elif kind == "duplicate":
            j = pick.take(fresh)
            if j is None:
                break
            touched.add(rows[j]["id_no"])
            rows[j] = dict(r)  # the same contribution posted twice
            for _ in (i, j):
                defects.append(
                    _d_(
                        RSJ_CODE,
                        key(r),
                        "id_no,insurance_type,period",
                        "primary_key",
                        key(r),
                        "duplicate primary key",
                    )
                )
    return rows, defects


# ----------------------------------------------------------------------------- 法院: dishonest debtors

_OBLIGATIONS = (
    "被执行人于判决生效之日起十日内支付申请执行人货款人民币{amt}元及逾期付款利息",
    "被执行人偿还申请执行人借款本金人民币{amt}元及利息，并承担案件受理费{fee}元",
    "被执行人支付申请执行人劳动报酬人民币{amt}元",
    "被执行人返还申请执行人租金人民币{amt}元并支付违约金{fee}元",
    "被执行人支付申请执行人工程款人民币{amt}元",
    "被执行人赔偿申请执行人经济损失人民币{amt}元",
)


def _debtors(
    rng: random.Random, n: int, people: list[Person], ents: list[Enterprise]
) -> tuple[list[dict[str, Any]], list[Defect]]:
    adults = [p for p in people if p.age() >= 18]
    seen: set[str] = set()
    rows: list[dict[str, Any]] = []
    while len(rows) < n:
        year = rng.choice((2019, 2020, 2021, 2022, 2023, 2024, 2024, 2025, 2025, 2026))
        intermediate = rng.random() < 0.06
        d = names.district(rng)
        court_code, court = (
            ("浙01", "浙江省杭州市中级人民法院") if intermediate else (d.court_code, _court(d))
        )
        case_no = f"（{year}）{court_code}执{'恢' if rng.random() < 0.05 else ''}{rng.randint(1, 9999)}号"
        if case_no in seen:
            continue
        seen.add(case_no)
        filed = dt.date(year, 1, 1) + dt.timedelta(days=rng.randint(0, 364))
        published = min(
            filed + dt.timedelta(days=rng.randint(30, 240)), REFERENCE_DATE - dt.timedelta(days=1)
        )
        if rng.random() < 0.7 or not ents:
            p = rng.choice(adults)
            name, kind, ident = p.name, "自然人", p.id_no
        else:
            e = rng.choice(ents)
            name, kind, ident = e.name, "法人", e.uscc
        amt = rng.choice((rng.randint(3, 99) * 1000, rng.randint(1000, 2_000_000)))
        rows.append(
            {
                "case_no": case_no,
                "debtor_name": name,
                "debtor_kind": kind,
                "id_or_uscc": ident,
                "court": court,
                "publish_date": published.isoformat(),
                "obligation": rng.choice(_OBLIGATIONS).format(amt=f"{amt:,}", fee=rng.randint(50, 20000)),
                "performance": "全部未履行" if rng.random() < 0.85 else "部分未履行",
            }
        )
    kinds = ("duplicate", "id_format", "publish_future", "performance_enum", "kind_enum", "name_null")
    pick = _Picker(rng, len(rows))
    defects: list[Defect] = []
    for kind in _slots(len(rows), kinds):
        i = pick.take()
        if i is None:
            break
        r = rows[i]
        if kind == "duplicate":
            j = pick.take()
            if j is None:
                break
            rows[j] = {**rows[j], "case_no": r["case_no"]}  # two cases published under one number
            for _ in (i, j):
                defects.append(
                    _d_(
                        FY_CODE, r["case_no"], "case_no", "primary_key", r["case_no"], "duplicate primary key"
                    )
                )
        elif kind == "id_format":
            ident = r["id_or_uscc"]
            # an old 15-digit ID (or a credit code cut short): fails the format rule
            r["id_or_uscc"] = (
                ident[:6] + ident[8:14] + ident[14:17] if len(ident) == 18 and ident.isdigit() else ident[:15]
            )
            defects.append(
                _d_(
                    FY_CODE,
                    r["case_no"],
                    "id_or_uscc",
                    "regex",
                    r["id_or_uscc"],
                    f"does not match {ID_OR_USCC_RE}",
                )
            )
        elif kind == "publish_future":
            r["publish_date"] = _future(dt.date.fromisoformat(r["publish_date"])).isoformat()
            defects.append(
                _d_(
                    FY_CODE,
                    r["case_no"],
                    "publish_date",
                    "not_future",
                    r["publish_date"],
                    "date is in the future",
                )
            )
        elif kind == "performance_enum":
            r["performance"] = "履行中"
            defects.append(
                _d_(
                    FY_CODE,
                    r["case_no"],
                    "performance",
                    "enum",
                    r["performance"],
                    "value is not in the allowed list",
                )
            )
        elif kind == "kind_enum":
            r["debtor_kind"] = "个体工商户"
            defects.append(
                _d_(
                    FY_CODE,
                    r["case_no"],
                    "debtor_kind",
                    "enum",
                    r["debtor_kind"],
                    "value is not in the allowed list",
                )
            )
        elif kind == "name_null":
            r["debtor_name"] = None
            defects.append(_d_(FY_CODE, r["case_no"], "debtor_name", "not_null", None, "value is missing"))
    return rows, defects


def _court(d: names.District) -> str:
    return f"{d.name}人民法院" if d.name.endswith(("县", "市")) else f"杭州市{d.name}人民法院"


# ----------------------------------------------------------------------------- 审改办: service guides


def _guides(rng: random.Random, n: int) -> tuple[list[dict[str, Any]], list[Defect]]:
    combos = [(d, item) for d in names.DISTRICTS for item in SERVICE_ITEMS]
    rng.shuffle(combos)
    rows: list[dict[str, Any]] = []
    for d, item in combos[:n]:
        legal = item.legal_days
        promised = min(legal, max(0, item.promised_days + rng.choice((-1, 0, 0, 0, 1, 2))))
        updated = REFERENCE_TIME - dt.timedelta(seconds=rng.randint(3600, 400 * 86400))
        rows.append(
            {
                "item_code": item.basic_code + d.code,
                "item_name": item.name,
                "department": item.agency.format(d=d.name),
                "acceptance_conditions": item.conditions,
                "materials": item.materials,
                "process": item.process,
                "legal_days": legal,
                "promised_days": promised,
                "fee": item.fee,
                "online_level": item.online_level,
                "updated_at": updated,
            }
        )
    kinds = ("compare", "materials_null", "legal_days_range")
    pick = _Picker(rng, len(rows))
    defects: list[Defect] = []
    for kind in _slots(len(rows), kinds):
        i = pick.take()
        if i is None:
            break
        r = rows[i]
        if kind == "compare":
            r["promised_days"] = r["legal_days"] + rng.randint(1, 10)
            defects.append(
                _d_(
                    SGB_CODE,
                    r["item_code"],
                    "promised_days",
                    "compare",
                    str(r["promised_days"]),
                    f"promised_days {r['promised_days']} is not <= legal_days {r['legal_days']}",
                )
            )
        elif kind == "materials_null":
            r["materials"] = None
            defects.append(_d_(SGB_CODE, r["item_code"], "materials", "not_null", None, "value is missing"))
        elif kind == "legal_days_range":
            r["legal_days"] = 400
            defects.append(
                _d_(SGB_CODE, r["item_code"], "legal_days", "range", "400", "value is above max 365")
            )
    return rows, defects


# ----------------------------------------------------------------------------- writers


def _write_sqlite(path: Path, rows: list[dict[str, Any]]) -> None:
    path.unlink(missing_ok=True)
    con = sqlite3.connect(path)
    try:
        # no PRIMARY KEY constraint: the department's table does not enforce one (hence the duplicate)
        con.execute(
            """CREATE TABLE business_licence (
                uscc VARCHAR(18),
                ent_name VARCHAR(200),
                ent_type VARCHAR(60),
                legal_rep VARCHAR(60),
                reg_capital DECIMAL(18, 2),
                est_date DATE,
                valid_until DATE,
                reg_authority VARCHAR(100),
                address VARCHAR(300),
                business_scope TEXT,
                status VARCHAR(10),
                updated_at TIMESTAMP
            )"""
        )
        con.executemany(
            "INSERT INTO business_licence VALUES (:uscc, :ent_name, :ent_type, :legal_rep, :reg_capital,"
            " :est_date,"
            " :valid_until, :reg_authority, :address, :business_scope, :status, :updated_at)",
            rows,
        )
        con.execute("CREATE INDEX ix_business_licence_updated_at ON business_licence (updated_at)")
        con.execute("CREATE INDEX ix_business_licence_uscc ON business_licence (uscc)")
        con.commit()
    finally:
        con.close()


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(GAJ_HEADERS.values())
    for r in rows:
        w.writerow(["" if r[k] is None else r[k] for k in GAJ_HEADERS])
    path.write_bytes(buf.getvalue().encode("gb18030"))


def _write_xlsx(path: Path, rows: list[dict[str, Any]]) -> None:
    from openpyxl import Workbook

    wb = Workbook(write_only=True)
    fixed = dt.datetime(2026, 11, 1)
    wb.properties.creator = "人社局社会保险经办系统"
    wb.properties.created = fixed
    wb.properties.modified = fixed
    ws = wb.create_sheet(XLSX_SHEET)
    columns = (
        list(rows[0])
        if rows
        else ["id_no", "name", "insurance_type", "period", "base", "employer_uscc", "status"]
    )
    ws.append(columns)
    for r in rows:
        ws.append([float(r[c]) if c == "base" and r[c] is not None else r[c] for c in columns])
    raw = io.BytesIO()
    wb.save(raw)
    path.write_bytes(_normalise_zip(raw.getvalue()))


def _normalise_zip(data: bytes) -> bytes:
    """Rewrite an xlsx so its bytes do not depend on when it was written.

    openpyxl stamps every zip member with the current time and sets the document's modified
    time to now on save; both are pinned to the reference date here.
    """
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            body = src.read(info.filename)
            if info.filename == "docProps/core.xml":
                text = body.decode("utf-8")
                for tag in ("dcterms:created", "dcterms:modified"):
                    text = re.sub(rf"(<{tag}[^>]*>)[^<]*(</{tag}>)", rf"\g<1>{_FIXED_DOC_TIME}\g<2>", text)
                body = text.encode("utf-8")
            fixed = zipfile.ZipInfo(info.filename, date_time=_FIXED_ZIP_TIME)
            fixed.compress_type = zipfile.ZIP_DEFLATED
            fixed.external_attr = 0o600 << 16
            dst.writestr(fixed, body)
    return out.getvalue()


def _write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    path.write_bytes(text.encode("utf-8"))


def _write_parquet(path: Path, rows: list[dict[str, Any]]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema(
        [
            ("item_code", pa.string()),
            ("item_name", pa.string()),
            ("department", pa.string()),
            ("acceptance_conditions", pa.string()),
            ("materials", pa.string()),
            ("process", pa.string()),
            ("legal_days", pa.int32()),
            ("promised_days", pa.int32()),
            ("fee", pa.string()),
            ("online_level", pa.string()),
            ("updated_at", pa.timestamp("s")),
        ]
    )
    table = pa.Table.from_pylist(rows, schema=schema)
    pq.write_table(table, path, compression="zstd")


# ----------------------------------------------------------------------------- entry point


def generate(out_dir: Path, *, seed: int = 20261122, scale: float = 1.0) -> dict[str, str]:
    """Write the five demo departments' source data under ``out_dir``.

    Returns the connection refs the directory files use, mapped to their location: an
    SQLAlchemy URL for the SQL source, an absolute folder path for each file drop. Also
    writes ``out_dir/manifest.json``: row counts, files and every deliberately bad row.
    Same ``seed`` and ``scale`` give byte-identical files.
    """
    if scale <= 0:
        raise ValueError("scale must be positive")
    out = Path(out_dir).resolve()
    drops = {
        ref: out / folder
        for ref, folder in (("gaj_drop", "gaj"), ("rsj_drop", "rsj"), ("fy_drop", "fy"), ("sgb_drop", "sgb"))
    }
    for folder in drops.values():
        folder.mkdir(parents=True, exist_ok=True)

    def rng(part: str) -> random.Random:
        return random.Random(f"sharehub-demo:{seed}:{part}")  # noqa: S311 - reproducible demo data, not secrets

    people = make_people(rng("people"), _rows("residents", scale))
    ents = make_enterprises(rng("enterprises"), _rows("licences", scale), people)

    lic_rows, lic_defects, lic_bad = _licences(rng("licences"), ents)
    res_rows, res_defects, res_bad, split = _residents(rng("residents"), people)
    clean_people = [p for i, p in enumerate(people) if i not in res_bad]
    clean_ents = [e for i, e in enumerate(ents) if i not in lic_bad]
    employers = [e for e in clean_ents if e.status in ("存续", "在业")] or clean_ents
    si_rows, si_defects = _social_insurance(
        rng("social_insurance"), _rows("social_insurance", scale), clean_people, employers
    )
    fy_rows, fy_defects = _debtors(rng("debtors"), _rows("debtors", scale), clean_people, clean_ents)
    sg_rows, sg_defects = _guides(rng("guides"), _rows("guides", scale))

    files: dict[str, list[str]] = {
        SCJ_CODE: ["scj.db"],
        GAJ_CODE: ["gaj/residents_20261101.csv", "gaj/residents_20261102.csv"],
        RSJ_CODE: ["rsj/social_insurance_202610.xlsx"],
        FY_CODE: ["fy/dishonest_debtors_20261101.jsonl"],
        SGB_CODE: ["sgb/service_guides_20261101.parquet"],
    }
    _write_sqlite(out / files[SCJ_CODE][0], lic_rows)
    _write_csv(out / files[GAJ_CODE][0], res_rows[:split])
    _write_csv(out / files[GAJ_CODE][1], res_rows[split:])
    _write_xlsx(out / files[RSJ_CODE][0], si_rows)
    _write_jsonl(out / files[FY_CODE][0], fy_rows)
    _write_parquet(out / files[SGB_CODE][0], sg_rows)

    datasets = {
        SCJ_CODE: (lic_rows, lic_defects),
        GAJ_CODE: (res_rows, res_defects),
        RSJ_CODE: (si_rows, si_defects),
        FY_CODE: (fy_rows, fy_defects),
        SGB_CODE: (sg_rows, sg_defects),
    }
    manifest = {
        "reference_date": REFERENCE_DATE.isoformat(),
        "seed": seed,
        "scale": scale,
        "datasets": {
            code: {
                "rows": len(rows),
                "bad_rows": len(defects),
                "files": files[code],
                "defects": [{k: v for k, v in asdict(d).items() if k != "dataset"} for d in defects],
            }
            for code, (rows, defects) in datasets.items()
        },
    }
    (out / "manifest.json").write_text(
        json.dumps(manifest, ensure_ascii=False, indent=1) + "\n", encoding="utf-8"
    )
    return {
        "scj_db": f"sqlite:///{out / 'scj.db'}",
        **{ref: str(folder) for ref, folder in drops.items()},
    }
