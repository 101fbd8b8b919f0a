with

user_days as (

    select distinct
        user_id,
        event_date as activity_date
    from {{ ref('fct_events') }}

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

trailing_activity as (

    -- Each day paired with the users active in the 30 days up to and including it.
    select
        days.day as period_start,
        user_days.user_id,
        {{ dbt.datediff('user_days.activity_date', 'days.day', 'day') }} as days_ago
    from days
    inner join user_days
        on
            days.day >= user_days.activity_date
            and {{ add_days('days.day', -30) }} < user_days.activity_date

),

trailing_counts as (

    select
        period_start,
        count(distinct case when days_ago = 0 then user_id end) as dau,
        count(distinct case when days_ago < 7 then user_id end) as wau,
        count(distinct case when days_ago < 28 then user_id end) as mau_28d,
        count(distinct user_id) as mau_30d
    from trailing_activity
    group by period_start

),

final as (

    select
        days.day as period_start,
        coalesce(trailing_counts.dau, 0) as dau,
        coalesce(trailing_counts.wau, 0) as wau,
        coalesce(trailing_counts.mau_28d, 0) as mau_28d,
        coalesce(trailing_counts.mau_30d, 0) as mau_30d,
        cast(trailing_counts.dau as {{ dbt.type_float() }})
        / nullif(trailing_counts.wau, 0) as dau_wau_ratio,
        cast(trailing_counts.dau as {{ dbt.type_float() }})
        / nullif(trailing_counts.mau_28d, 0) as dau_mau_ratio,
        cast(trailing_counts.wau as {{ dbt.type_float() }})
        / nullif(trailing_counts.mau_28d, 0) as wau_mau_ratio,
        {{ dbt.datediff('bounds.first_day', 'days.day', 'day') }} >= 29 as has_full_30d_history
    from days
    cross join bounds
    left join trailing_counts on days.day = trailing_counts.period_start

)

select * from final
