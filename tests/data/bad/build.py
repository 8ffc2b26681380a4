"""Build the bad-input corpus: one folder of department files per case.

``python tests/data/bad/build.py OUT`` writes ``OUT/<case>/...`` for every case of
``manifest.yaml``; the test module calls :func:`build` the same way. Each case function writes
its files (real shapes: GBK/Big5/UTF-16 bytes, Excel/WPS workbooks through openpyxl, Parquet
through pyarrow, title rows, merged headers, formulas, time zones) and returns the rows the
department meant to deliver that are good, as ``{field: value}`` with the values the hub must
publish (timestamps as ISO text in UTC+8 wall-clock time, numbers as numbers). The manifest
declares the rest of each outcome: the run status, which rows are quarantined and why.

Deterministic: the same files every time (no clock, no randomness).
"""

from __future__ import annotations

import codecs
import datetime as dt
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

Row = dict[str, Any]
CASES: dict[str, Callable[[Path], list[Row]]] = {}

HEADER = ["编号", "名称", "金额", "时间"]
SIMPLIFIED = ["王伟", "李娜", "张敏", "刘洋", "陈杰", "杨静", "赵磊", "黄丽", "周强", "吴芳"]
TRADITIONAL = ["王偉", "李娜", "張敏", "劉洋", "陳傑", "楊靜", "趙磊", "黃麗", "周強", "吳芳"]
AT = "2026-01-01 10:00:00"
AT_ISO = "2026-01-01T10:00:00"


def case(fn: Callable[[Path], list[Row]]) -> Callable[[Path], list[Row]]:
    CASES[fn.__name__] = fn
    return fn


def code(i: int) -> str:
    return f"C{i:04d}"


def good(i: int, *, names: Sequence[str] = SIMPLIFIED, at: str = AT_ISO, **extra: Any) -> Row:
    """The published form of base row ``i``."""
    return {"code": code(i), "name": f"{names[i % len(names)]}{i}", "amount": i + 0.5, "at": at, **extra}


def line(i: int, *, names: Sequence[str] = SIMPLIFIED, at: str = AT) -> list[str]:
    """Base row ``i`` as the department's text fields (编号, 名称, 金额, 时间)."""
    return [code(i), f"{names[i % len(names)]}{i}", f"{i}.5", at]


def csv_text(header: Sequence[str], rows: Sequence[Sequence[str]], *, trailing: str = "") -> str:
    def cell(v: str) -> str:
        return f'"{v.replace(chr(34), chr(34) * 2)}"' if any(c in v for c in ',"\n') else v

    return "".join(",".join(cell(v) for v in r) + trailing + "\n" for r in [header, *rows])


def write(path: Path, text: str, encoding: str = "utf-8") -> None:
    path.write_bytes(text.encode(encoding))


def xlsx(
    path: Path, sheets: Sequence[tuple[str, Sequence[Sequence[Any]], str]], merges: Sequence[str] = ()
) -> None:
    """A workbook like Excel/WPS writes: ``(title, rows, state)`` per sheet; merges on the data sheet."""
    import openpyxl

    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    for title, rows, state in sheets:
        ws = wb.create_sheet(title)
        ws.sheet_state = state
        for r in rows:
            ws.append(list(r))
        if state == "visible":
            for m in merges:
                ws.merge_cells(m)
    wb.save(path)


def parquet(path: Path, columns: dict[str, Any]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table(columns), path)


# ---- CSV structure ------------------------------------------------------------------------


@case
def csv_clean(folder: Path) -> list[Row]:
    write(folder / "data.csv", csv_text(HEADER, [line(i) for i in range(1, 6)]))
    return [good(i) for i in range(1, 6)]


