"""Operator commands baked into the Airflow image beside the DAGs (not DAG code)."""
