"""The report's data section: TFDV statistics and anomalies as plain HTML tables.

Why not TFDV's own view: ``tfdv.visualize_statistics`` /
``display_util.get_statistics_html`` (TFDV 1.16) returns an ``<iframe>``
whose page loads ``webcomponents-lite.js`` from ``cdnjs.cloudflare.com`` and
Facets (``facets-jupyter.html``) from ``raw.githubusercontent.com`` through
an HTML import (``<link rel="import">``). HTML imports were removed from
Chromium in M80 (2020) and never shipped in Firefox or Safari, and the
report must open offline, without network: embedded, that view would be an
empty frame. So the statistics proto is rendered here as tables, read with
TFDV's own loader (``tfdv.load_stats_binary``) and, for the curated schema,
TFDV's ``display_util.get_schema_dataframe``.

One row per feature, whatever its size: a list feature (an image as 784
floats, an encoded JPEG) is one row with its values-per-example counts, not
one column or histogram per value.
"""

import os
from typing import List, Optional

from model_garden.pipelines.html_report.page import esc, number

#: How many of a categorical feature's most frequent values the table lists.
TOP_VALUES = 5
#: What TFDV writes as the "value" of a binary (non-UTF-8) bytes feature.
_BINARY = "__BYTES_VALUE__"


def _frame_html(frame, text: bool = False) -> str:
    """A pandas DataFrame as an escaped HTML table without the index (``text``: left-aligned)."""
    return frame.to_html(index=False, escape=True, border=0, na_rep="-",
                         classes="text" if text else None)


def load_split_statistics(artifact) -> List[tuple]:
    """``[(split, DatasetFeatureStatistics), ...]`` of an ``ExampleStatistics`` artifact.

    Each split's ``Split-<split>/FeatureStats.pb`` (the one file of the
    folder) is read with ``tfdv.load_stats_binary``; its first dataset is
    the split's (StatisticsGen writes one).

    Raises:
      FileNotFoundError, ValueError: a split folder missing or not holding
        exactly one file.
    """
    import tensorflow_data_validation as tfdv
    from tfx.types import artifact_utils
    from tfx.utils import io_utils

    out = []
    for split in artifact_utils.decode_split_names(artifact.split_names):
        path = io_utils.get_only_uri_in_dir(artifact_utils.get_split_uri([artifact], split))
        stats = tfdv.load_stats_binary(path)
        if stats.datasets:
            out.append((split, stats.datasets[0]))
    return out


def _name(feature) -> str:
    return ".".join(feature.path.step) if feature.path.step else feature.name


def _common(feature):
    kind = feature.WhichOneof("stats")
    if kind in ("num_stats", "string_stats", "bytes_stats"):
        return getattr(feature, kind).common_stats
    if kind == "struct_stats":
        return feature.struct_stats.common_stats
    return None


def _values_per_example(common) -> str:
    """``"1"`` for a scalar feature, ``"min-max (avg a)"`` for a list."""
    if common is None:
        return "-"
    if common.min_num_values == common.max_num_values:
        return number(common.min_num_values)
    return (f"{number(common.min_num_values)}-{number(common.max_num_values)} "
            f"(avg {number(common.avg_num_values, 3)})")


def _missing(dataset, common) -> int:
    return int(common.num_missing) if common.num_missing else max(
        0, int(dataset.num_examples) - int(common.num_non_missing))


def _common_columns(dataset, feature, common_stats) -> dict:
    """The columns every feature row has: feature, type, count, missing, values/example."""
    from tensorflow_metadata.proto.v0 import statistics_pb2

    return {
        "feature": _name(feature),
        "type": statistics_pb2.FeatureNameStatistics.Type.Name(feature.type),
        "count": int(common_stats.num_non_missing),
        "missing": _missing(dataset, common_stats),
        "values/example": _values_per_example(common_stats),
    }