@case
def csv_unclosed_quote_last_column(folder: Path) -> list[Row]:
    rows = [line(i) for i in range(1, 301)]
    text = csv_text(HEADER, rows).splitlines(keepends=True)
    text[101] = f'{code(101)},名称101,101.5,"2026-01-01 10:00:00\n'  # data row 101 = line 102
    write(folder / "data.csv", "".join(text))
    return [good(i) for i in range(1, 301) if i != 101]


@case
def csv_unclosed_quote_middle_column(folder: Path) -> list[Row]:
    rows = [line(i) for i in range(1, 301)]
    text = csv_text(HEADER, rows).splitlines(keepends=True)
    text[101] = f'{code(101)},"名称101,101.5,{AT}\n'
    write(folder / "data.csv", "".join(text))
    return [good(i) for i in range(1, 301) if i != 101]


@case
def csv_unclosed_quote_before_quoted_rows(folder: Path) -> list[Row]:
    """Later rows quote their names: the stray quote would pair with theirs and shift the fields."""
    rows = [[code(i), f"{SIMPLIFIED[i % 10]}{i},分号", f"{i}.5", AT] for i in range(1, 21)]
    text = csv_text(HEADER, rows).splitlines(keepends=True)
    text[5] = f'{code(5)},"王五,5.5,{AT}\n'
    write(folder / "data.csv", "".join(text))
    return [{**good(i), "name": f"{SIMPLIFIED[i % 10]}{i},分号"} for i in range(1, 21) if i != 5]


@case
def csv_unclosed_quote_last_line(folder: Path) -> list[Row]:
    text = csv_text(HEADER, [line(i) for i in range(1, 6)]) + f'{code(6)},"名称6,6.5,{AT}\n'
    write(folder / "data.csv", text)
    return [good(i) for i in range(1, 6)]


@case
def csv_multiline_value(folder: Path) -> list[Row]:
    """A quoted value over two lines (Alt+Enter in a cell) is data, not an error."""
    rows = [line(i) for i in range(1, 6)]
    rows[1][1] = "李娜2\n（曾用名）"
    write(folder / "data.csv", csv_text(HEADER, rows))
    out = [good(i) for i in range(1, 6)]
    out[1]["name"] = "李娜2\n（曾用名）"
    return out


@case
def csv_title_lines(folder: Path) -> list[Row]:
    text = "户籍人口信息表\n导出时间：2026-11-01,,,\n" + csv_text(HEADER, [line(i) for i in range(1, 6)])
    write(folder / "data.csv", text)
    return [good(i) for i in range(1, 6)]


@case
def csv_trailing_commas(folder: Path) -> list[Row]:
    """WPS exports: a comma after the last field of every data row (not of the header)."""
    body = csv_text(HEADER, [line(i) for i in range(1, 6)], trailing=",").splitlines(keepends=True)
    write(folder / "data.csv", ",".join(HEADER) + "\n" + "".join(body[1:]))
    return [good(i) for i in range(1, 6)]


@case
def csv_trailing_commas_header_too(folder: Path) -> list[Row]:
    write(folder / "data.csv", csv_text(HEADER, [line(i) for i in range(1, 6)], trailing=","))
    return [good(i) for i in range(1, 6)]


@case
def csv_header_fullwidth_and_spaces(folder: Path) -> list[Row]:
    """Declared 名称(全称) and 金额; the file says 名称（全称） and '金额 '."""
    header = ["编号", "名称（全称）", "金额 ", " 时间"]
    write(folder / "data.csv", csv_text(header, [line(i) for i in range(1, 6)]))
    return [good(i) for i in range(1, 6)]


@case
def csv_renamed_column_blocks(folder: Path) -> list[Row]:
    header = ["编号", "名字", "金额", "时间"]
    write(folder / "data.csv", csv_text(header, [line(i) for i in range(1, 6)]))
    return []


@case
def csv_missing_column_publish_null(folder: Path) -> list[Row]:
    rows = [[r[0], r[1], r[3]] for r in (line(i) for i in range(1, 6))]
    write(folder / "data.csv", csv_text(["编号", "名称", "时间"], rows))
    return [{**good(i), "amount": None} for i in range(1, 6)]


