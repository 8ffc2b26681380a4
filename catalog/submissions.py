"""Directory review before publication (目录审核 then 发布).

A department's publisher submits its directory file (edited in the portal, uploaded, or given
to the CLI); the hub's data authority — a hub-wide ``admin`` — reviews it and approves it, which
runs the one publish path (:func:`catalog.publishing.publish`: a changed dataset gets a new
version), or returns it with a reason. States: ``pending`` → ``approved`` | ``returned`` |
``withdrawn``. Rules:

* a submission must validate (the loader's problems, with line and field, are the refusal);
* a department submits only its own directory: the file's department must be the submitter's
  and no dataset in it may belong to another department;
* one pending submission per department at a time (withdraw it to submit another);
* **four eyes:** nobody approves or returns a submission they made;
* approval re-validates the stored text and publishes it; two reviewers approving at once
  publish once (a conditional update from ``pending`` to ``publishing`` decides who). A failed
  publish puts it back to ``pending``; a process that dies while publishing leaves it in
  ``publishing``, which a reviewer can return once it has been publishing for longer than
  :data:`STALE_PUBLISHING` (not before: a return must not race a publish that is still going
  on). Publishing is idempotent: the department submits again and unchanged datasets stay
  unchanged.

The operator's CLI (``sharehub catalog publish``) keeps publishing at once and records an
approved submission with what it changed (:func:`record_direct_publish`), so the review history
holds every directory file that was ever published, however it came in.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from catalog import publishing
from catalog.access.staff import StaffUser
from catalog.clock import as_utc, utc_now
from catalog.db import tables
from catalog.directory import store
from catalog.directory.grades import GradePolicy
from catalog.directory.loader import (
    DirectoryFileError,
    DirectoryProblem,
    load_directory_text,
    read_directory_text,
)
from catalog.directory.model import DirectoryFile, dump_dataset
from catalog.directory.store import PublishChange
from catalog.errors import HubError

_S = tables.directory_submissions
MAX_TEXT = 1_000_000  # characters of one directory file
#: how long an approval may be publishing before a reviewer may return it as abandoned
STALE_PUBLISHING = dt.timedelta(minutes=15)


@dataclass(frozen=True)
class DirectoryCheck:
    """A directory text checked: the parsed file, or the problems (line, field, message)."""

    directory: DirectoryFile | None
    problems: list[DirectoryProblem]


class DirectoryInvalid(HubError):
    """``directory_invalid`` with every problem (line, field, message) for the editor to show
    beside its line; the message names the first few."""

    def __init__(self, problems: list[DirectoryProblem]) -> None:
        shown = "; ".join(str(p) for p in problems[:5])
        if len(problems) > 5:
            shown += f"; and {len(problems) - 5} more"
        super().__init__("directory_invalid", problems=shown)
        self.problems = problems


@dataclass(frozen=True)
class DatasetDiff:
    """What publishing the file would do to one dataset."""

    code: str
    name: str
    #: new | changed | unchanged | absent: published but not in the file — publishing leaves it
    #: as it is (its current version stays published and keeps syncing); nothing is removed
    action: str
    changes: list[str]


@dataclass(frozen=True)
class Submission:
    id: int
    department_code: str
    content: str
    source_name: str
    content_sha256: str
    status: str
    submitted_by: str
    submitted_at: dt.datetime
    decided_by: str | None
    decided_at: dt.datetime | None
    reason: str | None
    changes: list[dict[str, Any]] | None


def check_text(text: str, *, source_name: str, policy: GradePolicy | None = None) -> DirectoryCheck:
    """Parse and validate a directory file's text (the grade policy included)."""
    if len(text) > MAX_TEXT:
        return DirectoryCheck(
            None, [DirectoryProblem(source_name, None, "", f"longer than {MAX_TEXT} characters")]
        )
    try:
        return DirectoryCheck(load_directory_text(text, source_name, policy=policy), [])
    except DirectoryFileError as exc:
        return DirectoryCheck(None, exc.problems)


