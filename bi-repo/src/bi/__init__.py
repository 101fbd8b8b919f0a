"""Apache Superset on the analytics tables, with its dashboards kept as code."""
