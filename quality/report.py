"""A self-contained HTML quality report per dataset (in the spirit of GX Data Docs).

It reads only stored run records, so it needs neither Great Expectations nor the data: each
run is a dict with ``run_id``, a time (``finished_at`` / ``started_at`` / ``time``), optional
counts, and the stored :meth:`ValidationOutcome.to_json` dict, either under ``outcome`` /
``quality`` or merged into the run dict itself, with optional ``findings`` (file-level
problems: ``{source, row, rule, message}``) and ``notes`` (``{source, message}``). Every value
is HTML-escaped.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

MAX_RUNS = 20
MAX_SAMPLE_ROWS = 20
#: file-level findings (refused files, missing declared columns) shown per run
MAX_FINDINGS = 100

_CSS = """
body{font-family:-apple-system,"Segoe UI","PingFang SC","Microsoft YaHei","Noto Sans CJK SC",sans-serif;
margin:0;background:#f5f6f8;color:#222}
header{background:#1f3b57;color:#fff;padding:16px 24px}
header h1{margin:0;font-size:22px} header p{margin:4px 0 0;opacity:.85}
main{padding:16px 24px;max-width:1200px}
section{background:#fff;border:1px solid #dde1e6;border-radius:6px;margin:16px 0;padding:12px 16px}
h2{font-size:18px;margin:4px 0 8px} h3{font-size:15px;margin:12px 0 6px}
table{border-collapse:collapse;width:100%;font-size:13px;margin:6px 0}
th,td{border:1px solid #e1e4e8;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f0f2f5}
.ok{color:#1a7f37;font-weight:600} .fail{color:#cf222e;font-weight:600}
.badge{display:inline-block;border-radius:10px;padding:1px 8px;font-size:12px;color:#fff}
.badge.ok{background:#1a7f37;color:#fff} .badge.fail{background:#cf222e;color:#fff}
code{font-size:12px;background:#f6f8fa;padding:1px 3px;border-radius:3px;word-break:break-all}
.muted{color:#666}
"""


def render_report(dataset_code: str, dataset_name: str, runs: list[dict[str, Any]]) -> str:
    """Render the quality report of one dataset over ``runs`` (newest first) as one HTML page."""
    shown = runs[:MAX_RUNS]
    title = f"{dataset_name} ({dataset_code}) — 数据质量报告 / quality report"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="zh-CN"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>",
        f"<header><h1>{_e(dataset_name)}</h1><p>信息资源代码 {_e(dataset_code)} · "
        f"{len(shown)} run(s) shown</p></header><main>",
        _runs_table(shown),
    ]
    parts.extend(_run_section(run) for run in shown)
    if not shown:
        parts.append('<section><p class="muted">No validation runs yet.</p></section>')
    parts.append("</main></body></html>")
    return "\n".join(parts)


def _outcome(run: Mapping[str, Any]) -> Mapping[str, Any]:
    for key in ("outcome", "quality", "quality_result", "validation"):
        value = run.get(key)
        if isinstance(value, Mapping):
            return value
    return run


def _time(run: Mapping[str, Any]) -> Any:
    for key in ("finished_at", "started_at", "run_time", "time"):
        if run.get(key) is not None:
            return run[key]
    return ""


def _count(run: Mapping[str, Any], key: str) -> Any:
    value = run.get(key)
    return _outcome(run).get(key) if value is None else value


def _status(success: Any) -> str:
    if success is None:
        return '<span class="muted">–</span>'
    cls, text = ("ok", "passed") if success else ("fail", "failed")
    return f'<span class="badge {cls}">{text}</span>'


def _runs_table(runs: Sequence[Mapping[str, Any]]) -> str:
    rows = []
    for run in runs:
        out = _outcome(run)
        exps = out.get("expectations") or []
        passed = sum(1 for x in exps if x.get("success"))
        rid = run.get("run_id", "")
        rows.append(
            f'<tr><td><a href="#run-{_e(rid)}">{_e(rid)}</a></td><td>{_e(_time(run))}</td>'
            f"<td>{_status(out.get('success'))}</td><td>{_e(_count(run, 'row_count'))}</td>"
            f"<td>{_e(_count(run, 'bad_row_count'))}</td><td>{passed} / {len(exps)}</td></tr>"
        )
    return (
        "<section><h2>Runs 运行</h2><table><tr><th>run</th><th>time</th><th>status</th>"
        "<th>rows</th><th>bad rows</th><th>expectations passed</th></tr>"
        + "".join(rows)
        + "</table></section>"
    )


def _run_section(run: Mapping[str, Any]) -> str:
    out = _outcome(run)
    rid = run.get("run_id", "")
    samples = {s.get("row"): s.get("violations") or [] for s in out.get("sample_violations") or []}
    html = [
        f'<section id="run-{_e(rid)}"><h2>Run {_e(rid)} {_status(out.get("success"))}</h2>',
        f'<p class="muted">{_e(_time(run))} · suite {_e(out.get("suite_name", ""))} · '
        f"{_e(_count(run, 'row_count'))} rows, {_e(_count(run, 'bad_row_count'))} bad rows, "
        f"{_e(out.get('violation_count', ''))} violations</p>",
    ]
    findings = out.get("findings") or []
    if findings:
        html.append(
            "<h3>File findings 文件问题</h3><table><tr><th>file</th><th>row</th><th>rule</th>"
            "<th>message</th></tr>"
        )
        for f in findings[:MAX_FINDINGS]:
            html.append(
                f'<tr><td>{_e(f.get("source"))}</td><td>{_e(f.get("row"))}</td>'
                f'<td class="fail">{_e(f.get("rule"))}</td><td>{_e(f.get("message"))}</td></tr>'
            )
        html.append("</table>")
    notes = out.get("notes") or []
    if notes:
        html.append("<h3>File notes 文件说明</h3><ul>")
        html.extend(f"<li>{_e(n.get('message'))}</li>" for n in notes[:MAX_FINDINGS])
        html.append("</ul>")
    checks = out.get("dataset_checks") or {}
    if checks:
        html.append("<h3>Dataset checks</h3><table><tr><th>check</th><th>status</th><th>details</th></tr>")
        for name, check in checks.items():
            details = {k: v for k, v in check.items() if k not in ("success", "check")}
            html.append(
                f"<tr><td>{_e(name)}</td><td>{_status(check.get('success'))}</td>"
                f"<td><code>{_e(_compact(details))}</code></td></tr>"
            )
        html.append("</table>")
    html.append(
        "<h3>Expectations</h3><table><tr><th>status</th><th>expectation</th><th>column</th>"
        "<th>rule</th><th>unexpected</th><th>%</th><th>parameters</th></tr>"
    )
    exps = out.get("expectations") or []
    for x in exps:
        pct = x.get("unexpected_percent")
        html.append(
            f"<tr><td>{_status(x.get('success'))}</td><td><code>{_e(x.get('expectation_type'))}</code></td>"
            f"<td>{_e(x.get('column') or '')}</td><td>{_e(x.get('rule', ''))}</td>"
            f"<td>{_e(x.get('unexpected_count', ''))}</td>"
            f"<td>{_e('' if pct is None else f'{float(pct):.2f}')}</td>"
            f"<td><code>{_e(_compact(x.get('details') or {}))}</code></td></tr>"
        )
    html.append("</table>")
    for x in exps:
        rows = (x.get("sample_rows") or [])[:MAX_SAMPLE_ROWS]
        if x.get("success") or not rows:
            continue
        html.append(
            f"<h3>{_e(x.get('expectation_type'))} on {_e(x.get('column') or '')}: "
            f"sample bad rows ({len(rows)} of {_e(x.get('unexpected_count', ''))})</h3>"
            "<table><tr><th>row</th><th>reasons</th></tr>"
        )
        for row in rows:
            reasons = samples.get(row) or []
            text = "<br>".join(_e(r.get("message", "")) for r in reasons)
            html.append(f"<tr><td>{_e(row)}</td><td>{text}</td></tr>")
        html.append("</table>")
    html.append("</section>")
    return "\n".join(html)


def _compact(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str, sort_keys=True)
    return text if len(text) <= 300 else text[:299] + "…"


def _e(value: Any) -> str:
    return escape("" if value is None else str(value), quote=True)