@case
def csv_duplicate_header(folder: Path) -> list[Row]:
    write(folder / "a.csv", csv_text(HEADER, [line(i) for i in range(1, 4)]))
    header = ["编号", "名称", "名称", "时间"]
    write(folder / "b.csv", csv_text(header, [line(i) for i in range(4, 7)]))
    return [good(i) for i in range(1, 4)]


@case
def csv_empty_file_in_drop(folder: Path) -> list[Row]:
    write(folder / "a.csv", csv_text(HEADER, [line(i) for i in range(1, 4)]))
    (folder / "b.csv").write_bytes(b"")
    write(folder / "c.csv", csv_text(HEADER, [line(i) for i in range(4, 7)]))
    return [good(i) for i in range(1, 7)]


@case
def csv_header_only(folder: Path) -> list[Row]:
    write(folder / "data.csv", csv_text(HEADER, []))
    return []


@case
def csv_ragged_row(folder: Path) -> list[Row]:
    rows = [line(i) for i in range(1, 6)]
    rows[2] = [*rows[2], "多余"]
    write(folder / "data.csv", csv_text(HEADER, rows))
    return [good(i) for i in range(1, 6) if i != 3]


@case
def csv_utf8_bom_crlf(folder: Path) -> list[Row]:
    text = csv_text(HEADER, [line(i) for i in range(1, 6)]).replace("\n", "\r\n")
    (folder / "data.csv").write_bytes(codecs.BOM_UTF8 + text.encode("utf-8"))
    return [good(i) for i in range(1, 6)]


@case
def csv_big_rows(folder: Path) -> list[Row]:
    """A 3 MB value is read (pyarrow's 1 MB blocks refused it); an 18 MB row is one reject."""
    rows = [line(i) for i in range(1, 6)]
    rows[1][1] = "长" * 1_000_000  # 3 MB of UTF-8
    rows[3][1] = "超" * 6_000_000  # 18 MB
    write(folder / "data.csv", csv_text(HEADER, rows))
    out = [good(i) for i in range(1, 6) if i != 4]
    out[1]["name"] = "长" * 1_000_000
    return out


# ---- encodings ----------------------------------------------------------------------------


@case
def csv_gbk_undeclared(folder: Path) -> list[Row]:
    write(folder / "data.csv", csv_text(HEADER, [line(i) for i in range(1, 21)]), "gbk")
    return [good(i) for i in range(1, 21)]


@case
def csv_big5_undeclared(folder: Path) -> list[Row]:
    header = ["編號", "名稱", "金額", "時間"]
    rows = [line(i, names=TRADITIONAL) for i in range(1, 21)]
    write(folder / "data.csv", csv_text(header, rows), "big5")
    return [good(i, names=TRADITIONAL) for i in range(1, 21)]


@case
def csv_big5_ambiguous(folder: Path) -> list[Row]:
    """陝除 in Big5 is 阿埃 in GB18030: both common characters, so the bytes prove nothing.

    (ASCII headers: this case's dataset declares code/name/amount/at as its source names.)"""
    write(folder / "a.csv", csv_text(["code", "name", "amount", "at"], [line(i) for i in range(1, 4)]))
    body = f"code,name,amount,at\n{code(9)},".encode() + "陝除".encode("big5") + f",9.5,{AT}\n".encode()
    (folder / "b.csv").write_bytes(body)
    return [good(i) for i in range(1, 4)]


@case
def csv_big5_declared(folder: Path) -> list[Row]:
    header = ["編號", "名稱", "金額", "時間"]
    write(folder / "data.csv", csv_text(header, [line(i, names=TRADITIONAL) for i in range(1, 6)]), "big5")
    return [good(i, names=TRADITIONAL) for i in range(1, 6)]


