"""The data directory (数据目录) as code: what a department's YAML directory file may say.

One file per department. Its shape follows the national catalogue guide (资源代码, 名称,
提供方, 摘要, 格式, 信息项, 共享属性, 开放属性, 更新周期, 分级) plus what the hub needs to run
the dataset: primary key, subject key, field rules, source spec, schedule, quality policy and
certificate types. ``catalog.directory.loader`` loads and validates a file into these models;
errors name the file, the line and the field.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeAlias

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from catalog import masking
from catalog.directory.sources import SourceModel, source_spec_type

DATASET_CODE_RE = r"^[A-Za-z0-9][A-Za-z0-9_.-]{1,63}$"
FIELD_NAME_RE = r"^[a-z][a-z0-9_]{0,62}$"
_DECIMAL_RE = re.compile(r"^decimal\((\d{1,2}),\s*(\d{1,2})\)$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _known_mask(name: str) -> str:
    if name not in masking.rule_names():
        raise ValueError(f"unknown mask rule {name!r} (rules: {', '.join(masking.rule_names())})")
    return name


#: a masking rule's name (``catalog.masking``: the registry decides which exist)
MaskRule = Annotated[
    str, AfterValidator(_known_mask), Field(json_schema_extra={"enum": masking.rule_names()})
]


class ShareType(StrEnum):
    """共享类型."""

    UNCONDITIONAL = "unconditional"  # 无条件共享
    CONDITIONAL = "conditional"  # 有条件共享
    NONE = "none"  # 不予共享


class Grade(StrEnum):
    """数据安全分级."""

    GENERAL = "general"  # 一般
    IMPORTANT = "important"  # 重要
    CORE = "core"  # 核心


class Sensitivity(StrEnum):
    """How a field may be shown to an app that was granted it."""

    PUBLIC = "public"  # shown as is
    INTERNAL = "internal"  # shown as is to granted apps
    SENSITIVE = "sensitive"  # personal data: masked unless granted in clear


class SubjectKind(StrEnum):
    """主体: who a record is about."""

    PERSON = "person"  # 18-digit citizen ID
    ENTERPRISE = "enterprise"  # unified social credit code


class QualityPolicy(StrEnum):
    """What a run does when rows break rules."""

    BLOCK = "block"  # any bad row fails the run; nothing is published
    QUARANTINE = "quarantine"  # bad rows go to quarantine, good rows are published


FIELD_TYPES = ("string", "integer", "float", "boolean", "date", "timestamp")

#: declared normalisations of a field's text, applied before casting and checking (in this order):
#: ``nfkc`` full-width digits, letters and punctuation to their ASCII forms (Unicode NFKC);
#: ``strip_spaces`` every space inside the value removed; ``upper`` upper case (a citizen ID's x);
#: ``thousands`` digit-group commas removed from numbers (``1,234.50``)
Normalisation = Literal["nfkc", "strip_spaces", "upper", "thousands"]
NORMALISATIONS: tuple[str, ...] = ("nfkc", "strip_spaces", "upper", "thousands")


class DuplicateKeyPolicy(StrEnum):
    """What a run does with rows of one primary key found more than once in the run."""

    QUARANTINE_ALL = "quarantine_all"  # every copy goes to quarantine (the department decides)
    LATEST_FILE_WINS = "latest_file_wins"  # across files: the copy in the latest file (name order) wins


class MissingColumnPolicy(StrEnum):
    """What a run does when a declared column is not in a source file's header."""

    BLOCK = "block"  # the run is blocked: nothing is published until the file is fixed
    PUBLISH_NULL = "publish_null"  # the rows are published with the column null (the finding stays)


