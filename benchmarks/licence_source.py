"""A deterministic business-licence table of any size in a real PostgreSQL database.

The market regulator's ``business_licence`` table (the 12 columns of
:func:`sharehub.demo.sql_sources.licence_table`, about 330 bytes a row) is generated in
vectorised numpy/Arrow blocks from a fixed seed, written with ``COPY … FROM STDIN`` and indexed
like the department's own table (``uscc``, ``updated_at``). Row ``i`` is the same on every run
and every machine, whatever the size, so the 1M table is the first million rows of the 5M one.

Planted bad rows, 4 per 1,000 (the quality step must quarantine exactly these): a wrong credit
code check character (``i % 1000 == 17``), a missing legal representative (``== 113``), a status
outside the enum (``== 251``), an establishment date in the future (``== 389``).

The load is skipped when the table already holds this generator's rows at this size (a
comment on the table records the generator version and row count). :func:`change_rows`
applies B2's "1 % of rows changed" edit; :func:`restore_rows` undoes it (the originals are kept
in a side table) so the next run starts from the generated state.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Iterator
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from quality.checksums import CREDIT_CODE_ALPHABET, CREDIT_CODE_WEIGHTS

VERSION = "licence-gen-1"
TABLE = "business_licence"
SAVED = "bench_b2_original"
BLOCK = 200_000
BAD_EVERY = 1000
BAD_CHECK, BAD_NULL_REP, BAD_STATUS, BAD_FUTURE = 17, 113, 251, 389
#: B2 changes the rows whose index is 7 modulo 100 (1 %), stamped with this time
CHANGE_EVERY, CHANGE_AT = 100, 7
CHANGED_AT = dt.datetime(2026, 6, 1, 9, 0, 0)
_EPOCH_UPDATED = dt.datetime(2025, 1, 1)

AREAS = ["330102", "330105", "330106", "330108", "330109", "330110", "330111", "330112", "330113", "330114"]
DISTRICTS = [
    "上城区",
    "拱墅区",
    "西湖区",
    "滨江区",
    "萧山区",
    "余杭区",
    "富阳区",
    "临安区",
    "临平区",
    "钱塘区",
]
ENT_TYPES = [
    "有限责任公司（自然人投资或控股）",
    "有限责任公司（自然人独资）",
    "有限责任公司（非自然人投资或控股的法人独资）",
    "股份有限公司（非上市、自然人投资或控股）",
    "股份有限公司（上市）",
    "个人独资企业",
    "有限合伙企业",
    "外商独资企业",
]
STATUSES = ["存续", "在业", "吊销", "注销", "迁出"]
STATUS_WEIGHTS = [0.62, 0.25, 0.05, 0.06, 0.02]
WORDS = list("恒泰华瑞鑫达宏远诚信博盛新锐天成嘉禾永安景明云帆浩然和润启航锦程卓越汇通")
TRADES = [
    "科技",
    "贸易",
    "餐饮管理",
    "信息技术",
    "建筑工程",
    "文化传媒",
    "物流",
    "电子商务",
    "医疗器械",
    "教育咨询",
]
SURNAMES = list("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董")
GIVEN = list("伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍红建文辉")
STREETS = [
    "文三路",
    "天目山路",
    "江南大道",
    "建国北路",
    "莫干山路",
    "解放东路",
    "古墩路",
    "丰潭路",
    "市心中路",
    "文一西路",
]
SCOPES = [
    "一般项目：技术服务、技术开发、技术咨询、技术交流、技术转让、技术推广；软件开发；信息系统集成服务；"
    "数据处理和存储支持服务（除依法须经批准的项目外，凭营业执照依法自主开展经营活动）。",
    "许可项目：餐饮服务；食品经营（销售预包装食品）。（依法须经批准的项目，经相关部门批准后方可开展经营活动，"
    "具体经营项目以审批结果为准）。一般项目：餐饮管理；外卖递送服务。",
    "一般项目：货物进出口；技术进出口；日用百货销售；服装服饰批发；针纺织品销售；五金产品零售；电子产品销售"
    "（除依法须经批准的项目外，凭营业执照依法自主开展经营活动）。",
    "许可项目：建设工程施工；住宅室内装饰装修。一般项目：园林绿化工程施工；建筑材料销售；机械设备租赁"
    "（除依法须经批准的项目外，凭营业执照依法自主开展经营活动）。",
]


def _pool(values: list[str]) -> pa.Array:
    return pa.array(values, pa.string())


def _take(pool: list[str], idx: np.ndarray) -> pa.Array:
    return _pool(pool).take(pa.array(idx))


def _credit_codes(i: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Valid 18-character codes: 9 1 <area> <8-digit body unique per i> <org check> <check>."""
    n = len(i)
    chars = np.zeros((n, 18), dtype=np.uint8)
    chars[:, 0] = ord("9")
    chars[:, 1] = ord("1")
    area = np.frombuffer("".join(AREAS).encode(), dtype=np.uint8).reshape(len(AREAS), 6)
    chars[:, 2:8] = area[rng.integers(0, len(AREAS), n)]
    # an affine permutation of 0..10^8-1 keeps bodies unique for every i below 10^8
    body = (i.astype(np.int64) * 48_271 + 12_345_679) % 100_000_000
    for pos in range(8):
        chars[:, 15 - pos] = ord("0") + (body // 10**pos) % 10
    weights = np.array([3, 7, 9, 10, 5, 8, 4, 2], dtype=np.int64)
    org = 11 - ((chars[:, 8:16].astype(np.int64) - ord("0")) @ weights) % 11
    org_char = np.where(org == 10, ord("X"), np.where(org == 11, ord("0"), ord("0") + org))
    chars[:, 16] = org_char
    lookup = np.zeros(256, dtype=np.int64)
    for k, c in enumerate(CREDIT_CODE_ALPHABET):
        lookup[ord(c)] = k
    total = lookup[chars[:, :17]] @ np.array(CREDIT_CODE_WEIGHTS, dtype=np.int64)
    alphabet = np.frombuffer(CREDIT_CODE_ALPHABET.encode(), dtype=np.uint8)
    chars[:, 17] = alphabet[(31 - total % 31) % 31]
    bad = i % BAD_EVERY == BAD_CHECK
    # a different character of the alphabet: the check fails, the format still holds
    chars[bad, 17] = alphabet[(lookup[chars[bad, 17]] + 1) % 31]
    return chars


def _strings(chars: np.ndarray) -> pa.Array:
    width = chars.shape[1]
    data = pa.py_buffer(np.ascontiguousarray(chars).tobytes())
    offsets = pa.py_buffer((np.arange(chars.shape[0] + 1, dtype=np.int32) * width).tobytes())
    return pa.Array.from_buffers(pa.string(), chars.shape[0], [None, offsets, data])


def _join(*parts: pa.Array) -> pa.Array:
    return pc.binary_join_element_wise(*parts, "")


def block(start: int, stop: int) -> pa.Table:
    """Rows ``start`` ... ``stop - 1`` of the table (the same rows on every call)."""
    i = np.arange(start, stop, dtype=np.int64)
    n = len(i)
    rng = np.random.default_rng([20261122, start])
    uscc = _strings(_credit_codes(i, rng))
    district = rng.integers(0, len(DISTRICTS), n)
    name = _join(
        pa.array(np.full(n, "杭州"), pa.string()),
        _take(WORDS, rng.integers(0, len(WORDS), n)),
        _take(WORDS, rng.integers(0, len(WORDS), n)),
        _take(TRADES, rng.integers(0, len(TRADES), n)),
        pa.array(np.full(n, "有限公司"), pa.string()),
    )
    rep = _join(
        _take(SURNAMES, rng.integers(0, len(SURNAMES), n)),
        _take(GIVEN, rng.integers(0, len(GIVEN), n)),
        _take(GIVEN, rng.integers(0, len(GIVEN), n)),
    )
    rep = pc.if_else(pa.array(i % BAD_EVERY == BAD_NULL_REP), pa.scalar(None, pa.string()), rep)
    capital = np.round(rng.gamma(1.5, 300.0, n), 2)
    est_days = rng.integers(
        (dt.date(1990, 1, 1) - dt.date(1970, 1, 1)).days,
        (dt.date(2025, 12, 31) - dt.date(1970, 1, 1)).days,
        n,
    )
    est_days = np.where(
        i % BAD_EVERY == BAD_FUTURE, (dt.date(2031, 3, 1) - dt.date(1970, 1, 1)).days, est_days
    )
    est = pa.array(est_days.astype(np.int32), pa.date32())
    until_days = est_days + np.where(rng.random(n) < 0.5, 7305, 10957)
    until = pa.array(until_days.astype(np.int32), pa.date32(), mask=rng.random(n) < 0.3)
    authority = _join(
        pa.array(np.full(n, "杭州市"), pa.string()),
        _take(DISTRICTS, district),
        pa.array(np.full(n, "市场监督管理局"), pa.string()),
    )
    address = _join(
        pa.array(np.full(n, "浙江省杭州市"), pa.string()),
        _take(DISTRICTS, district),
        _take(STREETS, rng.integers(0, len(STREETS), n)),
        pc.cast(pa.array(rng.integers(1, 999, n)), pa.string()),
        pa.array(np.full(n, "号"), pa.string()),
    )
    scope = _take(SCOPES, rng.integers(0, len(SCOPES), n))
    status = _take(STATUSES, rng.choice(len(STATUSES), n, p=STATUS_WEIGHTS))
    status = pc.if_else(pa.array(i % BAD_EVERY == BAD_STATUS), pa.scalar("未知"), status)
    seconds = rng.integers(0, 360 * 86_400, n)
    epoch_us = int((_EPOCH_UPDATED - dt.datetime(1970, 1, 1)).total_seconds()) * 1_000_000
    updated = pa.array(epoch_us + seconds * 1_000_000, pa.timestamp("us"))
    return pa.table(
        {
            "uscc": uscc,
            "ent_name": name,
            "ent_type": _take(ENT_TYPES, rng.integers(0, len(ENT_TYPES), n)),
            "legal_rep": rep,
            "reg_capital": pa.array(capital, pa.float64()),
            "est_date": est,
            "valid_until": until,
            "reg_authority": authority,
            "address": address,
            "business_scope": scope,
            "status": status,
            "updated_at": updated,
        }
    )


def blocks(rows: int) -> Iterator[pa.Table]:
    for start in range(0, rows, BLOCK):
        yield block(start, min(rows, start + BLOCK))


def bad_row_count(rows: int) -> int:
    """How many planted bad rows the first ``rows`` rows hold."""
    full, rest = divmod(rows, BAD_EVERY)
    return 4 * full + sum(1 for k in (BAD_CHECK, BAD_NULL_REP, BAD_STATUS, BAD_FUTURE) if k < rest)


# ---- PostgreSQL -----------------------------------------------------------------------------


def _marker(rows: int) -> str:
    return f"{VERSION} rows={rows}"


def _connect(url: str) -> Any:
    import psycopg

    return psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True)


