{#- Growth accounting at one grain (day, week or month), for the
    growth_accounting_<grain> models. Every user active in a period is exactly
    one of new (their first active period), retained (also active the period
    before) or resurrected (active before, but not the period before).
    Churned users were active the period before and not in this one. Every
    period from the first to the last appears, with zeros where nobody was
    active, so the identities hold between neighbouring rows. -#}
{% macro growth_accounting(grain) %}

with

user_periods as (

    select distinct
        user_id,
        {{ period_start('activity_date', grain) }} as period_start
    from {{ ref('fct_user_days') }}

),

first_periods as (

    select
        user_id,
        min(period_start) as first_period_start
    from user_periods
    group by user_id

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

active_statuses as (

    select
        current_period.period_start,
        current_period.user_id,
        case
            when current_period.period_start = first_periods.first_period_start then 'new'
            when previous_period.user_id is not null then 'retained'
            else 'resurrected'
        end as status
    from user_periods as current_period
    inner join first_periods
        on current_period.user_id = first_periods.user_id
    left join user_periods as previous_period
        on
            current_period.user_id = previous_period.user_id
            and previous_period.period_start
            = {{ add_periods('current_period.period_start', -1, grain) }}

),

churned_statuses as (

    select
        {{ add_periods('previous_period.period_start', 1, grain) }} as period_start,
        previous_period.user_id,
        'churned' as status
    from user_periods as previous_period
    cross join bounds
    left join user_periods as current_period
        on
            previous_period.user_id = current_period.user_id
            and current_period.period_start
            = {{ add_periods('previous_period.period_start', 1, grain) }}
    where
        current_period.user_id is null
        and previous_period.period_start < bounds.last_period_start

),

statuses as (

    select * from active_statuses
    union all
    select * from churned_statuses

),

status_counts as (

    select
        period_start,
        count(case when status != 'churned' then 1 end) as active_users,
        count(case when status = 'new' then 1 end) as new_users,
        count(case when status = 'retained' then 1 end) as retained_users,
        count(case when status = 'resurrected' then 1 end) as resurrected_users,
        count(case when status = 'churned' then 1 end) as churned_users
    from statuses
    group by period_start

),

final as (

    select
        periods.period_start,
        coalesce(status_counts.active_users, 0) as active_users,
        coalesce(status_counts.new_users, 0) as new_users,
        coalesce(status_counts.retained_users, 0) as retained_users,
        coalesce(status_counts.resurrected_users, 0) as resurrected_users,
        coalesce(status_counts.churned_users, 0) as churned_users,
        case
            when status_counts.churned_users > 0
                then cast(status_counts.new_users + status_counts.resurrected_users as {{ dbt.type_float() }})
                / status_counts.churned_users
        end as quick_ratio
    from periods
    left join status_counts on periods.period_start = status_counts.period_start

)

select * from final

{% endmacro %}