class RuleParam:
    """Marks a :class:`FieldRules` entry written as one value: it is the rule's parameter ``name``
    (``enum: [A, B]`` is the enum rule with ``{"values": ["A", "B"]}``)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"RuleParam({self.name!r})"


class RangeRule(_Strict):
    """Inclusive bounds for numbers or dates (ISO strings)."""

    min: float | str | None = None
    max: float | str | None = None


class CompareRule(_Strict):
    """Row rule comparing this field with another one: ``field op other``."""

    op: Literal["<", "<=", ">", ">=", "==", "!="]
    other: str


class FieldRules(_Strict):
    """Row rules for one field. Every rule a row breaks becomes a quarantine reason."""

    # Each entry is one rule kind of the quality checks, under the kind's name (a test checks
    # that these names and the kinds quality has registered agree). An entry is a flag
    # (``not_null: true``: no parameters), a model of the parameters (``RangeRule``), or one
    # value marked with ``RuleParam`` naming the one parameter it is. ``declared()`` turns the
    # set entries into ``(kind, params)``. (A comment, not the docstring: that one is in the
    # directory's JSON schema.)
    not_null: bool = False
    unique: bool = False
    citizen_id: bool = False
    credit_code: bool = False
    mobile: bool = False
    enum: Annotated[list[str] | None, RuleParam("values")] = None
    range: RangeRule | None = None
    regex: Annotated[str | None, RuleParam("pattern")] = None
    max_length: Annotated[int | None, RuleParam("max")] = None
    not_future: bool = False
    compare: CompareRule | None = None

    def declared(self) -> list[tuple[str, dict[str, Any]]]:
        """Every rule set on the field as ``(kind, params)``: the flags first, then the rules
        with parameters, each in declaration order (the order of a row's quarantine reasons).

        An empty list or text declares nothing (``enum: []``, ``regex: ""``); ``0`` does."""
        flags: list[tuple[str, dict[str, Any]]] = []
        valued: list[tuple[str, dict[str, Any]]] = []
        for name, info in type(self).model_fields.items():
            value = getattr(self, name)
            if isinstance(value, bool):
                if value:
                    flags.append((name, {}))
            elif value is None or (isinstance(value, str | list) and not value):
                continue
            elif isinstance(value, BaseModel):
                valued.append((name, value.model_dump(exclude_none=True)))
            else:
                params = [m.name for m in info.metadata if isinstance(m, RuleParam)]
                if len(params) != 1:
                    raise TypeError(f"FieldRules.{name} is a single value: mark it with one RuleParam")
                valued.append((name, {params[0]: list(value) if isinstance(value, list) else value}))
        return flags + valued

    @field_validator("regex")
    @classmethod
    def _regex_compiles(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                re.compile(v)
            except re.error as exc:
                raise ValueError(f"invalid regular expression: {exc}") from None
        return v


class FieldSpec(_Strict):
    """信息项: one column of a dataset."""

    name: Annotated[str, Field(pattern=FIELD_NAME_RE)]
    label: str  # 中文名称
    type: str = "string"  # string|integer|float|boolean|date|timestamp|decimal(p,s)
    description: str = ""
    sensitivity: Sensitivity = Sensitivity.INTERNAL
    mask: MaskRule | None = None
    source_name: str | None = None  # column name at the source, when it differs (e.g. Chinese headers)
    normalize: list[Normalisation] = Field(default_factory=list)  # declared clean-ups, see NORMALISATIONS
    rules: FieldRules = FieldRules()

    @field_validator("type")
    @classmethod
    def _known_type(cls, v: str) -> str:
        if v in FIELD_TYPES or _DECIMAL_RE.match(v):
            return v
        raise ValueError(f"unknown field type {v!r}; use one of {', '.join(FIELD_TYPES)} or decimal(p,s)")

    @model_validator(mode="after")
    def _sensitive_needs_mask(self) -> FieldSpec:
        if (
            "thousands" in self.normalize
            and self.type not in ("integer", "float")
            and not _DECIMAL_RE.match(self.type)
        ):
            raise ValueError(f"field {self.name}: normalize thousands applies to numbers, not {self.type}")
        if self.sensitivity is Sensitivity.SENSITIVE and self.mask is None:
            raise ValueError(f"field {self.name}: a sensitive field needs a mask rule")
        if self.mask is not None and self.mask != masking.FULL and self.type != "string":
            raise ValueError(
                f"field {self.name}: mask {self.mask} keeps part of a text; a {self.type} field "
                "can only be masked full"
            )
        return self

    def decimal_precision_scale(self) -> tuple[int, int] | None:
        """(precision, scale) for a decimal field, None otherwise."""
        m = _DECIMAL_RE.match(self.type)
        return (int(m.group(1)), int(m.group(2))) if m else None


class ShareSpec(_Strict):
    """共享属性."""

    type: ShareType
    condition: str = ""  # 共享条件 (required for conditional)
    mode: Literal["interface", "file", "both"] = "interface"  # 共享方式
    legal_basis: str = ""  # 不予共享依据 (required for none)

    @model_validator(mode="after")
    def _explained(self) -> ShareSpec:
        if self.type is ShareType.CONDITIONAL and not self.condition.strip():
            raise ValueError("a conditional share needs a condition (共享条件)")
        if self.type is ShareType.NONE and not self.legal_basis.strip():
            raise ValueError("share type none needs a legal basis (不予共享依据)")
        return self


class OpenSpec(_Strict):
    """开放属性."""

    open: bool = False
    condition: str = ""


class SubjectSpec(_Strict):
    """Which field names the subject (主体) a record is about."""

    field: str
    kind: SubjectKind


if TYPE_CHECKING:
    #: for the type checker, any registered kind (narrow with isinstance, e.g. to SqlSource)
    SourceSpec: TypeAlias = SourceModel
else:
    #: where the hub pulls a dataset from: the registered source kinds (catalog.directory.sources),
    #: one model each, picked by ``kind``
    SourceSpec = source_spec_type()


class QualitySpec(_Strict):
    """Quality policy for a dataset's runs."""

    policy: QualityPolicy = QualityPolicy.QUARANTINE
    max_bad_ratio: float = Field(0.05, ge=0, le=1)  # above this share of bad rows the run blocks anyway
    max_volume_change: float | None = Field(0.5, ge=0)  # |rows - last| / last above this fails the check
    duplicate_keys: DuplicateKeyPolicy = DuplicateKeyPolicy.QUARANTINE_ALL
    missing_columns: MissingColumnPolicy = MissingColumnPolicy.BLOCK


class CertificateMapping(_Strict):
    """How a certificate dataset's rows become certificates (电子证照)."""

    type_code: str  # certificate type code in this directory's certificate_types
    number: str  # field holding the certificate number (证照编号)
    holder_name: str
    valid_from: str
    valid_until: str | None = None
    status: str | None = None  # field whose value says revoked/cancelled
    revoked_values: list[str] = Field(default_factory=list)
    face: list[str] = Field(default_factory=list)  # fields printed on the certificate face


class DatasetSpec(_Strict):
    """信息资源: one published table."""

    code: Annotated[str, Field(pattern=DATASET_CODE_RE)]  # 信息资源代码
    name: str  # 名称
    summary: str = ""  # 摘要
    format: str = "数据库表"  # 格式
    category: str = ""  # 分类
    share: ShareSpec
    open: OpenSpec = OpenSpec()
    update_cycle: Literal["realtime", "hourly", "daily", "weekly", "monthly", "quarterly", "yearly"] = "daily"
    grade: Grade = Grade.GENERAL
    primary_key: list[str]
    subject: SubjectSpec | None = None
    fields: list[FieldSpec]
    source: SourceSpec
    schedule: str | None = "@daily"  # cron or an Airflow preset; None = manual only
    quality: QualitySpec = Field(default_factory=lambda: QualitySpec.model_validate({}))
    certificate: CertificateMapping | None = None
    tags: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> DatasetSpec:
        names = [f.name for f in self.fields]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"duplicate field names: {', '.join(dupes)}")
        known = set(names)
        for key in self.primary_key:
            if key not in known:
                raise ValueError(f"primary_key names unknown field {key!r}")
        if not self.primary_key:
            raise ValueError("primary_key needs at least one field")
        if self.subject and self.subject.field not in known:
            raise ValueError(f"subject names unknown field {self.subject.field!r}")
        for f in self.fields:
            if f.rules.compare and f.rules.compare.other not in known:
                raise ValueError(f"field {f.name}: compare names unknown field {f.rules.compare.other!r}")
        if self.certificate:
            c = self.certificate
            for ref in [c.number, c.holder_name, c.valid_from, c.valid_until, c.status, *c.face]:
                if ref is not None and ref not in known:
                    raise ValueError(f"certificate mapping names unknown field {ref!r}")
        return self

    def field(self, name: str) -> FieldSpec:
        """The field called ``name``."""
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(name)