def ensure_database(server_url: str, name: str) -> str:
    """Create database ``name`` on the server when missing; return its SQLAlchemy URL."""
    from psycopg import sql as psql

    base = server_url.rsplit("/", 1)[0]
    with _connect(f"{base}/postgres") as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            conn.execute(psql.SQL("CREATE DATABASE {}").format(psql.Identifier(name)))
    return f"{base}/{name}"


def drop_database(server_url: str, name: str) -> None:
    from psycopg import sql as psql

    base = server_url.rsplit("/", 1)[0]
    with _connect(f"{base}/postgres") as conn:
        conn.execute(psql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(psql.Identifier(name)))


def load(url: str, rows: int) -> bool:
    """Make ``business_licence`` at ``url`` hold exactly the generated ``rows``; True if it (re)loaded."""
    import sqlalchemy as sa

    from sharehub.demo.sql_sources import licence_table

    restore_rows(url)
    with _connect(url) as conn:
        comment = conn.execute("SELECT obj_description(to_regclass(%s), 'pg_class')", [TABLE]).fetchone()
        if comment and comment[0] == _marker(rows):
            return False
    engine = sa.create_engine(url)
    try:
        meta = sa.MetaData()
        table = licence_table(meta)
        table.drop(engine, checkfirst=True)
        for index in list(table.indexes):
            table.indexes.discard(index)
        table.create(engine)
    finally:
        engine.dispose()
    options = pa_csv.WriteOptions(include_header=False, batch_size=BLOCK)
    with _connect(url) as conn:
        with conn.cursor() as cur, cur.copy(f"COPY {TABLE} FROM STDIN (FORMAT csv)") as copy:
            for part in blocks(rows):
                buf = io.BytesIO()
                pa_csv.write_csv(part, buf, options)
                copy.write(buf.getbuffer())
        conn.execute(f"CREATE INDEX ix_{TABLE}_uscc ON {TABLE} (uscc)")
        conn.execute(f"CREATE INDEX ix_{TABLE}_updated_at ON {TABLE} (updated_at)")
        conn.execute(f"VACUUM ANALYZE {TABLE}")
        conn.execute(f"COMMENT ON TABLE {TABLE} IS '{_marker(rows)}'")
    return True


