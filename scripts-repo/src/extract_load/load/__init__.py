"""Load: landed days into a warehouse's raw tables, one classification for every warehouse.

`classify` decides what each landed record is worth (loaded, or quarantined
with a reason); `raw_tables` declares the tables once; `duckdb` and `bigquery`
only write what classification decided.
"""
