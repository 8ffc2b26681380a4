"""What the DAG factory needs to know about one dataset sync (read from the directory)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class DagSpec:
    """One dataset's sync DAG, as the directory describes it."""

    code: str  # 信息资源代码, e.g. "SCJ-YYZZ-001"
    name: str  # 名称
    department_code: str
    department_name: str
    share_type: str  # unconditional | conditional | none
    schedule: str | None  # cron or Airflow preset; None = manual only
    summary: str = ""
    fields: list[tuple[str, str, str]] = field(default_factory=list)  # (name, label, type)
    curated_table: str = ""  # Iceberg identifier, e.g. "curated.scj_yyzz_001"
    version: int = 1
    queue: str | None = None  # CeleryExecutor queue of its tasks (settings.airflow_queues); None = default

    @property
    def dag_id(self) -> str:
        """Airflow dag_id derived from the dataset code (letters, digits, _ . - only)."""
        return "sync__" + "".join(c if c.isalnum() or c in "_.-" else "_" for c in self.code)