def _changed_predicate() -> str:
    # a stable hash of the key picks the same ~1 % of rows on every run and every size
    return f"mod(abs(hashtext(uscc)), {CHANGE_EVERY}) = {CHANGE_AT}"


def change_rows(url: str) -> int:
    """B2's edit: about 1 % of the rows get a new capital and ``updated_at``; returns how many."""
    with _connect(url) as conn:
        restore_rows(url)
        with conn.transaction():
            conn.execute(f"CREATE TABLE {SAVED} AS SELECT * FROM {TABLE} WHERE {_changed_predicate()}")
            change = f"UPDATE {TABLE} SET reg_capital = reg_capital + 1, updated_at = %s"
            cur = conn.execute(f"{change} WHERE {_changed_predicate()}", [CHANGED_AT])
            return int(cur.rowcount)


def restore_rows(url: str) -> None:
    """Undo :func:`change_rows` (a no-op when nothing is changed)."""
    with _connect(url) as conn:
        if conn.execute("SELECT to_regclass(%s)", [SAVED]).fetchone()[0] is None:
            return
        with conn.transaction():
            conn.execute(f"DELETE FROM {TABLE} WHERE {_changed_predicate()}")
            conn.execute(f"INSERT INTO {TABLE} SELECT * FROM {SAVED}")
            conn.execute(f"DROP TABLE {SAVED}")
