{{ period_table_config(
    "{{ delete_from_first_changed_period(spine_digests_sql(ref('fct_user_days'), 'activity_date', 'day')) }}"
) }}

-- Incremental from the first day whose data changed (docs/adr/0019): a day's
-- rolling counts depend on its own 30 days and nothing older, so the rows
-- before it stay and the rebuild reads 30 days before it onwards.
with

day_digests as {{ cte_materialized() }} (

    {{ spine_digests_sql(ref('fct_user_days'), 'activity_date', 'day') }}

),

rebuild as (

    {{ rebuild_from_sql('day_digests') }}

),

bounds as (

    select
        min(day_digests.period_start) as first_day,
        max(day_digests.period_start) as last_day,
        {{ add_days('min(rebuild.rebuild_from)', -30) }} as window_start
    from day_digests
    cross join rebuild

),

user_days as (

    select
        user_days.user_id,
        user_days.activity_date,
        lead(user_days.activity_date) over (
            partition by user_days.user_id order by user_days.activity_date
        ) as next_activity_date
    from {{ ref('fct_user_days') }} as user_days
    cross join bounds
    where user_days.activity_date >= bounds.window_start

),

days as (

    select day_digests.period_start as grid_day
    from day_digests
    cross join bounds
    where day_digests.period_start >= bounds.window_start

),

windows as (

    select 1 as window_days
    union all
    select 7
    union all
    select 28
    union all
    select 30

),

coverage as (

    -- A user is in a trailing window of w days on each of the w days that
    -- start with an active day, until their next active day takes over: one
    -- stretch per active day, never overlapping, so counting the stretches
    -- that cover a day counts distinct users in linear time, where joining
    -- every day to its last 30 days of activity would cost 30 rows per
    -- user-day. Only stretches from the window's start are counted: older
    -- ones end before the first rebuilt day.
    select
        windows.window_days,
        user_days.activity_date as covered_from,
        case
            when
                user_days.next_activity_date is null
                or user_days.next_activity_date > {{ add_days('user_days.activity_date', 'windows.window_days') }}
                then {{ add_days('user_days.activity_date', 'windows.window_days') }}
            else user_days.next_activity_date
        end as covered_until
    from user_days
    cross join windows

),

coverage_changes as (

    select
        window_days,
        covered_from as change_day,
        count(*) as users_in
    from coverage
    group by window_days, covered_from

),

coverage_ends as (

    select
        window_days,
        covered_until as change_day,
        count(*) as users_out
    from coverage
    group by window_days, covered_until

),

window_days_grid as (

    select
        days.grid_day,
        windows.window_days,
        coalesce(coverage_changes.users_in, 0) - coalesce(coverage_ends.users_out, 0) as net_change
    from days
    cross join windows
    left join coverage_changes
        on days.grid_day = coverage_changes.change_day and windows.window_days = coverage_changes.window_days
    left join coverage_ends
        on days.grid_day = coverage_ends.change_day and windows.window_days = coverage_ends.window_days

),

window_counts as (

    select
        grid_day,
        window_days,
        sum(net_change) over (
            partition by window_days order by grid_day rows between unbounded preceding and current row
        ) as active_users
    from window_days_grid

),

trailing_counts as (

    select
        grid_day as period_start,
        cast(sum(case when window_days = 1 then active_users else 0 end) as {{ dbt.type_bigint() }})
            as dau,
        cast(sum(case when window_days = 7 then active_users else 0 end) as {{ dbt.type_bigint() }})
            as wau,
        cast(sum(case when window_days = 28 then active_users else 0 end) as {{ dbt.type_bigint() }})
            as mau_28d,
        cast(sum(case when window_days = 30 then active_users else 0 end) as {{ dbt.type_bigint() }})
            as mau_30d
    from window_counts
    group by grid_day

),

final as (

    select
        trailing_counts.period_start,
        trailing_counts.dau,
        trailing_counts.wau,
        trailing_counts.mau_28d,
        trailing_counts.mau_30d,
        cast(trailing_counts.dau as {{ dbt.type_float() }})
        / nullif(trailing_counts.wau, 0) as dau_wau_ratio,
        cast(trailing_counts.dau as {{ dbt.type_float() }})
        / nullif(trailing_counts.mau_28d, 0) as dau_mau_ratio,
        cast(trailing_counts.wau as {{ dbt.type_float() }})
        / nullif(trailing_counts.mau_28d, 0) as wau_mau_ratio,
        {{ dbt.datediff('bounds.first_day', 'trailing_counts.period_start', 'day') }} >= 29
            as has_full_30d_history,
        day_digests.loads_digest
    from trailing_counts
    cross join bounds
    cross join rebuild
    inner join day_digests on trailing_counts.period_start = day_digests.period_start
    where trailing_counts.period_start >= rebuild.rebuild_from

)

select * from final
