{#- Weeks start on Monday everywhere: dbt's date_trunc('week') follows each
    warehouse's default, which is Sunday on BigQuery. -#}
{% macro week_start(date_expr) -%}
    {{ return(adapter.dispatch('week_start')(date_expr)) }}
{%- endmacro %}

{% macro default__week_start(date_expr) -%}
    cast(date_trunc('week', {{ date_expr }}) as date)
{%- endmacro %}

{% macro bigquery__week_start(date_expr) -%}
    date_trunc({{ date_expr }}, isoweek)
{%- endmacro %}

{% macro add_days(date_expr, days) -%}
    {{ return(adapter.dispatch('add_days')(date_expr, days)) }}
{%- endmacro %}

{% macro default__add_days(date_expr, days) -%}
    cast({{ date_expr }} + to_days(cast({{ days }} as integer)) as date)
{%- endmacro %}

{% macro bigquery__add_days(date_expr, days) -%}
    date_add({{ date_expr }}, interval {{ days }} day)
{%- endmacro %}
