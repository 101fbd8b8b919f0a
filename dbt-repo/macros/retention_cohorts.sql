{#- The retention triangle at one grain (week or month): users grouped by the
    period of their first event (the cohort), and for every later period up to
    the newest, how many of them were active in it. Cells where nobody came
    back are kept as zeros, so the triangle has no holes.

    Incremental from the first period whose days changed (docs/adr/0019): a
    changed day moves only the cells of its own period and later ones (its
    actives) and the cohorts that start at or after it (a user whose first
    period moves), so every earlier period is left as it is. Cohorts are read
    from dim_users, so a daily run reads the days it rebuilds. -#}
{% macro retention_cohorts(grain) %}

{{ period_table_config(
    "{{ delete_from_first_changed_period(spine_digests_sql(ref('fct_user_days'), 'activity_date', '"
    ~ grain ~ "')) }}"
) }}

with

period_digests as {{ cte_materialized() }} (

    {{ spine_digests_sql(ref('fct_user_days'), 'activity_date', grain) }}

),

rebuild as (

    {{ rebuild_from_sql('period_digests') }}

),

user_periods as (

    select distinct
        user_days.user_id,
        {{ period_start('user_days.activity_date', grain) }} as period_start
    from {{ ref('fct_user_days') }} as user_days
    {% if is_incremental() %}
        cross join rebuild
        where user_days.activity_date >= rebuild.rebuild_from
    {% endif %}

),

cohort_members as (

    select
        user_id,
        {{ period_start('first_seen_date', grain) }} as cohort_start
    from {{ ref('dim_users') }}

),

cohorts as (

    select
        cohort_start,
        count(*) as cohort_size
    from cohort_members
    group by cohort_start

),

cells as (

    select
        cohorts.cohort_start,
        cohorts.cohort_size,
        period_digests.period_start,
        period_digests.loads_digest
    from cohorts
    inner join period_digests on cohorts.cohort_start <= period_digests.period_start
    cross join rebuild
    where period_digests.period_start >= rebuild.rebuild_from

),

returns as (

    select
        cohort_members.cohort_start,
        user_periods.period_start,
        count(*) as retained_users
    from user_periods
    inner join cohort_members on user_periods.user_id = cohort_members.user_id
    group by cohort_members.cohort_start, user_periods.period_start

),

final as (

    select
        cells.cohort_start,
        {{ periods_between('cells.cohort_start', 'cells.period_start', grain) }} as periods_since,
        cells.period_start,
        cells.cohort_size,
        coalesce(returns.retained_users, 0) as retained_users,
        cast(coalesce(returns.retained_users, 0) as {{ dbt.type_float() }})
        / cells.cohort_size as retention_rate,
        cells.loads_digest
    from cells
    left join returns
        on
            cells.cohort_start = returns.cohort_start
            and cells.period_start = returns.period_start

)

select * from final

{% endmacro %}
