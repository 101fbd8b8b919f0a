"""The assets the DAGs announce and schedule on, named once.

A load announces the raw table it replaced (`warehouse://raw/<source>`)
through the `raw_tables` alias, which is what schedules `dbt_transform`;
`dbt_transform` announces the analytics it rebuilt. A name spelt differently
in one DAG would silently stop scheduling the next.
"""

from __future__ import annotations

from airflow.sdk import Asset, AssetAlias

RAW_TABLES = AssetAlias("raw_tables")
ANALYTICS = Asset("warehouse://analytics")


def raw_table(source: str) -> Asset:
    return Asset(f"warehouse://raw/{source}")
