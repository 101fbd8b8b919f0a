-- The segment table counts every active user once a day: its rows of a day
-- add up to that day's DAU and new users, counted independently from
-- fct_user_days and dim_users. A BI filter on any segments sums these rows.
with

segment_days as (

    select
        period_start,
        sum(active_users) as active_users,
        sum(new_users) as new_users
    from {{ ref('activity_by_segment_daily') }}
    group by period_start

),

user_days as (

    select
        activity_date,
        count(distinct user_id) as active_users
    from {{ ref('fct_user_days') }}
    group by activity_date

),

first_days as (

    select
        first_seen_date,
        count(*) as new_users
    from {{ ref('dim_users') }}
    group by first_seen_date

),

expected as (

    select
        user_days.activity_date as period_start,
        user_days.active_users,
        coalesce(first_days.new_users, 0) as new_users
    from user_days
    left join first_days on user_days.activity_date = first_days.first_seen_date

),

mismatches as (

    select
        expected.active_users as expected_active_users,
        segment_days.active_users as segment_active_users,
        expected.new_users as expected_new_users,
        segment_days.new_users as segment_new_users,
        coalesce(expected.period_start, segment_days.period_start) as period_start
    from expected
    full outer join segment_days on expected.period_start = segment_days.period_start
    where
        expected.period_start is null
        or segment_days.period_start is null
        or expected.active_users != segment_days.active_users
        or expected.new_users != segment_days.new_users

)

select * from mismatches