class CertificateTypeSpec(_Strict):
    """证照目录: one certificate type a department issues."""

    code: Annotated[str, Field(pattern=r"^[0-9A-Z]{6,32}$")]  # 证照类型代码
    name: str  # e.g. 营业执照
    holder_kind: SubjectKind
    dataset: str  # dataset code the certificates are issued from
    validity_years: int | None = None


class DepartmentSpec(_Strict):
    """部门: the provider publishing the directory file."""

    code: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{2,32}$")]
    name: str
    credit_code: str | None = None  # the department's own 统一社会信用代码 (certificate issuer code)
    contact: str = ""


class DirectoryFile(_Strict):
    """A whole department directory file."""

    department: DepartmentSpec
    datasets: list[DatasetSpec] = Field(default_factory=list)
    certificate_types: list[CertificateTypeSpec] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_codes(self) -> DirectoryFile:
        codes = [d.code for d in self.datasets]
        dupes = sorted({c for c in codes if codes.count(c) > 1})
        if dupes:
            raise ValueError(f"duplicate dataset codes: {', '.join(dupes)}")
        known = set(codes)
        for ct in self.certificate_types:
            if ct.dataset not in known:
                raise ValueError(f"certificate type {ct.code} names unknown dataset {ct.dataset!r}")
        return self


def arrow_type_name(field_type: str) -> str:
    """Normalise a field type for display and comparison."""
    return field_type.replace(" ", "")


def dump_dataset(spec: DatasetSpec) -> dict[str, Any]:
    """The dataset spec as plain JSON-able data (stored per version, diffed by history)."""
    return spec.model_dump(mode="json", exclude_none=True)