def preview(engine: sa.Engine, directory: DirectoryFile) -> list[DatasetDiff]:
    """The diff of the file against what is published, dataset by dataset."""
    out = []
    in_file = set()
    for ds in directory.datasets:
        in_file.add(ds.code)
        try:
            current = store.get_dataset(engine, ds.code)
        except KeyError:
            out.append(DatasetDiff(ds.code, ds.name, "new", []))
            continue
        changes = store.diff_specs(dump_dataset(current.spec), dump_dataset(ds))
        out.append(DatasetDiff(ds.code, ds.name, "changed" if changes else "unchanged", changes))
    d = tables.datasets
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(d.c.code, d.c.name)
            .where(d.c.department_code == directory.department.code)
            .order_by(d.c.code)
        ).all()
    out += [DatasetDiff(r.code, r.name, "absent", []) for r in rows if r.code not in in_file]
    return out


def _check_ownership(engine: sa.Engine, directory: DirectoryFile, department_code: str) -> None:
    if directory.department.code != department_code:
        raise HubError("wrong_department", code=directory.department.code)
    d = tables.datasets
    codes = [ds.code for ds in directory.datasets]
    with engine.connect() as conn:
        foreign = conn.execute(
            sa.select(d.c.code).where(d.c.code.in_(codes), d.c.department_code != department_code)
        ).first()
        ct = tables.certificate_types
        taken = conn.execute(
            sa.select(ct.c.code, ct.c.department_code).where(
                ct.c.code.in_([c.code for c in directory.certificate_types]),
                ct.c.department_code != department_code,
            )
        ).first()
    if foreign is not None:
        raise HubError("wrong_department", code=foreign.code)
    if taken is not None:  # publishing would move it: another department's certificates, our data
        raise HubError("certificate_type_foreign", code=taken.code, owner=taken.department_code)
    clashes = publishing.table_clashes(engine, directory)
    if clashes:
        c = clashes[0]
        raise HubError("dataset_code_clash", code=c.code, other=c.other, table=c.table)


def _submission(row: Any) -> Submission:
    return Submission(
        id=row.id,
        department_code=row.department_code,
        content=row.content,
        source_name=row.source_name,
        content_sha256=row.content_sha256,
        status=row.status,
        submitted_by=row.submitted_by,
        submitted_at=as_utc(row.submitted_at),
        decided_by=row.decided_by,
        decided_at=as_utc(row.decided_at) if row.decided_at is not None else None,
        reason=row.reason,
        changes=row.changes,
    )


def _valid(text: str, source_name: str, policy: GradePolicy | None = None) -> DirectoryFile:
    checked = check_text(text, source_name=source_name, policy=policy)
    if checked.directory is None:
        raise DirectoryInvalid(checked.problems)
    return checked.directory


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def submit(
    engine: sa.Engine,
    *,
    department_code: str,
    content: str,
    source_name: str,
    submitted_by: str,
    at: dt.datetime | None = None,
    policy: GradePolicy | None = None,
) -> Submission:
    """Store a valid directory file of ``department_code`` for review. Errors:
    ``directory_invalid`` (400, a :class:`DirectoryInvalid` with every problem),
    ``wrong_department`` / ``certificate_type_foreign`` (403), ``dataset_code_clash`` (409),
    ``submission_pending`` (409)."""
    now = at or utc_now()
    directory = _valid(content, source_name, policy)
    _check_ownership(engine, directory, department_code)
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":  # one pending per department, whatever races
            conn.execute(
                sa.text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": "submit:" + department_code}
            )
        pending = conn.execute(
            sa.select(_S.c.id).where(_S.c.department_code == department_code, _S.c.status == "pending")
        ).first()
        if pending is not None:
            raise HubError("submission_pending", id=pending.id, code=department_code)
        result = conn.execute(
            _S.insert().values(
                department_code=department_code,
                content=content,
                source_name=source_name[:500],
                content_sha256=_sha256(content),
                status="pending",
                submitted_by=submitted_by,
                submitted_at=now,
            )
        )
        (new_id,) = result.inserted_primary_key or (None,)
        return _submission(conn.execute(sa.select(_S).where(_S.c.id == new_id)).one())


def _require(engine: sa.Engine, submission_id: int) -> Submission:
    s = get_submission(engine, submission_id)
    if s is None:
        raise HubError("submission_not_found", id=submission_id)
    return s


