{{ period_table_config(
    "{{ delete_from_first_changed_period(period_digests_sql(ref('fct_user_days'), 'activity_date', 'day')) }}"
) }}

-- Incremental from the first day whose data changed (docs/adr/0019): a
-- changed day moves its own rows and, through a user's first event (their
-- acquisition source, country and first day), only days at or after it.
--
-- One row per day, platform, country and acquisition source, so a BI tool can
-- filter on any of them and add the rows up: every user counts on one row a
-- day (the platform of their first event that day), never twice.
with

day_digests as {{ cte_materialized() }} (

    {{ period_digests_sql(ref('fct_user_days'), 'activity_date', 'day') }}

),

rebuild as (

    {{ rebuild_from_sql('day_digests') }}

),

users as (

    select
        user_id,
        first_seen_date,
        coalesce(acquisition_utm_source, 'unknown') as acquisition_utm_source,
        coalesce(country, 'unknown') as country
    from {{ ref('dim_users') }}

),

user_day_platforms as (

    select
        user_id,
        event_date as period_start,
        coalesce(platform, 'unknown') as platform,
        min(event_time_utc) as first_event_at,
        min(event_id) as first_event_id,
        count(*) as events,
        coalesce(sum(miles_earned), 0) as miles_earned,
        coalesce(sum(miles_redeemed), 0) as miles_redeemed
    from {{ ref('fct_events') }}
    -- In a full build, the first day: everything.
    where event_date >= (select rebuild.rebuild_from from rebuild)
    group by user_id, event_date, coalesce(platform, 'unknown')

),

ranked_user_day_platforms as (

    -- The user's platform of the day is where their first event of the day
    -- happened (ties broken by event id): a user counts once a day.
    select
        *,
        row_number() over (
            partition by user_id, period_start
            order by first_event_at, first_event_id, platform
        ) as platform_rank
    from user_day_platforms

),

segmented_user_days as (

    select
        ranked_user_day_platforms.period_start,
        ranked_user_day_platforms.platform,
        users.country,
        users.acquisition_utm_source,
        ranked_user_day_platforms.user_id,
        ranked_user_day_platforms.events,
        ranked_user_day_platforms.miles_earned,
        ranked_user_day_platforms.miles_redeemed,
        ranked_user_day_platforms.platform_rank = 1 as is_counted_user,
        users.first_seen_date = ranked_user_day_platforms.period_start as is_new_user
    from ranked_user_day_platforms
    inner join users on ranked_user_day_platforms.user_id = users.user_id

),

segments as (

    select
        period_start,
        platform,
        country,
        acquisition_utm_source,
        count(case when is_counted_user then 1 end) as active_users,
        count(case when is_counted_user and is_new_user then 1 end) as new_users,
        cast(sum(events) as {{ dbt.type_bigint() }}) as events,
        sum(miles_earned) as miles_earned,
        sum(miles_redeemed) as miles_redeemed
    from segmented_user_days
    group by period_start, platform, country, acquisition_utm_source

),

final as (

    select
        segments.*,
        day_digests.loads_digest
    from segments
    inner join day_digests on segments.period_start = day_digests.period_start

)

select * from final
