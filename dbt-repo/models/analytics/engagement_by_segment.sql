{{ period_table_config(
    "{{ delete_from_first_changed_period(period_digests_sql(ref('fct_user_days'), 'activity_date', 'week')) }}"
) }}

-- Incremental from the first week whose days changed (docs/adr/0019): a
-- changed day moves its own week and, through a user's first event (their
-- acquisition source, country and first week), only weeks at or after it.
with

week_digests as {{ cte_materialized() }} (

    -- The days' loads are read from fct_user_days: the same days as fct_events, a quarter of the rows.
    {{ period_digests_sql(ref('fct_user_days'), 'activity_date', 'week') }}

),

rebuild as (

    {{ rebuild_from_sql('week_digests') }}

),

users as (

    select
        user_id,
        {{ period_start('first_seen_date', 'week') }} as first_period_start,
        coalesce(acquisition_utm_source, 'unknown') as acquisition_utm_source,
        coalesce(country, 'unknown') as country
    from {{ ref('dim_users') }}

),

user_week_platforms as (

    -- Events are summed per user, week and platform first, so each segment
    -- counts users as rows rather than a distinct count over every event.
    select
        user_id,
        {{ period_start('event_date', 'week') }} as period_start,
        coalesce(platform, 'unknown') as platform,
        count(*) as events,
        count(case when event_type = 'miles_earned' then 1 end) as earn_events,
        count(case when event_type = 'miles_redeemed' then 1 end) as redeem_events,
        coalesce(sum(miles_earned), 0) as miles_earned,
        coalesce(sum(miles_redeemed), 0) as miles_redeemed
    from {{ ref('fct_events') }}
    -- In a full build, the first week: everything.
    where event_date >= (select rebuild.rebuild_from from rebuild)
    group by user_id, {{ period_start('event_date', 'week') }}, coalesce(platform, 'unknown')

),

user_weeks as (

    select
        user_id,
        period_start,
        sum(events) as events,
        sum(earn_events) as earn_events,
        sum(redeem_events) as redeem_events,
        sum(miles_earned) as miles_earned,
        sum(miles_redeemed) as miles_redeemed
    from user_week_platforms
    group by user_id, period_start

),

segmented_users as (

    -- Platform is where the events happened (a user can be on several);
    -- acquisition source and country are the user's, so they add up to all users.
    select
        'platform' as segment_type,
        user_week_platforms.platform as segment_value,
        user_week_platforms.period_start,
        users.first_period_start,
        user_week_platforms.events,
        user_week_platforms.earn_events,
        user_week_platforms.redeem_events,
        user_week_platforms.miles_earned,
        user_week_platforms.miles_redeemed
    from user_week_platforms
    inner join users on user_week_platforms.user_id = users.user_id

    union all

    select
        'utm_source' as segment_type,
        users.acquisition_utm_source as segment_value,
        user_weeks.period_start,
        users.first_period_start,
        user_weeks.events,
        user_weeks.earn_events,
        user_weeks.redeem_events,
        user_weeks.miles_earned,
        user_weeks.miles_redeemed
    from user_weeks
    inner join users on user_weeks.user_id = users.user_id

    union all

    select
        'country' as segment_type,
        users.country as segment_value,
        user_weeks.period_start,
        users.first_period_start,
        user_weeks.events,
        user_weeks.earn_events,
        user_weeks.redeem_events,
        user_weeks.miles_earned,
        user_weeks.miles_redeemed
    from user_weeks
    inner join users on user_weeks.user_id = users.user_id

),

segments as (

    select
        period_start,
        segment_type,
        segment_value,
        count(*) as active_users,
        count(case when first_period_start = period_start then 1 end) as new_users,
        cast(sum(events) as {{ dbt.type_bigint() }}) as events,
        cast(sum(events) as {{ dbt.type_float() }}) / count(*) as events_per_active_user,
        cast(sum(earn_events) as {{ dbt.type_bigint() }}) as earn_events,
        cast(sum(redeem_events) as {{ dbt.type_bigint() }}) as redeem_events,
        sum(miles_earned) as miles_earned,
        sum(miles_redeemed) as miles_redeemed
    from segmented_users
    group by period_start, segment_type, segment_value

),

final as (

    select
        segments.*,
        week_digests.loads_digest
    from segments
    inner join week_digests on segments.period_start = week_digests.period_start

)

select * from final