def _reviewer(s: Submission, by: StaffUser) -> None:
    if not (by.has("admin") and by.department_code is None):
        raise HubError("forbidden_role", role="admin")
    if by.username == s.submitted_by:
        raise HubError("own_submission", id=s.id)
    if s.status not in ("pending", "publishing"):
        raise HubError("submission_decided", id=s.id, status=s.status)


def _changes(changes: list[PublishChange]) -> list[dict[str, Any]]:
    return [{"code": c.code, "version": c.version, "action": c.action} for c in changes]


def approve(
    engine: sa.Engine,
    submission_id: int,
    *,
    by: StaffUser,
    at: dt.datetime | None = None,
    policy: GradePolicy | None = None,
) -> Submission:
    """Approve and publish. Errors: ``submission_not_found`` (404), ``forbidden_role`` (403: a
    hub-wide admin reviews), ``own_submission`` (403), ``submission_decided`` (409),
    ``directory_invalid`` (400), ``wrong_department``, ``certificate_type_foreign`` (403),
    ``dataset_code_clash`` (409): the stored text is checked again against the directory now."""
    now = at or utc_now()
    s = _require(engine, submission_id)
    _reviewer(s, by)
    directory = _valid(s.content, s.source_name, policy)
    _check_ownership(engine, directory, s.department_code)
    with engine.begin() as conn:  # claim it first: of two approvals, one publishes
        claimed = conn.execute(
            _S.update()
            .where(_S.c.id == submission_id, _S.c.status == "pending")
            .values(status="publishing", decided_by=by.username, decided_at=now)
        )
    if claimed.rowcount != 1:  # another reviewer decided it meanwhile
        now_status = getattr(get_submission(engine, submission_id), "status", "decided")
        raise HubError("submission_decided", id=submission_id, status=now_status)
    try:
        changes = publishing.publish(
            engine, directory, source_file=f"submission {s.id}: {s.source_name}", policy=policy
        )
    except Exception:
        with engine.begin() as conn:  # publishing failed: it is pending again
            conn.execute(
                _S.update()
                .where(_S.c.id == submission_id, _S.c.status == "publishing")
                .values(status="pending", decided_by=None, decided_at=None)
            )
        raise
    with engine.begin() as conn:  # published: say so, even over a return of it as abandoned
        conn.execute(
            _S.update()
            .where(_S.c.id == submission_id)
            .values(
                status="approved",
                decided_by=by.username,
                decided_at=now,
                reason=None,
                changes=_changes(changes),
            )
        )
    return _require(engine, submission_id)


def return_submission(
    engine: sa.Engine, submission_id: int, *, by: StaffUser, reason: str, at: dt.datetime | None = None
) -> Submission:
    """Return it to the department with a reason (required): a pending submission, or one left
    ``publishing`` for longer than :data:`STALE_PUBLISHING` (an approval whose process died).
    Same errors as :func:`approve`; ``submission_decided`` also while an approval publishes it."""
    now = at or utc_now()
    s = _require(engine, submission_id)
    _reviewer(s, by)
    if not reason.strip():
        raise HubError("reason_required")
    open_ = sa.or_(
        _S.c.status == "pending",
        sa.and_(_S.c.status == "publishing", _S.c.decided_at < now - STALE_PUBLISHING),
    )
    with engine.begin() as conn:
        done = conn.execute(
            _S.update()
            .where(_S.c.id == submission_id, open_)
            .values(status="returned", decided_by=by.username, decided_at=now, reason=reason.strip()[:2000])
        )
    if done.rowcount != 1:
        now_status = getattr(get_submission(engine, submission_id), "status", "decided")
        raise HubError("submission_decided", id=submission_id, status=now_status)
    return _require(engine, submission_id)


def withdraw(
    engine: sa.Engine, submission_id: int, *, by: StaffUser, at: dt.datetime | None = None
) -> Submission:
    """The department takes its pending submission back (a publisher of that department)."""
    now = at or utc_now()
    s = _require(engine, submission_id)
    if not by.covers(s.department_code):
        raise HubError("submission_not_found", id=submission_id)
    if not by.has("publisher"):
        raise HubError("forbidden_role", role="publisher")
    with engine.begin() as conn:
        done = conn.execute(
            _S.update()
            .where(_S.c.id == submission_id, _S.c.status == "pending")
            .values(status="withdrawn", decided_by=by.username, decided_at=now)
        )
    if done.rowcount != 1:
        raise HubError("submission_decided", id=submission_id, status=s.status)
    return _require(engine, submission_id)


