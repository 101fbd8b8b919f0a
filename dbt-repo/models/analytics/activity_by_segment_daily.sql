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
        count(*) as events,
        coalesce(sum(miles_earned), 0) as miles_earned,
        coalesce(sum(miles_redeemed), 0) as miles_redeemed
    from {{ ref('fct_events') }}
    -- In a full build, the first day: everything.
    where event_date >= (select rebuild.rebuild_from from rebuild)
    group by user_id, event_date, coalesce(platform, 'unknown')

),

-- The user's platform of the day is where their first event of the day
-- happened (ties broken by event id, then platform): a user counts once a
-- day. Found by aggregates and joins, not by a window ranking every user-day
-- (at 24M events that window did not fit DuckDB's memory limit, where
-- aggregates and joins spill to disk), and the event ids of a tie are read
-- only for the user-days that have one: DuckDB keeps each group's min() of a
-- string outside its memory limit, which took dbt to 3 GiB at 25M events.
first_event_times as (

    select
        user_id,
        period_start,
        min(first_event_at) as first_event_at
    from user_day_platforms
    group by user_id, period_start

),

first_event_platforms as (

    select
        user_day_platforms.user_id,
        user_day_platforms.period_start,
        user_day_platforms.platform
    from user_day_platforms
    inner join first_event_times
        on
            user_day_platforms.user_id = first_event_times.user_id
            and user_day_platforms.period_start = first_event_times.period_start
            and user_day_platforms.first_event_at = first_event_times.first_event_at

),

first_platform_counts as (

    select
        user_id,
        period_start,
        count(*) as platforms,
        min(platform) as platform
    from first_event_platforms
    group by user_id, period_start

),

-- Two or more platforms at the user's first time of the day: each one's
-- first event id (the smallest of the day on that platform) decides.
tied_platform_event_ids as (

    select
        first_event_platforms.user_id,
        first_event_platforms.period_start,
        first_event_platforms.platform,
        min(events.event_id) as first_event_id
    from first_event_platforms
    inner join first_platform_counts
        on
            first_event_platforms.user_id = first_platform_counts.user_id
            and first_event_platforms.period_start = first_platform_counts.period_start
    inner join {{ ref('fct_events') }} as events
        on
            first_event_platforms.user_id = events.user_id
            and first_event_platforms.period_start = events.event_date
            and first_event_platforms.platform = coalesce(events.platform, 'unknown')
    where
        first_platform_counts.platforms > 1
        and events.event_date >= (select rebuild.rebuild_from from rebuild)
    group by
        first_event_platforms.user_id,
        first_event_platforms.period_start,
        first_event_platforms.platform

),

tied_first_event_ids as (

    select
        user_id,
        period_start,
        min(first_event_id) as first_event_id
    from tied_platform_event_ids
    group by user_id, period_start

),

counted_platforms as (

    select
        user_id,
        period_start,
        platform
    from first_platform_counts
    where platforms = 1

    union all

    select
        tied_platform_event_ids.user_id,
        tied_platform_event_ids.period_start,
        min(tied_platform_event_ids.platform) as platform
    from tied_platform_event_ids
    inner join tied_first_event_ids
        on
            tied_platform_event_ids.user_id = tied_first_event_ids.user_id
            and tied_platform_event_ids.period_start = tied_first_event_ids.period_start
            and tied_platform_event_ids.first_event_id = tied_first_event_ids.first_event_id
    group by tied_platform_event_ids.user_id, tied_platform_event_ids.period_start

),

segmented_user_days as (

    select
        user_day_platforms.period_start,
        user_day_platforms.platform,
        users.country,
        users.acquisition_utm_source,
        user_day_platforms.user_id,
        user_day_platforms.events,
        user_day_platforms.miles_earned,
        user_day_platforms.miles_redeemed,
        user_day_platforms.platform = counted_platforms.platform as is_counted_user,
        users.first_seen_date = user_day_platforms.period_start as is_new_user
    from user_day_platforms
    inner join counted_platforms
        on
            user_day_platforms.user_id = counted_platforms.user_id
            and user_day_platforms.period_start = counted_platforms.period_start
    inner join users on user_day_platforms.user_id = users.user_id

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
