"""Synthetic residents and enterprises shared by the five demo datasets.

The same people and enterprises show up across departments (a resident pays social
insurance to an employer that holds a business licence, a debtor is a resident or an
enterprise), so that subject lookups in the demo find records in several datasets.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass

from sharehub.demo import identifiers as ids
from sharehub.demo import names

REFERENCE_DATE = dt.date(2026, 11, 1)  # every date in the demo is relative to this, never to today
REFERENCE_TIME = dt.datetime(2026, 11, 1, 0, 0, 0)


def add_years(d: dt.date, years: int) -> dt.date:
    """``d`` moved by whole years (29 February becomes 28 February)."""
    try:
        return d.replace(year=d.year + years)
    except ValueError:
        return d.replace(year=d.year + years, day=28)


@dataclass(frozen=True)
class Person:
    """One registered resident (户籍人口)."""

    id_no: str
    name: str
    gender: str
    ethnicity: str
    birth_date: dt.date
    address: str
    mobile: str
    issue_authority: str
    id_valid_from: dt.date
    id_valid_until: dt.date | None  # None = 长期

    def age(self, on: dt.date = REFERENCE_DATE) -> int:
        """Age in whole years on ``on``."""
        return (
            on.year
            - self.birth_date.year
            - ((on.month, on.day) < (self.birth_date.month, self.birth_date.day))
        )


@dataclass(frozen=True)
class Enterprise:
    """One enterprise as the business registry holds it."""

    uscc: str
    name: str
    ent_type: str
    legal_rep: str
    reg_capital: str  # 万元, two decimals
    est_date: dt.date
    valid_until: dt.date | None  # None = 长期
    reg_authority: str
    address: str
    business_scope: str
    status: str
    updated_at: dt.datetime


_AGE_BANDS: tuple[tuple[int, int, int], ...] = (
    (0, 15, 14),
    (16, 25, 11),
    (26, 45, 32),
    (46, 60, 23),
    (61, 92, 20),
)


def make_people(rng: random.Random, n: int) -> list[Person]:
    """``n`` residents with valid, unique citizen IDs consistent with birth date and gender."""
    seen: set[str] = set()
    people: list[Person] = []
    while len(people) < n:
        lo, hi, _ = rng.choices(_AGE_BANDS, weights=[b[2] for b in _AGE_BANDS])[0]
        birth = REFERENCE_DATE - dt.timedelta(days=rng.randint(lo * 365 + 1, hi * 365 + 364))
        d = names.district(rng)
        area = d.code if rng.random() < 0.72 else rng.choice(names.OTHER_BIRTH_AREAS)
        male = rng.random() < 0.51
        seq = rng.randrange(0, 500) * 2 + (1 if male else 0)
        body = f"{area}{birth:%Y%m%d}{seq:03d}"
        if body in seen:
            continue
        seen.add(body)
        valid_from, valid_until = _id_validity(rng, birth)
        people.append(
            Person(
                id_no=ids.citizen_id(area, birth, seq),
                name=names.person_name(rng, male),
                gender="男" if male else "女",
                ethnicity=names.weighted(rng, names.ETHNICITIES),
                birth_date=birth,
                address=names.home_address(rng, d),
                mobile=names.mobile(rng),
                issue_authority=f"杭州市公安局{d.name}分局",
                id_valid_from=valid_from,
                id_valid_until=valid_until,
            )
        )
    return people


def _id_validity(rng: random.Random, birth: dt.date) -> tuple[dt.date, dt.date | None]:
    """Issue date and expiry of the current ID card (5/10/20 years or 长期, by age at issue)."""
    age_days = (REFERENCE_DATE - birth).days
    sixteen = add_years(birth, 16)
    if sixteen > REFERENCE_DATE:
        issued = REFERENCE_DATE - dt.timedelta(days=rng.randint(20, max(21, min(age_days - 1, 5 * 365 - 10))))
        return issued, add_years(issued, 5)
    earliest = max(sixteen, REFERENCE_DATE - dt.timedelta(days=3600))
    span = (REFERENCE_DATE - earliest).days
    issued = REFERENCE_DATE - dt.timedelta(days=rng.randint(min(20, span), max(20, span)))
    age_at_issue = issued.year - birth.year - ((issued.month, issued.day) < (birth.month, birth.day))
    if age_at_issue < 26:
        return issued, add_years(issued, 10)
    if age_at_issue < 46:
        return issued, add_years(issued, 20)
    return issued, None


_STATUSES: tuple[tuple[str, int], ...] = (("存续", 80), ("在业", 8), ("吊销", 4), ("注销", 6), ("迁出", 2))
_CAPITALS = (10, 30, 50, 100, 100, 200, 300, 500, 500, 1000, 2000, 5000)


def make_enterprises(rng: random.Random, n: int, people: list[Person]) -> list[Enterprise]:
    """``n`` enterprises with unique names and valid, unique credit codes."""
    seen_codes: set[str] = set()
    seen_names: set[str] = set()
    out: list[Enterprise] = []
    types = names.ENT_TYPES
    while len(out) < n:
        ent_type, suffix, _ = rng.choices(types, weights=[t[2] for t in types])[0]
        d = names.district(rng)
        industry = rng.choice(names.INDUSTRIES)
        word, scope = industry.word, industry.scope
        prefix = "浙江" if rng.random() < 0.12 else "杭州"
        if ent_type == "个人独资企业":
            name = f"杭州市{d.name}{names.brand(rng)}{word}{suffix}"
        elif ent_type == "有限合伙企业":
            word = "股权投资"
            scope = (
                "一般项目：股权投资；以私募基金从事股权投资、投资管理、资产管理等活动"
                "（须在中国证券投资基金业协会完成登记备案后方可从事经营活动）"
            )
            name = f"{prefix}{names.brand(rng)}{word}{suffix}"
        else:
            name = f"{prefix}{names.brand(rng)}{word}{suffix}"
        if name in seen_names:
            continue
        est = REFERENCE_DATE - dt.timedelta(days=30 + int(rng.random() ** 1.6 * 31 * 365))
        code = ids.credit_code(rng, d.code, est)
        if code in seen_codes:
            continue
        seen_names.add(name)
        seen_codes.add(code)
        capital = float(rng.choice(_CAPITALS)) if rng.random() < 0.85 else round(rng.uniform(1, 3000), 2)
        if ent_type == "股份有限公司（上市）":
            capital = float(rng.choice((10000, 20000, 50000, 120000)))
        status = names.weighted(rng, _STATUSES) if (REFERENCE_DATE - est).days > 400 else "存续"
        valid_until = None if rng.random() < 0.7 else add_years(est, rng.choice((20, 30)))
        first_touch = max(est, REFERENCE_DATE - dt.timedelta(days=3 * 365))
        span = (REFERENCE_TIME - dt.datetime.combine(first_touch, dt.time())).total_seconds()
        updated = REFERENCE_TIME - dt.timedelta(seconds=rng.randint(60, max(61, int(span))))
        authority = "杭州市市场监督管理局" if prefix == "浙江" else f"杭州市{d.name}市场监督管理局"
        out.append(
            Enterprise(
                uscc=code,
                name=name,
                ent_type=ent_type,
                legal_rep=rng.choice(people).name if people else names.person_name(rng, rng.random() < 0.6),
                reg_capital=f"{capital:.2f}",
                est_date=est,
                valid_until=valid_until,
                reg_authority=authority,
                address=names.business_address(rng, d),
                business_scope=scope + names.SCOPE_TAIL,
                status=status,
                updated_at=updated,
            )
        )
    return out
