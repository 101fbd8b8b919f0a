{#- The unique test, on DuckDB, in two passes (dbt looks in the root project
    first, so this replaces dbt's own for DuckDB only).

    dbt's test groups by the column itself: on fct_events.event_id, 27.6M
    distinct 32-character strings at 25M events, the test needed more memory
    than any model (it ran out at a 1200MB limit). Here the first pass groups
    the values' 64-bit hashes, which are small and fixed-width, and keeps the
    hashes seen more than once; only values with such a hash (duplicates, and
    the rare collision) are grouped by themselves in the second pass, so the
    result is exactly dbt's: each duplicated value with its count. -#}
{% macro duckdb__test_unique(model, column_name) %}

with

repeated_hashes as (

    select hash({{ column_name }}) as value_hash
    from {{ model }}
    where {{ column_name }} is not null
    group by value_hash
    having count(*) > 1

)

select
    {{ column_name }} as unique_field,
    count(*) as n_records
from {{ model }}
where
    {{ column_name }} is not null
    and hash({{ column_name }}) in (select repeated_hashes.value_hash from repeated_hashes)
group by {{ column_name }}
having count(*) > 1

{% endmacro %}
