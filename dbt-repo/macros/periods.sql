{#- Period arithmetic shared by every analytics model, in one place, so the
    models carry no adapter branches. Grains: day, week (ISO, Monday start,
    whatever the warehouse's default week) and month. -#}

{% macro period_start(date_expr, grain) -%}
    {%- if grain == 'day' -%}
        cast({{ date_expr }} as date)
    {%- elif grain == 'week' -%}
        {{ week_start(date_expr) }}
    {%- elif grain == 'month' -%}
        {{ month_start(date_expr) }}
    {%- else -%}
        {{ exceptions.raise_compiler_error("grain must be day, week or month, not " ~ grain) }}
    {%- endif -%}
{%- endmacro %}

{#- The start of the period `periods` grains after the one starting at `date_expr`. -#}
{% macro add_periods(date_expr, periods, grain) -%}
    {%- if grain == 'week' -%}
        {{ add_days(date_expr, periods ~ ' * 7') }}
    {%- elif grain == 'day' -%}
        {{ add_days(date_expr, periods) }}
    {%- else -%}
        cast({{ dbt.dateadd(grain, periods, date_expr) }} as date)
    {%- endif -%}
{%- endmacro %}

{#- Whole periods from `start_expr` to `end_expr`, both period starts. -#}
{% macro periods_between(start_expr, end_expr, grain) -%}
    {%- if grain == 'week' -%}
        cast({{ dbt.datediff(start_expr, end_expr, 'day') }} / 7 as {{ dbt.type_int() }})
    {%- else -%}
        {#- An integer on every warehouse: PostgreSQL's month difference is a double. -#}
        cast({{ dbt.datediff(start_expr, end_expr, grain) }} as {{ dbt.type_int() }})
    {%- endif -%}
{%- endmacro %}

{% macro add_days(date_expr, days) -%}
    cast({{ dbt.dateadd('day', days, date_expr) }} as date)
{%- endmacro %}

{#- dbt's date_trunc('week') follows each warehouse's default week, which is
    Sunday-start on BigQuery; ISO weeks start on Monday everywhere. -#}
{% macro week_start(date_expr) -%}
    {{ return(adapter.dispatch('week_start')(date_expr)) }}
{%- endmacro %}

{% macro default__week_start(date_expr) -%}
    cast(date_trunc('week', {{ date_expr }}) as date)
{%- endmacro %}

{% macro bigquery__week_start(date_expr) -%}
    date_trunc(cast({{ date_expr }} as date), isoweek)
{%- endmacro %}

{% macro month_start(date_expr) -%}
    {{ return(adapter.dispatch('month_start')(date_expr)) }}
{%- endmacro %}

{% macro default__month_start(date_expr) -%}
    cast(date_trunc('month', {{ date_expr }}) as date)
{%- endmacro %}

{% macro bigquery__month_start(date_expr) -%}
    date_trunc(cast({{ date_expr }} as date), month)
{%- endmacro %}

{#- Every day from `first_day_expr` to `last_day_expr` (columns of `bounds_cte`),
    from a 10,000-row numbers table built in plain SQL: no warehouse-specific
    series function and no query at compile time, so it compiles offline. -#}
{% macro day_spine(bounds_cte, first_day_expr, last_day_expr) -%}
    select {{ add_days(first_day_expr, 'numbers.n') }} as day
    from (
        select thousands.d * 1000 + hundreds.d * 100 + tens.d * 10 + ones.d as n
        from {{ digits() }} as thousands
        cross join {{ digits() }} as hundreds
        cross join {{ digits() }} as tens
        cross join {{ digits() }} as ones
    ) as numbers
    cross join {{ bounds_cte }}
    where numbers.n <= {{ dbt.datediff(first_day_expr, last_day_expr, 'day') }}
{%- endmacro %}

{% macro digits() -%}
    (
        select 0 as d union all select 1 union all select 2 union all select 3
        union all select 4 union all select 5 union all select 6 union all select 7
        union all select 8 union all select 9
    )
{%- endmacro %}