def numeric_rows(dataset) -> List[dict]:
    """One dict per numeric (INT, FLOAT) feature of a split's statistics.

    Keys: feature, type, count (examples with the feature), missing
    (examples without it), values/example, mean, std, zeros (values equal
    to 0), min, median, max. Statistics are over all values of the feature
    (every pixel of a list feature), as TFDV computes them.
    """
    rows = []
    for feature in dataset.features:
        if feature.WhichOneof("stats") != "num_stats":
            continue
        s = feature.num_stats
        rows.append({
            **_common_columns(dataset, feature, s.common_stats),
            "mean": number(s.mean), "std": number(s.std_dev), "zeros": number(s.num_zeros),
            "min": number(s.min), "median": number(s.median), "max": number(s.max),
        })
    return rows


def categorical_rows(dataset) -> List[dict]:
    """One dict per string, bytes or categorical-int feature of a split's statistics.

    Keys: feature, type, count, missing, values/example, unique (distinct
    values), top values (the :data:`TOP_VALUES` most frequent with their
    counts; ``binary`` for encoded images and other non-text bytes).
    """
    rows = []
    for feature in dataset.features:
        kind = feature.WhichOneof("stats")
        if kind not in ("string_stats", "bytes_stats"):
            continue
        s = getattr(feature, kind)
        if kind == "bytes_stats":
            top = (f"binary, {number(s.min_num_bytes)}-{number(s.max_num_bytes)} bytes "
                   f"(avg {number(s.avg_num_bytes, 4)})")
        elif any(v.value == _BINARY for v in s.top_values):
            top = "binary values"
        else:
            top = ", ".join(f"{v.value} ({number(v.frequency)})"
                            for v in list(s.top_values)[:TOP_VALUES])
        rows.append({
            **_common_columns(dataset, feature, s.common_stats),
            "unique": number(s.unique),
            "top values": top,
        })
    return rows


def statistics_html(artifact) -> str:
    """Per split of a StatisticsGen output: example count, numeric and categorical tables."""
    import pandas as pd

    parts = []
    for split, dataset in load_split_statistics(artifact):
        parts.append(f'<h3>split <code>{esc(split)}</code>: '
                     f'{number(int(dataset.num_examples))} examples</h3>')
        numeric, categorical = numeric_rows(dataset), categorical_rows(dataset)
        if numeric:
            parts.append('<p class="note">numeric features</p>'
                         + _frame_html(pd.DataFrame(numeric)))
        if categorical:
            parts.append('<p class="note">categorical and bytes features</p>'
                         + _frame_html(pd.DataFrame(categorical), text=True))
    parts.append(f'<p class="note">from <code>{esc(artifact.uri)}</code></p>')
    return "\n".join(parts)


def anomalies_html(found: Optional[list]) -> str:
    """The ExampleValidator's anomalies (:func:`model_garden.pipelines.report.anomalies`) as a table.

    ``None`` (no ExampleValidator output) and ``[]`` (clean data) are one sentence each.
    """
    import pandas as pd

    if found is None:
        return "<p>Not checked: the ExampleValidator did not complete in this run.</p>"
    if not found:
        return '<p><span class="ok">No anomalies</span> against the curated schema.</p>'
    frame = pd.DataFrame([{"split": a.split, "feature": a.feature, "kind": a.kind,
                           "short description": a.short_description,
                           "description": a.description} for a in found])
    return (f'<p><span class="bad">{len(found)} anomalies</span> against the curated schema.</p>'
            + _frame_html(frame, text=True))


def schema_html(artifact) -> str:
    """The curated schema (a ``Schema`` artifact) as TFDV's schema tables, in a ``<details>``."""
    import tensorflow_data_validation as tfdv
    from tensorflow_data_validation.utils import display_util

    schema = tfdv.load_schema_text(os.path.join(artifact.uri, "schema.pbtxt"))
    features, domains = display_util.get_schema_dataframe(schema)
    body = features.reset_index().to_html(index=False, escape=True, border=0)
    if len(domains):
        body += domains.reset_index().to_html(index=False, escape=True, border=0)
    return f"<details><summary>curated schema</summary>{body}</details>"
