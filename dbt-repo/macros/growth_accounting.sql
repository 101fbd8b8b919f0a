{#- Growth accounting at one grain (day, week or month), for the
    growth_accounting_<grain> models. Every user active in a period is exactly
    one of new (their first active period), retained (also active the period
    before) or resurrected (active before, but not the period before).
    Churned users were active the period before and not in this one. Every
    period from the first to the last appears, with zeros where nobody was
    active, so the identities hold between neighbouring rows.

    Incremental from the first period whose days changed (docs/adr/0019): a
    period's numbers depend on the period before it and on each user's first
    period, and both only move at or after a changed day, so every period
    before it is left as it is. A user's first period comes from dim_users,
    so a daily run reads the days it rebuilds, not every user-day. -#}
{% macro growth_accounting(grain) %}

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

    -- The rebuilt periods and the one before the first of them.
    select distinct
        user_days.user_id,
        {{ period_start('user_days.activity_date', grain) }} as period_start
    from {{ ref('fct_user_days') }} as user_days
    {% if is_incremental() %}
        cross join rebuild
        where user_days.activity_date >= {{ add_periods('rebuild.rebuild_from', -1, grain) }}
    {% endif %}

),

first_periods as (

    select
        user_id,
        {{ period_start('first_seen_date', grain) }} as first_period_start
    from {{ ref('dim_users') }}

),

bounds as (

    select max(period_start) as last_period_start
    from period_digests

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
    cross join rebuild
    inner join first_periods
        on current_period.user_id = first_periods.user_id
    left join user_periods as previous_period
        on
            current_period.user_id = previous_period.user_id
            and previous_period.period_start
            = {{ add_periods('current_period.period_start', -1, grain) }}
    where current_period.period_start >= rebuild.rebuild_from

),

churned_statuses as (

    select
        {{ add_periods('previous_period.period_start', 1, grain) }} as period_start,
        previous_period.user_id,
        'churned' as status
    from user_periods as previous_period
    cross join bounds
    cross join rebuild
    left join user_periods as current_period
        on
            previous_period.user_id = current_period.user_id
            and current_period.period_start
            = {{ add_periods('previous_period.period_start', 1, grain) }}
    where
        current_period.user_id is null
        and previous_period.period_start < bounds.last_period_start
        and previous_period.period_start >= {{ add_periods('rebuild.rebuild_from', -1, grain) }}

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
        period_digests.period_start,
        coalesce(status_counts.active_users, 0) as active_users,
        coalesce(status_counts.new_users, 0) as new_users,
        coalesce(status_counts.retained_users, 0) as retained_users,
        coalesce(status_counts.resurrected_users, 0) as resurrected_users,
        coalesce(status_counts.churned_users, 0) as churned_users,
        case
            when status_counts.churned_users > 0
                then cast(status_counts.new_users + status_counts.resurrected_users as {{ dbt.type_float() }})
                / status_counts.churned_users
        end as quick_ratio,
        period_digests.loads_digest
    from period_digests
    cross join rebuild
    left join status_counts on period_digests.period_start = status_counts.period_start
    where period_digests.period_start >= rebuild.rebuild_from

)

select * from final

{% endmacro %}
