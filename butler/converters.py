"""Conversions between in-memory types of compatible storage classes (named in storage_classes.yaml)."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa

__all__ = ["arrow_table_from_data_frame", "data_frame_from_arrow_table"]


def arrow_table_from_data_frame(frame: pd.DataFrame) -> pa.Table:
    """A `pyarrow.Table` from a `pandas.DataFrame` (the index is kept only if it is not a default range)."""
    return pa.Table.from_pandas(frame, preserve_index=None)


def data_frame_from_arrow_table(table: pa.Table) -> pd.DataFrame:
    """A `pandas.DataFrame` from a `pyarrow.Table`."""
    return table.to_pandas()
