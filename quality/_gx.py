"""Lazy access to Great Expectations: one ephemeral context per process, custom expectations.

``import great_expectations`` takes seconds, so nothing here imports it at module level; the
functions do, once, and cache what they build. The rule kinds that need a custom expectation
(citizen ID and credit code checksums, a "values differ" column pair check; see
``quality.rules``) define it through :func:`column_map_expectation` /
:func:`column_pair_map_expectation`: ordinary GX Core 1.x ``ColumnMapExpectation`` /
``ColumnPairMapExpectation`` subclasses backed by map metric providers, which GX registers
when the classes are created.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable
from typing import Any

_LOCK = threading.RLock()

DATASOURCE = "sharehub_quality"
ASSET = "batch"
BATCH_DEFINITION = "whole_dataframe"


def lock() -> threading.RLock:
    """The lock that serialises use of the shared context (GX contexts are not thread-safe)."""
    return _LOCK


@functools.cache
def expectations() -> Any:
    """The ``great_expectations.expectations`` module (GX's built-in expectation classes)."""
    import importlib

    return importlib.import_module("great_expectations.expectations")


@functools.cache
def column_map_expectation(class_name: str, metric: str, valid: Callable[[Any], Any], doc: str) -> Any:
    """Define (once) a custom ``ColumnMapExpectation`` and its metric: ``valid(column)`` gives a
    boolean array (which of the non-null values of the pandas Series pass).

    GX registers both when the classes are created, the expectation under the snake-case of
    ``class_name`` (``ExpectColumnValuesToBeValidCitizenId`` ->
    ``expect_column_values_to_be_valid_citizen_id``), the metric under ``metric``. Pass a
    module-level ``valid`` function: the classes are cached on the arguments.
    """
    from great_expectations.execution_engine.pandas_execution_engine import PandasExecutionEngine
    from great_expectations.expectations.expectation import ColumnMapExpectation
    from great_expectations.expectations.metrics.map_metric_provider.column_condition_partial import (
        column_condition_partial,
    )
    from great_expectations.expectations.metrics.map_metric_provider.column_map_metric_provider import (
        ColumnMapMetricProvider,
    )

    def _pandas(cls: Any, column: Any, **kwargs: Any) -> Any:
        import pandas as pd

        return pd.Series(valid(column), index=column.index)

    provider_name = class_name.replace("Expect", "Metric", 1)
    type(
        provider_name,
        (ColumnMapMetricProvider,),
        {
            "condition_metric_name": metric,
            "_pandas": column_condition_partial(engine=PandasExecutionEngine)(_pandas),
            "__module__": __name__,
        },
    )
    return type(
        class_name,
        (ColumnMapExpectation,),
        {"__doc__": doc, "map_metric": metric, "success_keys": ("mostly",), "__module__": __name__},
    )


@functools.cache
def column_pair_map_expectation(
    class_name: str, metric: str, valid: Callable[[Any, Any], Any], doc: str
) -> Any:
    """Define (once) a custom ``ColumnPairMapExpectation`` and its metric: ``valid(a, b)`` gives a
    boolean array over the rows where both values are present (``ignore_row_if`` defaults to
    ``either_value_is_missing``)."""
    from great_expectations.execution_engine.pandas_execution_engine import PandasExecutionEngine
    from great_expectations.expectations.expectation import ColumnPairMapExpectation
    from great_expectations.expectations.metrics.map_metric_provider.column_pair_condition_partial import (
        column_pair_condition_partial,
    )
    from great_expectations.expectations.metrics.map_metric_provider.column_pair_map_metric_provider import (
        ColumnPairMapMetricProvider,
    )

    def _pandas(cls: Any, column_A: Any, column_B: Any, **kwargs: Any) -> Any:
        return valid(column_A, column_B)

    provider_name = class_name.replace("Expect", "Metric", 1)
    type(
        provider_name,
        (ColumnPairMapMetricProvider,),
        {
            "condition_metric_name": metric,
            "condition_domain_keys": (
                "batch_id",
                "table",
                "column_A",
                "column_B",
                "row_condition",
                "condition_parser",
                "ignore_row_if",
            ),
            "condition_value_keys": (),
            "_pandas": column_pair_condition_partial(engine=PandasExecutionEngine)(_pandas),
            "__module__": __name__,
        },
    )
    return type(
        class_name,
        (ColumnPairMapExpectation,),
        {
            "__doc__": doc,
            "__annotations__": {"ignore_row_if": str},
            "ignore_row_if": "either_value_is_missing",
            "map_metric": metric,
            "success_keys": ("column_A", "column_B", "ignore_row_if", "mostly"),
            "args_keys": ("column_A", "column_B"),
            "__module__": __name__,
        },
    )


def warm_up() -> None:
    """Import what validation imports and create the shared context (a worker pays this once)."""
    expectations()
    batch_definition()


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
