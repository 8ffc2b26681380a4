"""Lazy access to Great Expectations: one ephemeral context per process, custom expectations.

``import great_expectations`` takes seconds, so nothing here imports it at module level; the
functions do, once, and cache what they build. The custom expectations (citizen ID and
credit code checksums, a "values differ" column pair check) are ordinary GX Core 1.x
``ColumnMapExpectation`` / ``ColumnPairMapExpectation`` subclasses backed by
``ColumnMapMetricProvider`` metrics; GX registers both when the classes are created.
"""

from __future__ import annotations

import functools
import os
import threading
from typing import Any

_LOCK = threading.RLock()

DATASOURCE = "sharehub_quality"
ASSET = "batch"
BATCH_DEFINITION = "whole_dataframe"

CITIZEN_ID_METRIC = "column_values.sharehub_citizen_id"
CREDIT_CODE_METRIC = "column_values.sharehub_credit_code"
NOT_EQUAL_METRIC = "column_pair_values.sharehub_not_equal"


def lock() -> threading.RLock:
    """The lock that serialises use of the shared context (GX contexts are not thread-safe)."""
    return _LOCK


@functools.cache
def custom_expectations() -> dict[str, Any]:
    """Define (once) and return the custom expectation classes by rule name."""
    from great_expectations.execution_engine.pandas_execution_engine import PandasExecutionEngine
    from great_expectations.expectations.expectation import ColumnMapExpectation, ColumnPairMapExpectation
    from great_expectations.expectations.metrics.map_metric_provider.column_condition_partial import (
        column_condition_partial,
    )
    from great_expectations.expectations.metrics.map_metric_provider.column_map_metric_provider import (
        ColumnMapMetricProvider,
    )
    from great_expectations.expectations.metrics.map_metric_provider.column_pair_condition_partial import (
        column_pair_condition_partial,
    )
    from great_expectations.expectations.metrics.map_metric_provider.column_pair_map_metric_provider import (
        ColumnPairMapMetricProvider,
    )

    from quality._fast_checks import citizen_id_mask, credit_code_mask

    def _as_str_valid(column: Any, check: Any) -> Any:
        import pandas as pd

        return pd.Series(check(column), index=column.index)

    class ColumnValuesSharehubCitizenId(ColumnMapMetricProvider):
        condition_metric_name = CITIZEN_ID_METRIC

        @column_condition_partial(engine=PandasExecutionEngine)  # type: ignore[untyped-decorator]
        def _pandas(cls, column: Any, **kwargs: Any) -> Any:
            return _as_str_valid(column, citizen_id_mask)

    class ColumnValuesSharehubCreditCode(ColumnMapMetricProvider):
        condition_metric_name = CREDIT_CODE_METRIC

        @column_condition_partial(engine=PandasExecutionEngine)  # type: ignore[untyped-decorator]
        def _pandas(cls, column: Any, **kwargs: Any) -> Any:
            return _as_str_valid(column, credit_code_mask)

    class ColumnPairValuesSharehubNotEqual(ColumnPairMapMetricProvider):
        condition_metric_name = NOT_EQUAL_METRIC
        condition_domain_keys = (
            "batch_id",
            "table",
            "column_A",
            "column_B",
            "row_condition",
            "condition_parser",
            "ignore_row_if",
        )
        condition_value_keys = ()

        @column_pair_condition_partial(engine=PandasExecutionEngine)  # type: ignore[untyped-decorator]
        def _pandas(cls, column_A: Any, column_B: Any, **kwargs: Any) -> Any:
            return column_A != column_B

    class ExpectColumnValuesToBeValidCitizenId(ColumnMapExpectation):
        """Values are 18-digit GB 11643 citizen ID numbers with a real birth date and check character."""

        map_metric = CITIZEN_ID_METRIC
        success_keys = ("mostly",)

    class ExpectColumnValuesToBeValidCreditCode(ColumnMapExpectation):
        """Values are GB 32100 unified social credit codes with the right check character."""

        map_metric = CREDIT_CODE_METRIC
        success_keys = ("mostly",)

    class ExpectColumnPairValuesToBeDifferent(ColumnPairMapExpectation):
        """Column A differs from column B on every row where both are present."""

        ignore_row_if: str = "either_value_is_missing"
        map_metric = NOT_EQUAL_METRIC
        success_keys = ("column_A", "column_B", "ignore_row_if", "mostly")
        args_keys = ("column_A", "column_B")

    return {
        "citizen_id": ExpectColumnValuesToBeValidCitizenId,
        "credit_code": ExpectColumnValuesToBeValidCreditCode,
        "not_equal": ExpectColumnPairValuesToBeDifferent,
    }


@functools.cache
def batch_definition() -> Any:
    """The shared ephemeral context's pandas dataframe batch definition (created once per process)."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx
    from great_expectations.execution_engine import pandas_execution_engine

    # GX fingerprints every dataframe under 1 GB by hashing all of it (pandas'
    # hash_pandas_object, then MD5), only to put the digest in the batch markers, which
    # sharehub never reads: 1.5 s of a 5 s validation of a million rows. 0 turns it off.
    pandas_execution_engine.HASH_THRESHOLD = 0
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(),
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False),
    )
    context = gx.get_context(mode="ephemeral", project_config=config)
    source = context.data_sources.add_pandas(DATASOURCE)
    asset = source.add_dataframe_asset(ASSET)
    return asset.add_batch_definition_whole_dataframe(BATCH_DEFINITION)
