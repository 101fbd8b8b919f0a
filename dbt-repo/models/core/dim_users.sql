-- Each step reads fct_events itself rather than through one `events` CTE:
-- DuckDB materialises a CTE that is read more than once, which here would
-- copy every event (three times slower at 10M events).
with

lifetime as (

    select
        user_id,
        min(event_time_local) as first_seen_at,
        max(event_time_local) as last_seen_at,
        max(case when gender is not null then event_time_local end) as last_gender_at,
        count(*) as lifetime_events,
        coalesce(sum(miles_earned), 0) as lifetime_miles_earned,
        coalesce(sum(miles_redeemed), 0) as lifetime_miles_redeemed
    from {{ ref('fct_events') }}
    group by user_id

),

-- The first event and the newest event with a gender are found by joining
-- each user's times back to their events, and only the few events at that
-- exact time are ranked (by event_id, for ties): ranking all of a user's
-- events would sort every event ever sent.
first_events as (

    select
        events.user_id,
        events.utm_source,
        events.country,
        row_number() over (partition by events.user_id order by events.event_id asc) as tie_rank
    from {{ ref('fct_events') }} as events
    inner join lifetime
        on
            events.user_id = lifetime.user_id
            and events.event_time_local = lifetime.first_seen_at

),

first_touch as (

    select
        user_id,
        utm_source as acquisition_utm_source,
        country
    from first_events
    where tie_rank = 1

),

gender_events as (

    select
        events.user_id,
        events.gender,
        row_number() over (partition by events.user_id order by events.event_id asc) as tie_rank
    from {{ ref('fct_events') }} as events
    inner join lifetime
        on
            events.user_id = lifetime.user_id
            and events.event_time_local = lifetime.last_gender_at
    where events.gender is not null

),

latest_gender as (

    select
        user_id,
        gender
    from gender_events
    where tie_rank = 1

),

user_platforms as (

    select distinct
        user_id,
        platform
    from {{ ref('fct_events') }}
    where platform is not null

),

platforms_used as (

    select
        user_id,
        {{ dbt.listagg('platform', "','", 'order by platform') }} as platforms_used,
        count(*) as platform_count
    from user_platforms
    group by user_id

),

final as (

    select
        lifetime.user_id,
        lifetime.first_seen_at,
        lifetime.last_seen_at,
        first_touch.acquisition_utm_source,
        first_touch.country,
        latest_gender.gender,
        platforms_used.platforms_used,
        lifetime.lifetime_events,
        lifetime.lifetime_miles_earned,
        lifetime.lifetime_miles_redeemed,
        cast(lifetime.first_seen_at as date) as first_seen_date,
        cast(lifetime.last_seen_at as date) as last_seen_date,
        coalesce(platforms_used.platform_count, 0) as platform_count
    from lifetime
    inner join first_touch on lifetime.user_id = first_touch.user_id
    left join latest_gender on lifetime.user_id = latest_gender.user_id
    left join platforms_used on lifetime.user_id = platforms_used.user_id

)

select * from final
