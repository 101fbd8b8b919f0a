with

user_days as (

    select
        user_id,
        activity_date,
        lead(activity_date) over (partition by user_id order by activity_date) as next_activity_date
    from {{ ref('fct_user_days') }}

),

bounds as (

    select
        min(activity_date) as first_day,
        max(activity_date) as last_day
    from user_days

),

days as (

    {{ day_spine('bounds', 'bounds.first_day', 'bounds.last_day') }}

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
    -- user-day.
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
        days.day,
        windows.window_days,
        coalesce(coverage_changes.users_in, 0) - coalesce(coverage_ends.users_out, 0) as net_change
    from days
    cross join windows
    left join coverage_changes
        on days.day = coverage_changes.change_day and windows.window_days = coverage_changes.window_days
    left join coverage_ends
        on days.day = coverage_ends.change_day and windows.window_days = coverage_ends.window_days

),

window_counts as (

    select
        day,
        window_days,
        sum(net_change) over (
            partition by window_days order by day rows between unbounded preceding and current row
        ) as active_users
    from window_days_grid

),

trailing_counts as (

    select
        day as period_start,
        cast(sum(case when window_days = 1 then active_users else 0 end) as {{ dbt.type_bigint() }})
            as dau,
        cast(sum(case when window_days = 7 then active_users else 0 end) as {{ dbt.type_bigint() }})
            as wau,
        cast(sum(case when window_days = 28 then active_users else 0 end) as {{ dbt.type_bigint() }})
            as mau_28d,
        cast(sum(case when window_days = 30 then active_users else 0 end) as {{ dbt.type_bigint() }})
            as mau_30d
    from window_counts
    group by day

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
            as has_full_30d_history
    from trailing_counts
    cross join bounds

)

select * from final