@case
def csv_declared_gbk_but_utf8(folder: Path) -> list[Row]:
    """Declared GBK, but the department's new export is UTF-8: GB18030 would decode it garbled.

    (ASCII headers, so that nothing but the encoding check stands between the bytes and a
    garbled publication.)"""
    ascii_header = ["code", "name", "amount", "at"]
    write(folder / "a.csv", csv_text(ascii_header, [line(i) for i in range(1, 4)]), "gbk")
    write(folder / "b.csv", csv_text(ascii_header, [line(i) for i in range(4, 7)]), "utf-8")
    return [good(i) for i in range(1, 4)]


@case
def csv_gbk_bad_line(folder: Path) -> list[Row]:
    text = csv_text(HEADER, [line(i) for i in range(1, 201)])
    lines = text.encode("gbk").split(b"\n")
    lines[50] = lines[50].replace(code(50).encode(), code(50).encode() + b"\xff")  # line 51 = row 50
    (folder / "data.csv").write_bytes(b"\n".join(lines))
    return [good(i) for i in range(1, 201) if i != 50]


@case
def csv_utf8_bad_line(folder: Path) -> list[Row]:
    text = csv_text(HEADER, [line(i) for i in range(1, 201)])
    lines = text.encode("utf-8").split(b"\n")
    lines[120] = lines[120].replace("名称".encode(), b"\xc3\x28")  # row 120 = line 121
    lines[120] = lines[120].replace(SIMPLIFIED[0].encode(), b"\xc3\x28")
    (folder / "data.csv").write_bytes(b"\n".join(lines))
    return [good(i) for i in range(1, 201) if i != 120]


@case
def csv_utf16_declared_large(folder: Path) -> list[Row]:
    """UTF-16 LE with BOM (Excel's "Unicode text" as CSV), 1.4 MB: line feeds are 0A 00."""
    n = 20_000
    write(folder / "data.csv", csv_text(HEADER, [line(i) for i in range(1, n + 1)]), "utf-16")
    return [good(i) for i in range(1, n + 1)]


@case
def csv_utf16_undeclared(folder: Path) -> list[Row]:
    write(folder / "data.csv", csv_text(HEADER, [line(i) for i in range(1, 6)]), "utf-16")
    return [good(i) for i in range(1, 6)]


# ---- values -------------------------------------------------------------------------------


@case
def csv_nan_infinity(folder: Path) -> list[Row]:
    rows = [line(i) for i in range(1, 7)]
    rows[1][2], rows[2][2], rows[3][2] = "NaN", "inf", "-Infinity"
    write(folder / "data.csv", csv_text(HEADER, rows))
    return [good(i) for i in (1, 5, 6)]


@case
def csv_thousands_undeclared(folder: Path) -> list[Row]:
    rows = [line(i) for i in range(1, 4)]
    rows[1][2] = "1,234.50"
    write(folder / "data.csv", csv_text(HEADER, rows))
    return [good(i) for i in (1, 3)]


@case
def csv_thousands_declared(folder: Path) -> list[Row]:
    rows = [line(i) for i in range(1, 4)]
    rows[1][2] = "1,234.50"
    write(folder / "data.csv", csv_text(HEADER, rows))
    return [good(1), {**good(2), "amount": 1234.5}, good(3)]


CREDIT = ["91330106MA27XY007B", "91330100MA2CFYAA1F", "91330108MA2H1K5W3R"]


def _credit_codes() -> list[str]:
    from quality.checksums import credit_code_check_char

    return [c[:17] + credit_code_check_char(c[:17]) for c in CREDIT]


@case
def csv_fullwidth_credit_code_undeclared(folder: Path) -> list[Row]:
    codes = _credit_codes()
    shown = [codes[0], codes[1][:2] + "３" + codes[1][3:], codes[2]]  # 913… with a full-width 3
    rows = [[*line(i), shown[i - 1]] for i in range(1, 4)]
    write(folder / "data.csv", csv_text([*HEADER, "统一社会信用代码"], rows))
    return [{**good(i), "uscc": codes[i - 1]} for i in (1, 3)]


