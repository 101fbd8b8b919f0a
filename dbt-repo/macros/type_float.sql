{#- dbt's type_float() is `float` everywhere, which DuckDB reads as a 4-byte
    REAL while PostgreSQL and BigQuery read it as 8 bytes: ratios would differ
    in the seventh digit between warehouses. dbt looks in the root project
    first, so this makes DuckDB's match the others. -#}
{% macro duckdb__type_float() -%}
    double
{%- endmacro %}
