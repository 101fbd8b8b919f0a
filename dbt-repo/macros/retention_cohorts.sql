{#- The retention triangle at one grain (week or month): users grouped by the
    period of their first event (the cohort), and for every later period up to
    the newest, how many of them were active in it. Cells where nobody came
    back are kept as zeros, so the triangle has no holes. -#}
{% macro retention_cohorts(grain) %}

with

user_periods as (

    select distinct
        user_id,
        {{ period_start('activity_date', grain) }} as period_start
    from {{ ref('fct_user_days') }}

),

cohort_members as (

    select
        user_id,
        min(period_start) as cohort_start
    from user_periods
    group by user_id

),

cohorts as (

    select
        cohort_start,
        count(*) as cohort_size
    from cohort_members
    group by cohort_start

),

bounds as (

    select
        min(period_start) as first_period_start,
        max(period_start) as last_period_start
    from user_periods

),

periods as (

    select distinct {{ period_start('day', grain) }} as period_start
    from ({{ day_spine('bounds', 'bounds.first_period_start', 'bounds.last_period_start') }}) as days

),

cells as (

    select
        cohorts.cohort_start,
        cohorts.cohort_size,
        periods.period_start
    from cohorts
    inner join periods on cohorts.cohort_start <= periods.period_start

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
        / cells.cohort_size as retention_rate
    from cells
    left join returns
        on
            cells.cohort_start = returns.cohort_start
            and cells.period_start = returns.period_start

)

select * from final

{% endmacro %}