def record_direct_publish(
    engine: sa.Engine,
    directory: DirectoryFile,
    content: str,
    *,
    source_name: str,
    by: str,
    changes: list[PublishChange],
) -> Submission:
    """The history entry of a directory file the operator published directly (the CLI): an
    approved submission, submitted and decided by ``by``, with what publishing changed."""
    now = utc_now()
    with engine.begin() as conn:
        result = conn.execute(
            _S.insert().values(
                department_code=directory.department.code,
                content=content,
                source_name=source_name[:500],
                content_sha256=_sha256(content),
                status="approved",
                submitted_by=by[:64],
                submitted_at=now,
                decided_by=by[:64],
                decided_at=now,
                reason="published directly by the operator",
                changes=_changes(changes),
            )
        )
        (new_id,) = result.inserted_primary_key or (None,)
        return _submission(conn.execute(sa.select(_S).where(_S.c.id == new_id)).one())


def publish_directly(
    engine: sa.Engine, path: Path, *, by: str, policy: GradePolicy | None = None
) -> list[PublishChange]:
    """The operator's publish (CLI, demo): validate, publish at once, and record it in the
    review history as an approved submission by ``by``. Raises the loader's
    ``DirectoryFileError``; ``ValueError`` when a dataset belongs to another department.

    It is recorded when it published a new dataset version, or when the file differs from the
    department's last approved one (the department row, its certificate types or a dataset
    order changed, or the file was published before reviews were recorded). Publishing the
    same file again adds nothing."""
    text = read_directory_text(path)  # read once: what is recorded is what was published
    directory = load_directory_text(text, str(path), policy=policy)
    changes = publishing.publish(engine, directory, source_file=path.name, policy=policy)
    if any(c.action != "unchanged" for c in changes) or _last_approved_sha(
        engine, directory.department.code
    ) != _sha256(text):
        record_direct_publish(engine, directory, text, source_name=path.name, by=by, changes=changes)
    return changes


def _last_approved_sha(engine: sa.Engine, department_code: str) -> str | None:
    with engine.connect() as conn:
        sha = conn.execute(
            sa.select(_S.c.content_sha256)
            .where(_S.c.department_code == department_code, _S.c.status == "approved")
            .order_by(_S.c.decided_at.desc(), _S.c.id.desc())
            .limit(1)
        ).scalar()
    return str(sha) if sha is not None else None


def get_submission(engine: sa.Engine, submission_id: int) -> Submission | None:
    with engine.connect() as conn:
        row = conn.execute(sa.select(_S).where(_S.c.id == submission_id)).first()
    return _submission(row) if row is not None else None


def list_submissions(
    engine: sa.Engine, *, department_code: str | None = None, status: str | None = None, limit: int = 200
) -> list[Submission]:
    """Newest first."""
    q = sa.select(_S).order_by(_S.c.submitted_at.desc(), _S.c.id.desc()).limit(limit)
    if department_code is not None:
        q = q.where(_S.c.department_code == department_code)
    if status is not None:
        q = q.where(_S.c.status == status)
    with engine.connect() as conn:
        return [_submission(r) for r in conn.execute(q)]


def published_text(engine: sa.Engine, department_code: str) -> str:
    """What the editor starts from: the department's last approved directory file, or — for a
    directory published before reviews were recorded — its published entries as YAML."""
    with engine.connect() as conn:
        row = conn.execute(
            sa.select(_S.c.content)
            .where(_S.c.department_code == department_code, _S.c.status == "approved")
            .order_by(_S.c.decided_at.desc(), _S.c.id.desc())
            .limit(1)
        ).first()
    if row is not None:
        return str(row.content)
    import yaml

    datasets = [d for d in store.list_datasets(engine) if d.department.code == department_code]
    if not datasets:
        return ""
    dept = datasets[0].department
    doc = {
        "department": {k: v for k, v in dept.model_dump(mode="json").items() if v not in (None, "")},
        "datasets": [dump_dataset(d.spec) for d in datasets],
    }
    return yaml.safe_dump(doc, allow_unicode=True, sort_keys=False, width=100)