@case
def csv_fullwidth_credit_code_declared(folder: Path) -> list[Row]:
    codes = _credit_codes()
    shown = [codes[0], codes[1][:2] + "３" + codes[1][3:], "９" + codes[2][1:]]
    rows = [[*line(i), shown[i - 1]] for i in range(1, 4)]
    write(folder / "data.csv", csv_text([*HEADER, "统一社会信用代码"], rows))
    return [{**good(i), "uscc": codes[i - 1]} for i in (1, 2, 3)]


IDS = ["11010519491231002X", "110105194912310021", "44030019900101123X"]


def _ids() -> list[str]:
    from quality.checksums import citizen_id_check_char

    return [i[:17] + citizen_id_check_char(i[:17]) for i in IDS]


@case
def csv_lowercase_x_undeclared(folder: Path) -> list[Row]:
    ids = _ids()
    shown = [ids[0].lower(), ids[1], ids[2]]
    rows = [[*line(i), shown[i - 1]] for i in range(1, 4)]
    write(folder / "data.csv", csv_text([*HEADER, "身份证号"], rows))
    return [{**good(i), "id_no": ids[i - 1]} for i in (2, 3)]


@case
def csv_lowercase_x_declared(folder: Path) -> list[Row]:
    ids = _ids()
    shown = [ids[0].lower(), "１１０１０５ " + ids[1][6:], ids[2]]
    rows = [[*line(i), shown[i - 1]] for i in range(1, 4)]
    write(folder / "data.csv", csv_text([*HEADER, "身份证号"], rows))
    return [{**good(i), "id_no": ids[i - 1]} for i in (1, 2, 3)]


@case
def csv_time_zones(folder: Path) -> list[Row]:
    """One instant, Beijing 10:00, written four ways."""
    stamps = [
        "2026-01-01T10:00:00+08:00",
        "2026-01-01T02:00:00Z",
        "2026-01-01 10:00:00",
        "2026-01-01T03:00:00+01:00",
    ]
    rows = [line(i, at=stamps[i - 1]) for i in range(1, 5)]
    write(folder / "data.csv", csv_text(HEADER, rows))
    return [good(i) for i in range(1, 5)]


@case
def csv_nanoseconds(folder: Path) -> list[Row]:
    rows = [line(i, at="2026-01-01 10:00:00.123456789") for i in range(1, 4)]
    write(folder / "data.csv", csv_text(HEADER, rows))
    return [good(i, at="2026-01-01T10:00:00.123456") for i in range(1, 4)]


@case
def csv_duplicate_keys_across_files(folder: Path) -> list[Row]:
    write(folder / "a_20261101.csv", csv_text(HEADER, [line(i) for i in range(1, 6)]))
    later = [line(i) for i in (4, 5, 6, 7)]
    later[0][2] = "40.5"
    write(folder / "b_20261102.csv", csv_text(HEADER, later))
    return [good(i) for i in (1, 2, 3, 6, 7)]


@case
def csv_duplicate_keys_latest_file_wins(folder: Path) -> list[Row]:
    write(folder / "a_20261101.csv", csv_text(HEADER, [line(i) for i in range(1, 6)]))
    later = [line(i) for i in (4, 5, 6, 7)]
    later[0][2] = "40.5"
    write(folder / "b_20261102.csv", csv_text(HEADER, later))
    return [good(1), good(2), good(3), {**good(4), "amount": 40.5}, good(5), good(6), good(7)]


@case
def csv_duplicate_keys_within_latest_file(folder: Path) -> list[Row]:
    """latest_file_wins cannot choose between two copies inside the latest file: all are quarantined."""
    write(folder / "a_20261101.csv", csv_text(HEADER, [line(i) for i in range(1, 4)]))
    write(folder / "b_20261102.csv", csv_text(HEADER, [line(3), line(3), line(4)]))
    return [good(1), good(2), good(4)]


