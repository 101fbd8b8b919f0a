"""The data's health as Prometheus metrics: freshness, warehouse size, dbt results."""
