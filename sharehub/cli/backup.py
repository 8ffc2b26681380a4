"""``sharehub backup`` and ``sharehub restore``: the whole hub to a folder and back (容灾备份)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from sharehub.cli.common import console, err
from sharehub.cli.common import dump as _dump
from sharehub.settings import get_settings


def backup(
    dest: Annotated[Path, typer.Argument(help="a new or empty folder")],
    include_keys: Annotated[
        bool,
        typer.Option(
            "--include-keys",
            help="also copy the private signing and cursor keys (store the backup apart, encrypted)",
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Back up the hub: its database in one read snapshot, a local warehouse's files, optionally the keys."""
    from sharehub.backup import BackupError, take

    try:
        manifest = take(get_settings(), dest, include_keys=include_keys)
    except BackupError as exc:
        err.print(f"[red]backup failed[/red]: {escape(str(exc))}")
        raise typer.Exit(1) from None
    if as_json:
        _dump(_summary(manifest))
        return
    s = _summary(manifest)
    how = "copied" if s["lake"] == "local" else "checked in the bucket"
    console.print(
        f"backup written to {escape(str(dest))}: {s['tables']} tables, {s['rows']} rows, "
        f"{s['lake_tables']} lake tables ({s['lake_files']} files {how}), "
        f"audit head {s['audit_seq']}, keys {'included' if s['keys'] else 'not included'}"
    )
    if s["lake"] == "s3":
        state = s.get("versioning") or "unknown"
        console.print(
            f"the lake's files stay in the bucket (versioning: {state}); keep bucket versioning on "
            "so that the files this backup points to are never lost"
        )
    if not s["keys"]:
        console.print("the private keys are not in the backup: back up the keys folder separately")


def restore(
    src: Annotated[Path, typer.Argument(help="a folder written by `sharehub backup`")],
    check_only: Annotated[
        bool, typer.Option("--check", help="only check the backup's files against its manifest")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Restore a backup onto this (empty) hub, then verify counts, audit chain, signatures and the lake."""
    from sharehub import backup as bk

    try:
        if check_only:
            manifest = bk.check(src)
            console.print(f"{escape(str(src))}: every file matches its manifest ({manifest['created_at']})")
            return
        report = bk.restore(get_settings(), src)
    except bk.BackupError as exc:
        err.print(f"[red]restore failed[/red]: {escape(str(exc))}")
        raise typer.Exit(1) from None
    if as_json:
        _dump(report)
        return
    rows = sum(report["rows"].values())
    lake = report["lake"]
    console.print(
        f"restored {len(report['rows'])} tables ({rows} rows) and {len(lake)} lake tables; verified: "
        f"audit chain ({report['audit']['records']} records, head {report['audit']['head_seq']}), "
        f"{report['certificates']['signatures_verified']} certificate signatures, "
        "each lake table's current snapshot"
    )
    if report["serving_behind"]:
        console.print(
            "serving behind curated (a run was publishing during the backup; its next run repairs it): "
            + ", ".join(report["serving_behind"])
        )


def _summary(m: dict[str, Any]) -> dict[str, Any]:
    lake = m["lake"]
    return {
        "tables": len(m["tables"]),
        "rows": sum(t["rows"] for t in m["tables"]),
        "lake": lake["kind"],
        "lake_tables": len(lake["tables"]),
        "lake_files": sum(len(t["files"]) for t in lake["tables"]),
        "versioning": lake.get("versioning"),
        "audit_seq": (m.get("audit_head") or {}).get("seq", 0),
        "keys": bool(m.get("keys")),
        "revision": m["source"]["revision"],
    }