@case
def csv_identical_files(folder: Path) -> list[Row]:
    text = csv_text(HEADER, [line(i) for i in range(1, 6)])
    write(folder / "residents_20261101.csv", text)
    write(folder / "residents_20261101_copy.csv", text)
    return [good(i) for i in range(1, 6)]


# ---- Parquet ------------------------------------------------------------------------------


def _pq_base(n: int) -> dict[str, Any]:
    import pyarrow as pa

    return {
        "编号": pa.array([code(i) for i in range(1, n + 1)]),
        "名称": pa.array([f"{SIMPLIFIED[i % 10]}{i}" for i in range(1, n + 1)]),
        "金额": pa.array([i + 0.5 for i in range(1, n + 1)]),
    }


@case
def parquet_tz_aware(folder: Path) -> list[Row]:
    import pyarrow as pa

    utc = dt.datetime(2026, 1, 1, 2, 0, tzinfo=dt.UTC)
    parquet(
        folder / "data.parquet", {**_pq_base(3), "时间": pa.array([utc] * 3, pa.timestamp("us", tz="UTC"))}
    )
    return [good(i) for i in range(1, 4)]


@case
def parquet_nanoseconds(folder: Path) -> list[Row]:
    import pyarrow as pa

    ns = int(dt.datetime(2026, 1, 1, 10, 0).replace(tzinfo=dt.UTC).timestamp()) * 10**9 + 123456789
    parquet(folder / "data.parquet", {**_pq_base(3), "时间": pa.array([ns] * 3, pa.timestamp("ns"))})
    return [good(i, at="2026-01-01T10:00:00.123456") for i in range(1, 4)]


@case
def parquet_dictionary_strings(folder: Path) -> list[Row]:
    import pyarrow as pa

    cols = _pq_base(4)
    cols["名称"] = pa.array(["王伟", "李娜", "王伟", "李娜"]).dictionary_encode()
    cols["时间"] = pa.array([dt.datetime(2026, 1, 1, 10)] * 4, pa.timestamp("us"))
    parquet(folder / "data.parquet", cols)
    return [{**good(i), "name": ["王伟", "李娜"][(i - 1) % 2]} for i in range(1, 5)]


@case
def parquet_nan_infinity(folder: Path) -> list[Row]:
    import pyarrow as pa

    cols = _pq_base(4)
    cols["金额"] = pa.array([1.5, float("nan"), float("inf"), 4.5])
    cols["时间"] = pa.array([dt.datetime(2026, 1, 1, 10)] * 4, pa.timestamp("us"))
    parquet(folder / "data.parquet", cols)
    return [good(1), good(4)]


@case
def parquet_not_parquet(folder: Path) -> list[Row]:
    import pyarrow as pa

    cols = {**_pq_base(3), "时间": pa.array([dt.datetime(2026, 1, 1, 10)] * 3, pa.timestamp("us"))}
    parquet(folder / "a.parquet", cols)
    (folder / "b.parquet").write_bytes(b"PAR1 this is not really parquet")
    return [good(i) for i in range(1, 4)]


# ---- xlsx (Excel / WPS) -------------------------------------------------------------------


def _xrows(n: int) -> list[list[Any]]:
    return [
        [code(i), f"{SIMPLIFIED[i % 10]}{i}", i + 0.5, dt.datetime(2026, 1, 1, 10)] for i in range(1, n + 1)
    ]


@case
def xlsx_clean(folder: Path) -> list[Row]:
    xlsx(folder / "data.xlsx", [("Sheet1", [HEADER, *_xrows(5)], "visible")])
    return [good(i) for i in range(1, 6)]


