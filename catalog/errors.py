"""The hub's error root: stable codes with English and Chinese messages (no HTTP here)."""

from __future__ import annotations

from typing import Any

#: code -> (English, Chinese). Codes are stable: clients branch on them, not on the text.
MESSAGES: dict[str, tuple[str, str]] = {
    "dataset_not_found": ("dataset {code} is not in the directory", "目录中没有信息资源 {code}"),
    "not_shared": ("dataset {code} is not shared (share type none)", "信息资源 {code} 不予共享"),
    "filter_not_allowed": (
        "filter on {field} is not allowed: only key fields and subject",
        "不允许按 {field} 查询：只能按主键或主体查询",
    ),
    "filter_not_granted": (
        "a lookup by key needs the key field {field} granted in clear; look up by subject instead",
        "按主键查询需获得主键字段 {field} 的明文授权；请改为按主体查询",
    ),
    "incomplete_key": ("give every primary key field: {fields}", "请提供全部主键字段：{fields}"),
    "filter_required": ("give the primary key ({fields}) or a subject", "请提供主键（{fields}）或主体"),
    "no_subject": ("dataset {code} has no subject field", "信息资源 {code} 没有主体字段"),
    "bad_filter": ("value of {field} has the wrong type", "{field} 的取值类型不正确"),
    "bad_cursor": ("cursor is not valid", "分页游标无效"),
    "certificate_not_found": ("certificate {identifier} not found", "未找到电子证照 {identifier}"),
    # ---- authentication ---------------------------------------------------------------
    "not_authenticated": ("a bearer token is required", "需要提供访问令牌（Bearer）"),
    "invalid_token": ("the access token is not valid: {why}", "访问令牌无效：{why}"),
    "token_expired": ("the access token has expired", "访问令牌已过期"),
    "app_disabled": ("app {app_id} is disabled", "应用 {app_id} 已停用"),
    "forbidden_role": ("this call needs the role {role}", "此操作需要 {role} 角色"),
    "wrong_party": ("this call is for {party} only", "此操作仅限{party}调用"),
    "wrong_department": (
        "dataset {code} belongs to another department",
        "信息资源 {code} 属于其他部门",
    ),
    # ---- purpose and sharing rules ----------------------------------------------------
    "purpose_required": (
        "personal data needs the headers X-End-User-Id and X-Case-Number",
        "调用个人数据须提供 X-End-User-Id 和 X-Case-Number 请求头（使用人与办件编号）",
    ),
    "no_grant": ("app has no grant for dataset {code}", "应用未获得信息资源 {code} 的授权"),
    "application_pending": (
        "the application for dataset {code} is waiting for the owner's decision",
        "信息资源 {code} 的共享申请正在等待审核",
    ),
    "application_refused": (
        "the application for dataset {code} was refused: {reason}",
        "信息资源 {code} 的共享申请未获批准：{reason}",
    ),
    "grant_expired": ("the grant for dataset {code} has expired", "信息资源 {code} 的授权已过期"),
    "grant_revoked": ("the grant for dataset {code} was revoked", "信息资源 {code} 的授权已撤销"),
    "rate_limited": (
        "rate limit of {limit} calls per minute reached; retry after {retry_after} s",
        "超过每分钟 {limit} 次的调用限制，请 {retry_after} 秒后重试",
    ),
    "sso_subject_taken": (
        "IdP subject {subject} is already linked to staff account {username}",
        "统一身份认证账号 {subject} 已绑定工作人员账号 {username}",
    ),
    "recipient_not_found": ("recipient profile {id} not found", "未找到共享接收方配置 {id}"),
    "profile_days": (
        "a recipient profile lasts 1 to {max} days",
        "共享接收方配置的有效期为 1 至 {max} 天",
    ),
    "share_not_found": ("share, schema or table not found: {name}", "未找到共享、库或表：{name}"),
    "version_not_found": ("table {table} has no version {version}", "表 {table} 没有版本 {version}"),
    "bad_subscription": ("the subscription is not valid: {why}", "订阅无效：{why}"),
    "subscription_not_found": ("subscription {id} not found", "未找到订阅 {id}"),
    "bad_timestamp": ("{value} is not an ISO 8601 timestamp", "{value} 不是 ISO 8601 时间"),
    "sharing_file_expired": ("this file link has expired or is not valid", "文件链接已过期或无效"),
    "sharing_store_unavailable": (
        "the shared file could not be put into the object store; nothing was handed out, try again later",
        "共享文件未能存入对象存储，本次未返回链接，请稍后重试",
    ),
    "sharing_links_unavailable": (
        "pre-signed file links need the lake on S3 (sharing_links = presigned); the operator must "
        "set sharing_links to auto or hub",
        "预签名文件链接须使用 S3 数据湖（sharing_links = presigned），"
        "请运维人员将 sharing_links 设为 auto 或 hub",
    ),
    "anomaly_throttled": (
        "access to dataset {code} is slowed to {limit} calls per minute while an access anomaly is "
        "reviewed; retry after {retry_after} s",
        "因存在异常访问，信息资源 {code} 的调用已限制为每分钟 {limit} 次，请 {retry_after} 秒后重试",
    ),
    "anomaly_not_found": ("access anomaly {id} not found", "未找到异常访问记录 {id}"),
    "anomaly_cleared": ("access anomaly {id} is already cleared", "异常访问记录 {id} 已处理"),
    "anomaly_reason_required": ("clearing an access anomaly needs a reason", "处理异常访问须说明理由"),
    "rate_limit_unavailable": (
        "the rate limiter is unavailable; nothing was served, try again later",
        "调用频率控制服务不可用，本次未返回数据，请稍后重试",
    ),
    "not_open": ("dataset {code} is not open data", "信息资源 {code} 不属于开放数据"),
    # ---- applications and grants --------------------------------------------------------
    "application_not_found": ("application {id} not found", "未找到共享申请 {id}"),
    "grant_not_found": ("grant {id} not found", "未找到授权 {id}"),
    "unknown_field": ("dataset {code} has no field {field}", "信息资源 {code} 没有信息项 {field}"),
    "not_sensitive": (
        "field {field} is not sensitive; only sensitive fields can be asked in clear",
        "信息项 {field} 不是敏感字段，无需申请明文",
    ),
    "clear_not_requested": (
        "field {field} must also be in fields",
        "明文字段 {field} 必须包含在申请字段中",
    ),
    "fields_required": ("ask for at least one field", "请至少申请一个信息项"),
    "purpose_missing": ("purpose and legal basis are required", "请填写用途和依据"),
    "already_pending": (
        "app {app_id} already has a pending application ({id}) for {code}",
        "应用 {app_id} 对 {code} 已有待审核的申请（{id}）",
    ),
    "already_decided": ("application {id} is already {status}", "共享申请 {id} 已处理（{status}）"),
    "reason_required": ("a refusal needs a reason", "不予批准必须说明理由"),
    "fields_not_requested": (
        "field {field} was not asked for in the application",
        "信息项 {field} 不在申请范围内",
    ),
    "grant_not_active": ("grant {id} is already {status}", "授权 {id} 已{status}"),
    "bad_date": ("{field} must be a future date", "{field} 必须是将来的日期"),
    "second_approval_required": (
        "application {id} waits for the second approval of the hub's data authority (a hub-wide admin)",
        "申请 {id} 待数据主管部门（全市管理员）二次审批",
    ),
    "grant_too_long": (
        "{field}: under the grade policy a {grade} dataset may be granted for at most {days} days "
        "(until {last})",
        "{field}：按分级管控策略，{grade} 级数据的授权期限最长 {days} 天（至 {last}）",
    ),
    "rate_limit_too_high": (
        "a {grade} dataset may be granted at most {max} calls per minute under the grade policy",
        "按分级管控策略，{grade} 级数据的调用频率上限为每分钟 {max} 次",
    ),
    "bad_quarter": (
        "a quarter is written like 2026Q4, not {value}",
        "季度应写作 2026Q4 的形式，而不是 {value}",
    ),
    # ---- directory review (目录审核) -------------------------------------------------------------
    "directory_invalid": ("the directory file is not valid: {problems}", "目录文件校验未通过：{problems}"),
    "submission_pending": (
        "department {code} already has submission {id} waiting for review; withdraw it first",
        "部门 {code} 已有待审核的目录（{id}），请先撤回",
    ),
    "submission_not_found": ("no directory submission {id}", "目录提交 {id} 不存在"),
    "dataset_code_clash": (
        "dataset code {code} names the same tables as dataset {other} ({table}); choose another code",
        "信息资源代码 {code} 与信息资源 {other} 对应同一张数据表（{table}），请更换代码",
    ),
    "certificate_type_foreign": (
        "certificate type {code} belongs to department {owner}; a directory file declares only its own",
        "证照类型 {code} 属于部门 {owner}，目录文件只能登记本部门的证照类型",
    ),
    "submission_decided": ("directory submission {id} is already {status}", "目录提交 {id} 已{status}"),
    "own_submission": (
        "submission {id} was made by you: another reviewer must decide it",
        "目录提交 {id} 由您本人提交，须由其他审核人审核",
    ),
    # ---- data objections (数据异议) -----------------------------------------------------------
    "bad_record_key": (
        "the record key must give exactly the key fields ({fields}), each a non-empty text or number",
        "记录主键须且仅须包含主键字段（{fields}），取值为非空文本或数字",
    ),
    "text_required": ("{field} must not be blank", "{field} 不能为空"),
    "text_too_long": ("{field} is longer than {limit} characters", "{field} 超过 {limit} 个字符"),
    "field_not_granted": (
        "your grant does not release {field}: you can only object to data you were given",
        "授权未包含 {field}：只能对获得的数据提出异议",
    ),
    "bad_answer": ("the answer must be one of {answers}", "答复结果须为以下之一：{answers}"),
    "objection_not_found": ("no data objection {id}", "数据异议 {id} 不存在"),
    "already_answered": ("data objection {id} has already been answered", "数据异议 {id} 已答复"),
    # ---- certificates -------------------------------------------------------------------
    "copy_not_allowed": (
        "a copy needs a reason and an expiry within {max_days} days",
        "加注件须注明用途，且有效期不超过 {max_days} 天",
    ),
    "copy_needs_full_grant": (
        "a copy of {identifier} needs a grant that shows the whole certificate",
        "开具 {identifier} 的加注件需要获得完整证照信息的授权",
    ),
    "certificate_not_valid": (
        "certificate {identifier} is {status}; no copy can be made",
        "电子证照 {identifier} 状态为 {status}，不能开具加注件",
    ),
    "bad_document": ("the document to verify is not well formed: {why}", "待验证的文件格式不正确：{why}"),
    # ---- registry -----------------------------------------------------------------------
    "department_not_found": ("department {code} is not in the directory", "目录中没有部门 {code}"),
    "app_not_found": ("app {app_id} not found", "未找到应用 {app_id}"),
    "app_name_taken": ("an app called {name} already exists", "已存在名为 {name} 的应用"),
    "staff_exists": ("staff account {username} already exists", "工作人员账号 {username} 已存在"),
    "staff_not_found": ("staff account {username} not found", "未找到工作人员账号 {username}"),
    "unknown_role": ("unknown role {role}", "未知角色 {role}"),
    "weak_password": ("the password needs at least 12 characters", "密码至少需要 12 个字符"),
    "roles_required": ("give at least one role of {roles}", "请至少指定一个角色：{roles}"),
    "hub_wide_role": (
        "an account without a department must be admin, or auditor only",
        "不属于任何部门的账号只能是管理员，或仅为审计员",
    ),
    "bad_rate_limit": ("rate limit must be at least 1 call per minute", "调用频率限制至少为每分钟 1 次"),
    "unknown_parameter": ("unknown query parameter {name!r}", "未知的查询参数 {name!r}"),
    "bad_body": ("the request body could not be read: {why}", "无法读取请求体：{why}"),
    "route_not_found": ("no such endpoint: {path}", "没有此接口：{path}"),
    "method_not_allowed": ("method {method} is not allowed here", "此接口不支持 {method} 方法"),
    "http_error": ("{why}", "{why}"),
    "keys_unavailable": (
        "the hub's signing keys are not available; the operator must restore or rotate them",
        "平台签名密钥不可用，请运维人员恢复或轮换密钥",
    ),
    "purpose_invalid": (
        "the header {header} does not identify anything: give a real value in the deployment's format",
        "请求头 {header} 的取值无效：请按平台规定的格式填写真实的使用人或办件编号",
    ),
    "body_too_large": ("the request body is larger than {limit} bytes", "请求体超过 {limit} 字节"),
    "body_timeout": (
        "the request body did not arrive within {seconds} s",
        "请求体未能在 {seconds} 秒内传完",
    ),
    "bad_text": (
        "the request body holds text the hub cannot store: {why}",
        "请求体含有无法保存的文本：{why}",
    ),
    "nul_character": (
        "the path or the query holds a NUL character",
        "请求路径或查询参数中含有 NUL 字符",
    ),
    "too_many_parameters": (
        "too many query parameters (at most {limit})",
        "查询参数过多（最多 {limit} 个）",
    ),
    "login_busy": (
        "too many sign-ins are being checked right now; retry in a moment",
        "当前登录请求过多，请稍后重试",
    ),
    "metrics_forbidden": (
        "this token does not give access to the metrics",
        "该令牌无权读取监控指标",
    ),
    "audit_unavailable": (
        "the audit log could not be written; nothing was served",
        "审计日志写入失败，本次未返回数据",
    ),
}


class HubError(Exception):
    """A refusal or failure the hub names with a stable code (a key of :data:`MESSAGES`).

    Domain code raises it without any transport detail; the API maps each code to its HTTP
    status in one place (``catalog/api/status.py``) and the CLI prints the message.
    """

    def __init__(self, error_code: str, /, **params: Any) -> None:
        self.code = error_code
        self.params = params
        super().__init__(error_code)


def error_body(exc: HubError) -> dict[str, Any]:
    """The JSON body: ``{"error": {"code", "message", "message_zh"}}``."""
    en, zh = MESSAGES.get(exc.code, (exc.code, exc.code))
    return {
        "error": {"code": exc.code, "message": en.format(**exc.params), "message_zh": zh.format(**exc.params)}
    }
