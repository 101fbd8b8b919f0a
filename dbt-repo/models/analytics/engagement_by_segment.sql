with

events as (

    select
        user_id,
        event_type,
        miles_earned,
        miles_redeemed,
        {{ period_start('event_date', 'week') }} as period_start,
        coalesce(platform, 'unknown') as platform
    from {{ ref('fct_events') }}

),

users as (

    select
        user_id,
        {{ period_start('first_seen_date', 'week') }} as first_period_start,
        coalesce(acquisition_utm_source, 'unknown') as acquisition_utm_source,
        coalesce(country, 'unknown') as country
    from {{ ref('dim_users') }}

),

user_events as (

    select
        events.*,
        users.first_period_start,
        users.acquisition_utm_source,
        users.country
    from events
    inner join users on events.user_id = users.user_id

),

segmented_events as (

    -- Platform is where the event happened (a user can be on several);
    -- acquisition source and country are the user's, so they add up to all users.
    select
        'platform' as segment_type,
        user_events.platform as segment_value,
        user_events.*
    from user_events

    union all

    select
        'utm_source' as segment_type,
        user_events.acquisition_utm_source as segment_value,
        user_events.*
    from user_events

    union all

    select
        'country' as segment_type,
        user_events.country as segment_value,
        user_events.*
    from user_events

),

final as (

    select
        period_start,
        segment_type,
        segment_value,
        count(distinct user_id) as active_users,
        count(distinct case when first_period_start = period_start then user_id end) as new_users,
        count(*) as events,
        cast(count(*) as {{ dbt.type_float() }}) / count(distinct user_id) as events_per_active_user,
        count(case when event_type = 'miles_earned' then 1 end) as earn_events,
        count(case when event_type = 'miles_redeemed' then 1 end) as redeem_events,
        coalesce(sum(miles_earned), 0) as miles_earned,
        coalesce(sum(miles_redeemed), 0) as miles_redeemed
    from segmented_events
    group by period_start, segment_type, segment_value

)

select * from final