@case
def xlsx_formula_without_cached_value(folder: Path) -> list[Row]:
    rows = _xrows(4)
    rows[2][2] = "=1+2.5"  # openpyxl writes the formula and no cached result, like a script-made workbook
    xlsx(folder / "data.xlsx", [("Sheet1", [HEADER, *rows], "visible")])
    return [good(i) for i in (1, 2, 4)]


@case
def xlsx_hidden_first_sheet(folder: Path) -> list[Row]:
    config = [["参数", "值"], ["版本", "3.1"], ["模板", "户籍导出"]]
    xlsx(folder / "data.xlsx", [("配置", config, "hidden"), ("数据", [HEADER, *_xrows(5)], "visible")])
    return [good(i) for i in range(1, 6)]


@case
def xlsx_two_row_header(folder: Path) -> list[Row]:
    """基本信息 over 编号/名称 and 交易 over 金额/时间, merged cells, as WPS exports them."""
    top = ["基本信息", None, "交易", None]
    xlsx(folder / "data.xlsx", [("Sheet1", [top, HEADER, *_xrows(5)], "visible")], merges=["A1:B1", "C1:D1"])
    return [good(i) for i in range(1, 6)]


@case
def xlsx_title_row(folder: Path) -> list[Row]:
    title = ["2026年11月户籍人口信息表", None, None, None]
    xlsx(folder / "data.xlsx", [("Sheet1", [title, HEADER, *_xrows(5)], "visible")], merges=["A1:D1"])
    return [good(i) for i in range(1, 6)]


@case
def xlsx_not_a_zip(folder: Path) -> list[Row]:
    xlsx(folder / "a.xlsx", [("Sheet1", [HEADER, *_xrows(3)], "visible")])
    write(folder / "b.xlsx", csv_text(HEADER, [line(9)]))  # a CSV saved with the .xlsx name
    return [good(i) for i in range(1, 4)]


# ---- JSON lines ---------------------------------------------------------------------------


def _jl(rows: Sequence[Row]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)


def _jrow(i: int, at: str = AT) -> Row:
    return {"编号": code(i), "名称": f"{SIMPLIFIED[i % 10]}{i}", "金额": i + 0.5, "时间": at}


@case
def jsonl_bad_line(folder: Path) -> list[Row]:
    text = _jl([_jrow(i) for i in range(1, 6)]).splitlines(keepends=True)
    text[2] = '{"编号": "C0003", "名称": \n'
    write(folder / "data.jsonl", "".join(text))
    return [good(i) for i in (1, 2, 4, 5)]


@case
def jsonl_time_zones(folder: Path) -> list[Row]:
    stamps = ["2026-01-01T10:00:00+08:00", "2026-01-01T02:00:00+00:00", "2026-01-01T10:00:00"]
    write(folder / "data.jsonl", _jl([_jrow(i, stamps[i - 1]) for i in range(1, 4)]))
    return [good(i) for i in range(1, 4)]


@case
def jsonl_empty_file_in_drop(folder: Path) -> list[Row]:
    write(folder / "a.jsonl", _jl([_jrow(i) for i in range(1, 4)]))
    (folder / "b.jsonl").write_bytes(b"")
    return [good(i) for i in range(1, 4)]


@case
def jsonl_nan(folder: Path) -> list[Row]:
    rows = [_jrow(i) for i in range(1, 4)]
    text = _jl(rows).replace('"金额": 2.5', '"金额": NaN')
    write(folder / "data.jsonl", text)
    return [good(1), good(3)]


def build(out: Path, names: Sequence[str] | None = None) -> dict[str, list[Row]]:
    """Write every case's files under ``out/<case>/``; returns the expected published rows per case."""
    expected = {}
    for name in names or list(CASES):
        folder = out / name
        folder.mkdir(parents=True, exist_ok=True)
        expected[name] = CASES[name](folder)
    return expected


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "var/bad-corpus")
    for name, rows in build(target).items():
        print(f"{name}: {len(rows)} good row(s)")
