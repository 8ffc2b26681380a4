"""The demo generator: deterministic files, realistic shapes, about 1 % planted bad rows.

The bad-row count is checked with an independent little checker that applies the
directory's field rules (with ``quality.checksums`` for IDs and credit codes) to the
files as a reader sees them, and must agree with the generator's manifest.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import re
import sqlite3
import zipfile
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from catalog.directory.model import DatasetSpec, DirectoryFile
from quality.checksums import is_citizen_id, is_credit_code, is_mobile
from sharehub.demo import DIRECTORY_DIR, generate

SMALL = 0.1


@pytest.fixture(scope="module")
def full(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    out = tmp_path_factory.mktemp("demo_full")
    return out, generate(out)


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    out = tmp_path_factory.mktemp("demo_small")
    return out, generate(out, scale=SMALL)


def specs() -> dict[str, DatasetSpec]:
    out = {}
    for p in DIRECTORY_DIR.glob("*.yaml"):
        for d in DirectoryFile.model_validate(yaml.safe_load(p.read_text(encoding="utf-8"))).datasets:
            out[d.code] = d
    return out


def digests(out: Path) -> dict[str, str]:
    return {
        str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(out.rglob("*"))
        if p.is_file()
    }


# ----------------------------------------------------------------------------- readers


def read_rows(spec: DatasetSpec, refs: dict[str, str]) -> list[dict[str, Any]]:
    src = spec.source
    if src.kind == "sql":
        path = refs[src.connection].removeprefix("sqlite:///")
        con = sqlite3.connect(path)
        con.row_factory = sqlite3.Row
        try:
            return [dict(r) for r in con.execute(f"SELECT * FROM {src.table} ORDER BY rowid")]
        finally:
            con.close()
    assert src.path
    files = sorted(Path(refs[src.connection]).glob(src.path))
    assert files, src.path
    rows: list[dict[str, Any]] = []
    for f in files:
        if src.format == "csv":
            text = f.read_bytes().decode(src.encoding or "utf-8")
            by_header = {fs.source_name or fs.name: fs.name for fs in spec.fields}
            for rec in csv.DictReader(io.StringIO(text)):
                rows.append({by_header[k]: (v if v != "" else None) for k, v in rec.items()})
        elif src.format == "xlsx":
            from openpyxl import load_workbook

            wb = load_workbook(f, read_only=True)
            it = wb[src.sheet].iter_rows(values_only=True)
            header = next(it)
            rows.extend(dict(zip(header, r, strict=True)) for r in it)
            wb.close()
        elif src.format == "jsonl":
            rows.extend(json.loads(line) for line in f.read_text(encoding="utf-8").splitlines())
        elif src.format == "parquet":
            import pyarrow.parquet as pq

            rows.extend(pq.read_table(f).to_pylist())
    return rows


def as_date(v: Any) -> dt.date:
    if isinstance(v, dt.datetime):
        return v.date()
    if isinstance(v, dt.date):
        return v
    return dt.date.fromisoformat(str(v)[:10]) if len(str(v)) > 10 else dt.date.fromisoformat(str(v))


def row_problems(spec: DatasetSpec, row: dict[str, Any], today: dt.date) -> list[str]:
    """The rules ``row`` breaks, apart from uniqueness (an independent, simple checker)."""
    bad: list[str] = []
    for f in spec.fields:
        v, r = row.get(f.name), f.rules
        if v is None or v == "":
            if r.not_null:
                bad.append("not_null")
            continue
        if f.type in ("date", "timestamp"):
            try:
                d = as_date(v)
            except ValueError:
                bad.append("cast")
                continue
            if r.not_future and d > today:
                bad.append("not_future")
        s = str(v)
        if r.citizen_id and not is_citizen_id(s):
            bad.append("citizen_id")
        if r.credit_code and not is_credit_code(s):
            bad.append("credit_code")
        if r.mobile and not is_mobile(s):
            bad.append("mobile")
        if r.enum is not None and s not in r.enum:
            bad.append("enum")
        if r.regex and not re.search(r.regex, s):
            bad.append("regex")
        if r.max_length and len(s) > r.max_length:
            bad.append("max_length")
        if r.range is not None and f.type not in ("date", "timestamp", "string"):
            x = float(v)
            if (r.range.min is not None and x < float(r.range.min)) or (
                r.range.max is not None and x > float(r.range.max)
            ):
                bad.append("range")
        if r.compare is not None:
            other = row.get(r.compare.other)
            assert r.compare.op == "<="
            if other is not None and not float(v) <= float(other):
                bad.append("compare")
    return bad


def check_dataset(spec: DatasetSpec, refs: dict[str, str]) -> tuple[int, Counter[tuple[str, str]]]:
    rows = read_rows(spec, refs)
    today = dt.date.today()
    keys = ["|".join(str(r.get(k)) for k in spec.primary_key) for r in rows]
    dup = {k for k, n in Counter(keys).items() if n > 1}
    found: Counter[tuple[str, str]] = Counter()
    for key, row in zip(keys, rows, strict=True):
        problems = row_problems(spec, row, today) + (["primary_key"] if key in dup else [])
        assert len(problems) <= 1, (key, problems)  # one planted defect per row
        found.update((key, p) for p in problems)
    return len(rows), found


# ----------------------------------------------------------------------------- tests


def test_refs_point_at_the_written_sources(full):
    out, refs = full
    assert set(refs) == {"scj_db", "gaj_drop", "rsj_drop", "fy_drop", "sgb_drop"}
    assert refs["scj_db"] == f"sqlite:///{out.resolve() / 'scj.db'}"
    assert refs["scj_db"].startswith("sqlite:////")
    for ref in ("gaj_drop", "rsj_drop", "fy_drop", "sgb_drop"):
        assert Path(refs[ref]).is_absolute() and Path(refs[ref]).is_dir()
    assert len(list(Path(refs["gaj_drop"]).glob("residents_2026110*.csv"))) == 2
    directory_refs = {d.source.connection for d in specs().values()}
    assert directory_refs == set(refs)


def test_full_scale_row_counts(full):
    out, _ = full
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    counts = {code: d["rows"] for code, d in manifest["datasets"].items()}
    assert counts == {
        "SCJ-YYZZ-001": 5000,
        "GAJ-HJRK-001": 5000,
        "RSJ-SBJF-001": 4000,
        "FY-SXBZXR-001": 1000,
        "SGB-BSZN-001": 300,
    }


@pytest.mark.parametrize(
    "code", ["SCJ-YYZZ-001", "GAJ-HJRK-001", "RSJ-SBJF-001", "FY-SXBZXR-001", "SGB-BSZN-001"]
)
def test_bad_rows_are_about_one_percent_and_match_the_manifest(full, code):
    out, refs = full
    spec = specs()[code]
    n, found = check_dataset(spec, refs)
    bad = sum(found.values())
    assert 0.005 <= bad / n <= 0.02, (code, bad, n)
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))["datasets"][code]
    assert manifest["rows"] == n and manifest["bad_rows"] == bad
    planted = Counter((d["key"], d["rule"]) for d in manifest["defects"])
    assert found == planted
    # several kinds of defect per dataset, not one repeated
    assert len({rule for _, rule in planted}) >= 3


def test_same_seed_same_bytes_other_seed_differs(tmp_path):
    a = digests(tmp_path / "a") if generate(tmp_path / "a", scale=SMALL) else {}
    b = digests(tmp_path / "b") if generate(tmp_path / "b", scale=SMALL) else {}
    c = digests(tmp_path / "c") if generate(tmp_path / "c", scale=SMALL, seed=7) else {}
    assert a == b
    assert len(a) == 7
    assert set(c) == set(a)
    assert all(c[name] != a[name] for name in a)
    # regenerating into the same folder rewrites (does not append to) the SQLite file
    generate(tmp_path / "a", scale=SMALL)
    assert digests(tmp_path / "a") == a


def test_xlsx_has_no_wall_clock(small):
    _, refs = small
    path = next(Path(refs["rsj_drop"]).glob("*.xlsx"))
    with zipfile.ZipFile(path) as z:
        assert {i.date_time for i in z.infolist()} == {(2026, 11, 1, 0, 0, 0)}
        core = z.read("docProps/core.xml").decode()
    assert "2026-11-01T00:00:00Z" in core
    assert str(dt.date.today().year + 1) not in core


def test_csv_is_gb18030_with_chinese_headers(small):
    _, refs = small
    for path in sorted(Path(refs["gaj_drop"]).glob("residents_*.csv")):
        raw = path.read_bytes()
        with pytest.raises(UnicodeDecodeError):
            raw.decode("utf-8")
        text = raw.decode("gb18030")
        assert text.startswith("公民身份号码,姓名,性别,民族,出生日期")
        assert "浙江省杭州市" in text


def test_csv_holds_one_uncastable_date(full):
    _, refs = full
    spec = specs()["GAJ-HJRK-001"]
    rows = read_rows(spec, refs)
    bad = [r for r in rows if r["birth_date"] and r["birth_date"][5:] == "02-30"]
    assert len(bad) == 1
    assert is_citizen_id(bad[0]["id_no"])


def test_small_scale(small):
    out, refs = small
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    counts = {code: d["rows"] for code, d in manifest["datasets"].items()}
    assert counts == {
        "SCJ-YYZZ-001": 500,
        "GAJ-HJRK-001": 500,
        "RSJ-SBJF-001": 400,
        "FY-SXBZXR-001": 100,
        "SGB-BSZN-001": 30,
    }
    import sqlalchemy as sa

    engine = sa.create_engine(refs["scj_db"])
    with engine.connect() as c:
        assert c.execute(sa.text("SELECT count(*) FROM business_licence")).scalar_one() == 500
    engine.dispose()
    for code, spec in specs().items():
        n, found = check_dataset(spec, refs)
        assert n == counts[code]
        assert sum(found.values()) == manifest["datasets"][code]["bad_rows"] >= 1


def test_data_looks_realistic(small):
    _, refs = small
    s = specs()
    lic = read_rows(s["SCJ-YYZZ-001"], refs)
    assert all(r["ent_name"] is None or r["ent_name"].endswith(("公司", "商行", "（有限合伙）")) for r in lic)
    assert {r["status"] for r in lic} >= {"存续", "注销"}
    assert any(r["valid_until"] is None for r in lic)  # 长期
    assert all(r["updated_at"] < "2026-11-01" for r in lic)
    res = read_rows(s["GAJ-HJRK-001"], refs)
    ok = [r for r in res if r["id_no"] and is_citizen_id(r["id_no"]) and r["gender"] in ("男", "女")]
    # gender agrees with the ID's 17th digit, birth date with its digits 7-14
    assert all((int(r["id_no"][16]) % 2 == 1) == (r["gender"] == "男") for r in ok)
    assert (
        sum(r["birth_date"] == f"{r['id_no'][6:10]}-{r['id_no'][10:12]}-{r['id_no'][12:14]}" for r in ok)
        >= len(ok) - 2
    )
    debtors = read_rows(s["FY-SXBZXR-001"], refs)
    assert all(re.match(r"^（20\d\d）浙0\d*执", r["case_no"]) for r in debtors)
