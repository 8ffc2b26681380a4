"""Error code -> HTTP status: the one place where the API decides how a refusal is answered."""

from __future__ import annotations

from typing import Any

from catalog.errors import HubError

#: the HTTP status of each stable code (``catalog.errors.MESSAGES``); a code missing here is a
#: bug, answered 500 (``tests/catalog/access/test_parties.py`` checks every code has one)
HTTP_STATUS: dict[str, int] = {
    "already_decided": 409,
    "already_pending": 409,
    "app_disabled": 403,
    "app_name_taken": 409,
    "app_not_found": 404,
    "application_not_found": 404,
    "application_pending": 403,
    "application_refused": 403,
    "audit_unavailable": 503,
    "bad_body": 400,
    "bad_cursor": 400,
    "bad_date": 400,
    "bad_document": 400,
    "bad_quarter": 400,
    "grant_too_long": 400,
    "second_approval_required": 403,
    "rate_limit_too_high": 400,
    "bad_record_key": 400,
    "directory_invalid": 400,
    "submission_pending": 409,
    "submission_not_found": 404,
    "submission_decided": 409,
    "own_submission": 403,
    "certificate_type_foreign": 403,
    "dataset_code_clash": 409,
    "text_required": 400,
    "text_too_long": 400,
    "field_not_granted": 403,
    "bad_answer": 400,
    "objection_not_found": 404,
    "already_answered": 409,
    "bad_filter": 400,
    "bad_rate_limit": 400,
    "bad_text": 400,
    "body_timeout": 408,
    "body_too_large": 413,
    "certificate_not_found": 404,
    "certificate_not_valid": 409,
    "clear_not_requested": 400,
    "copy_not_allowed": 400,
    "copy_needs_full_grant": 403,
    "dataset_not_found": 404,
    "department_not_found": 404,
    "fields_not_requested": 400,
    "fields_required": 400,
    "filter_not_allowed": 400,
    "filter_not_granted": 400,
    "filter_required": 400,
    "forbidden_role": 403,
    "grant_expired": 403,
    "grant_not_active": 409,
    "grant_not_found": 404,
    "grant_revoked": 403,
    "hub_wide_role": 400,
    "incomplete_key": 400,
    "invalid_token": 401,
    "keys_unavailable": 503,
    "login_busy": 429,
    "method_not_allowed": 405,
    "metrics_forbidden": 403,
    "no_grant": 403,
    "no_subject": 400,
    "not_authenticated": 401,
    "not_open": 403,  # recorded as an audit reason; the caller sees dataset_not_found
    "not_sensitive": 400,
    "not_shared": 403,
    "nul_character": 400,
    "purpose_invalid": 400,
    "purpose_missing": 400,
    "purpose_required": 400,
    "rate_limit_unavailable": 503,
    "rate_limited": 429,
    "anomaly_throttled": 429,
    "recipient_not_found": 404,
    "profile_days": 400,
    "share_not_found": 404,
    "version_not_found": 404,
    "sharing_file_expired": 403,
    "sharing_store_unavailable": 503,
    "sharing_links_unavailable": 503,
    "bad_timestamp": 400,
    "bad_subscription": 400,
    "subscription_not_found": 404,
    "sso_subject_taken": 409,
    "anomaly_not_found": 404,
    "anomaly_cleared": 409,
    "anomaly_reason_required": 400,
    "reason_required": 400,
    "roles_required": 400,
    "route_not_found": 404,
    "staff_exists": 409,
    "staff_not_found": 404,
    "token_expired": 401,
    "too_many_parameters": 400,
    "unknown_field": 400,
    "unknown_parameter": 400,
    "unknown_role": 400,
    "weak_password": 400,
    "wrong_department": 403,
    "wrong_party": 403,
}


class ApiError(HubError):
    """An answer of the HTTP layer itself: its own status (a parser's 404/405/413, a 401 with
    its ``WWW-Authenticate``) and headers to send with it."""

    def __init__(self, error_code: str, status: int, /, **params: Any) -> None:
        super().__init__(error_code, **params)
        self.status = status
        self.headers: dict[str, str] = {}


def decision_of(status: int) -> str:
    """The access decision a response status stands for, as the audit log records it and the
    metrics count it: ``allow`` below 400, ``deny`` otherwise."""
    return "allow" if status < 400 else "deny"


def status_of(exc: HubError) -> int:
    """The HTTP status for ``exc``."""
    if isinstance(exc, ApiError):
        return exc.status
    return HTTP_STATUS.get(exc.code, 500)


def headers_of(exc: HubError) -> dict[str, str]:
    return dict(exc.headers) if isinstance(exc, ApiError) else {}
