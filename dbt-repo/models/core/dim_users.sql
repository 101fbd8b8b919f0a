{{
    config(
        materialized='incremental',
        incremental_strategy=('merge' if target.type == 'bigquery' else 'append'),
        on_schema_change='append_new_columns',
        cluster_by=(['user_id'] if target.type == 'bigquery' else none),
        pre_hook="{{ delete_changed_keys('user_id', user_load_digests()) }}"
    )
}}

-- Incremental by user (docs/adr/0019): a user's row is recomputed, from all
-- of their events, when the fingerprint of the days they were active on (each
-- day with its load) differs from the one the row was built from: a day of
-- theirs re-delivered, added or gone. Every other user is left as it is.
-- In a full build each step reads fct_events itself rather than through one
-- `events` CTE, which would copy every event (three times slower at 10M
-- events); an incremental run reads its users' events once, into a CTE.
{%- set events -%}
    {%- if is_incremental() -%}
        user_events
    {%- else -%}
        {{ ref('fct_events') }}
    {%- endif -%}
{%- endset %}

with

user_digests as {{ cte_materialized() }} (

    {{ user_load_digests() }}

),

{% if is_incremental() %}
    users_to_build as {{ cte_materialized() }} (

        {{ keys_to_build('user_id', 'select * from user_digests') }}

    ),

    user_events as {{ cte_materialized() }} (

        -- Read once for the steps below: the events of the users to rebuild only.
        select * from {{ ref('fct_events') }}
        where user_id in (select users_to_build.user_id from users_to_build)

    ),
{% endif %}

lifetime as (

    select
        events.user_id,
        min(events.event_time_local) as first_seen_at,
        max(events.event_time_local) as last_seen_at,
        max(case when events.gender is not null then events.event_time_local end) as last_gender_at,
        count(*) as lifetime_events,
        coalesce(sum(events.miles_earned), 0) as lifetime_miles_earned,
        coalesce(sum(events.miles_redeemed), 0) as lifetime_miles_redeemed
    from {{ events }} as events
    group by events.user_id

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
    from {{ events }} as events
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
    from {{ events }} as events
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
        events.user_id,
        events.platform
    from {{ events }} as events
    where events.platform is not null

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
        user_digests.loads_digest,
        lifetime.lifetime_events,
        lifetime.lifetime_miles_earned,
        lifetime.lifetime_miles_redeemed,
        cast(lifetime.first_seen_at as date) as first_seen_date,
        cast(lifetime.last_seen_at as date) as last_seen_date,
        coalesce(platforms_used.platform_count, 0) as platform_count,
        {{ built_at() }} as _built_at
    from lifetime
    inner join user_digests on lifetime.user_id = user_digests.user_id
    inner join first_touch on lifetime.user_id = first_touch.user_id
    left join latest_gender on lifetime.user_id = latest_gender.user_id
    left join platforms_used on lifetime.user_id = platforms_used.user_id

)

select * from final
