"""The parts behind the bad-input corpus, one by one: encoding evidence, the CSV quote guard,
header matching, normalisations, the time-zone rule, non-finite floats, checksum messages."""

from __future__ import annotations

import datetime as dt
import io

import pyarrow as pa
import pyarrow.csv as pa_csv
import pytest

from connectors.conform import cast_column, conform
from connectors.csv_guard import QuoteGuard, quotes_closed, scan
from connectors.drift import compare_schema
from connectors.encoding import EncodingRefused, choose_encoding, detect_encoding
from connectors.headers import header_key, plan_header
from connectors.normalise import hint, normalise
from quality import checksums

GB_TEXT = "编号,姓名,地址\n" + "".join(f"{i},张伟{i},浙江省杭州市西湖区文三路{i}号\n" for i in range(40))
BIG5_TEXT = "編號,姓名,地址\n" + "".join(f"{i},陳大文{i},臺北市中正區重慶南路一段{i}號\n" for i in range(40))


@pytest.mark.parametrize(
    ("data", "codec"),
    [
        (GB_TEXT.encode("gbk"), "gb18030"),
        (BIG5_TEXT.encode("big5"), "big5"),
        (GB_TEXT.encode("utf-8"), "utf-8"),
        (GB_TEXT.encode("utf-16-le"), "utf-16-le"),
        (GB_TEXT.encode("utf-16"), "utf-16"),
        (b"\xef\xbb\xbf" + GB_TEXT.encode(), "utf-8-sig"),
        (b"a,b\n1,2\n", "utf-8"),
    ],
    ids=["gbk", "big5", "utf8", "utf16le-no-bom", "utf16-bom", "utf8-bom", "ascii"],
)
def test_encoding_is_detected_from_evidence(data: bytes, codec: str) -> None:
    assert detect_encoding(data, name="f.csv", complete=True).codec == codec


def test_big5_decodes_as_gb18030_without_error_but_is_not_taken_for_it() -> None:
    data = BIG5_TEXT.encode("big5")
    data.decode("gb18030")  # no error: why decoding alone proves nothing
    assert detect_encoding(data, name="f.csv", complete=True).codec == "big5"


def test_ambiguous_bytes_are_refused_with_the_hint() -> None:
    data = b"a,b\n1," + "陝除".encode("big5") + b"\n"  # 阿埃 in GB18030: both common
    with pytest.raises(EncodingRefused, match=r"f\.csv: cannot tell .*declare source\.encoding"):
        detect_encoding(data, name="f.csv", complete=True)


def test_utf8_with_one_bad_line_in_a_hundred_is_still_utf8() -> None:
    lines = [f"{i},张伟{i}".encode() for i in range(150)]
    lines[70] = b"70,\xff\xfe"
    assert detect_encoding(b"\n".join(lines), name="f.csv", complete=True).codec == "utf-8"


def test_declared_legacy_encoding_on_plain_utf8_is_refused() -> None:
    with pytest.raises(EncodingRefused, match="declared GB18030, but the file is UTF-8"):
        choose_encoding(GB_TEXT.encode(), name="f.csv", declared="gbk", complete=True)
    assert (
        choose_encoding(GB_TEXT.encode("gbk"), name="f.csv", declared="gbk", complete=True).codec == "gb18030"
    )


@pytest.mark.parametrize(
    "line",
    [
        b'a,"b",c',
        b'"a",b',
        b'a"b,"c',
        b'1,"x,2',
        b'1,"say ""hi""",3',
        b'"",""',
        b'a,"ab"cd,5',
        b'5" screen,1',
    ],
)
def test_the_guard_follows_quoting_as_pyarrow_does(line: bytes) -> None:
    """A line the guard calls closed parses as one record; one it calls open makes pyarrow read on."""
    still_open, _, _ = scan(line, False)
    parsed = pa_csv.read_csv(
        io.BytesIO(b"a,b,c,d\n" + line + b"\nz,z,z,z\n"),
        parse_options=pa_csv.ParseOptions(newlines_in_values=True, invalid_row_handler=lambda r: "skip"),
        read_options=pa_csv.ReadOptions(autogenerate_column_names=False),
    )
    last = [parsed.column(c)[-1].as_py() for c in parsed.column_names] if parsed.num_rows else []
    assert still_open == (last != ["z", "z", "z", "z"])
    if quotes_closed(line):
        assert not still_open


def test_guard_rejects_an_unclosed_quote_and_keeps_a_multiline_value() -> None:
    rejects: list = []
    guard = QuoteGuard(name="f.csv", header=["a", "b", "c"], first_line=2, rejects=rejects, max_row_bytes=100)
    out = guard.feed(b'1,"two\nlines",3\n4,"x,5\n6,7,8\n') + guard.finish()
    assert out == b'1,"two\nlines",3\n\n6,7,8\n'  # the bad line becomes empty: line numbers stay
    (reject,) = rejects
    assert reject.row == 4 and reject.reason.startswith(
        "line 4: unclosed quote in column 2 (b): line 5 is a row"
    )


