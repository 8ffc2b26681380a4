"""quality: Great Expectations checks built from field rules, on Arrow data.

Importing this package does not import great_expectations (it takes seconds); validation
imports it on first use.
"""

from __future__ import annotations

from quality.report import render_report
from quality.rules import ColumnRule, DatasetRules
from quality.validate import ExpectationResult, ValidationOutcome, Violation, split, validate

__all__ = [
    "ColumnRule",
    "DatasetRules",
    "ExpectationResult",
    "ValidationOutcome",
    "Violation",
    "render_report",
    "split",
    "validate",
]
