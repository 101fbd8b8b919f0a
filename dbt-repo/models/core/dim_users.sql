with

events as (

    select * from {{ ref('fct_events') }}

),

ranked_events as (

    select
        user_id,
        utm_source,
        country,
        gender,
        row_number() over (
            partition by user_id order by event_time_local asc, event_id asc
        ) as first_rank,
        row_number() over (
            partition by user_id
            order by case when gender is null then 1 else 0 end asc, event_time_local desc, event_id asc
        ) as latest_gender_rank
    from events

),

first_touch as (

    select
        user_id,
        utm_source as acquisition_utm_source,
        country
    from ranked_events
    where first_rank = 1

),

latest_gender as (

    select
        user_id,
        gender
    from ranked_events
    where latest_gender_rank = 1 and gender is not null

),

user_platforms as (

    select distinct
        user_id,
        platform
    from events
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

lifetime as (

    select
        user_id,
        min(event_time_local) as first_seen_at,
        max(event_time_local) as last_seen_at,
        count(*) as lifetime_events,
        coalesce(sum(miles_earned), 0) as lifetime_miles_earned,
        coalesce(sum(miles_redeemed), 0) as lifetime_miles_redeemed
    from events
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