def test_guard_rejects_rows_over_the_limit() -> None:
    rejects: list = []
    guard = QuoteGuard(name="f.csv", header=["a"], first_line=2, rejects=rejects, max_row_bytes=10)
    assert guard.feed(b"short\n" + b"x" * 20 + b"\nok\n") == b"short\n\nok\n"
    assert rejects[0].reason == "line 3: the row is 0.0 MB, over the 0 MB a row may take"


def test_headers_match_after_nfkc_and_spaces() -> None:
    assert header_key("名称（全称） ") == header_key("名称(全称)")
    assert header_key("联系\u3000电话\u200b") == header_key("联系电话")
    plan = plan_header(
        [["编号 ", "名称（全称）", "备注"]], {"code": "编号", "name": "名称(全称)"}, file="f.csv"
    )
    assert plan.names == ["code", "name", "备注"] and plan.unmatched == ["备注"] and plan.missing == []


def test_normalisations_and_their_hints() -> None:
    col = pa.array(["１,２３４.５", "12,000", "1,2,3", None, " 1101 05x "])
    assert normalise(col, ["nfkc", "thousands"]).to_pylist() == [
        "1234.5",
        "12000",
        "1,2,3",
        None,
        " 1101 05x ",
    ]
    assert normalise(col, ["strip_spaces", "upper"]).to_pylist()[-1] == "110105X"
    assert "thousands separators" in (hint("1,234.50") or "")
    assert "full-width character '３'" in (hint("３4") or "")
    assert hint("abc") is None


def test_credit_code_with_a_full_width_digit_is_a_message_not_a_crash() -> None:
    code = "91330106MA27XY007" + checksums.credit_code_check_char("91330106MA27XY007")
    wide = code[:2] + "３" + code[3:]
    assert checksums.credit_code_problem(wide) == (
        "has the full-width character '３' at position 3 "
        "(declare normalize: [nfkc] on the field to accept it)"
    )
    assert checksums.citizen_id_problem("11010519491231002x").startswith("ends in a lower-case x")
    assert checksums.citizen_id_problem("１1010519491231002X").startswith("has the full-width character")


def test_the_time_zone_rule_for_typed_and_text_timestamps() -> None:
    target = pa.timestamp("us")
    utc = pa.array([dt.datetime(2026, 1, 1, 2, tzinfo=dt.UTC)], pa.timestamp("us", tz="UTC"))
    assert cast_column(utc, target)[0].to_pylist() == [dt.datetime(2026, 1, 1, 10)]
    ns = pa.array([1767232800123456789], pa.timestamp("ns"))
    assert cast_column(ns, target)[0].to_pylist() == [dt.datetime(2026, 1, 1, 2, 0, 0, 123456)]
    text = pa.array(["2026-01-01T02:00:00Z", "2026-01-01T10:00:00+08:00", "2026-01-01 10:00:00"])
    out, bad = cast_column(text, target)
    assert bad == {} and set(out.to_pylist()) == {dt.datetime(2026, 1, 1, 10)}


def test_non_finite_floats_are_rejects_and_dictionary_strings_are_strings() -> None:
    out, bad = cast_column(pa.array([1.5, float("nan"), float("-inf")]), pa.float64())
    assert out.to_pylist() == [1.5, None, None] and bad == {
        1: "not a finite number",
        2: "not a finite number",
    }
    words = pa.array(["a", "b", "a"]).dictionary_encode()
    assert compare_schema({"w": words.type}, pa.schema([("w", pa.string())])).empty
    batch = pa.RecordBatch.from_arrays([words], names=["w"])
    assert conform(batch, pa.schema([("w", pa.string())])).batch.column("w").to_pylist() == ["a", "b", "a"]


def test_directory_options_for_bad_input_are_validated() -> None:
    from pydantic import ValidationError

    from catalog.directory.model import FieldSpec, QualitySpec

    assert FieldSpec(name="amount", label="金额", type="float", normalize=["thousands"]).normalize == [
        "thousands"
    ]
    with pytest.raises(ValidationError, match="normalize thousands applies to numbers, not string"):
        FieldSpec(name="code", label="编号", normalize=["thousands"])
    with pytest.raises(ValidationError):
        FieldSpec(name="code", label="编号", normalize=["lowercase"])
    with pytest.raises(ValidationError):
        QualitySpec.model_validate({"duplicate_keys": "first_wins"})
    assert QualitySpec.model_validate({}).missing_columns.value == "block"


def test_text_timestamps_with_offsets_are_converted_at_once() -> None:
    stamps = [f"2026-01-01T02:00:{i % 60:02d}Z" for i in range(50_000)]
    text = pa.array([*stamps, "2026-01-01T10:00:00.123456789-05:30", "2026-01-01 10:00:00", "bad"])
    out, bad = cast_column(text, pa.timestamp("us"))
    assert out[0].as_py() == dt.datetime(2026, 1, 1, 10, 0, 0)
    assert out[-3:].to_pylist() == [
        dt.datetime(2026, 1, 1, 23, 30, 0, 123456),
        dt.datetime(2026, 1, 1, 10),
        None,
    ]
    assert bad == {50_002: "not a valid timestamp"}
