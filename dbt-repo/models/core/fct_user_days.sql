{{
    config(
        materialized='incremental',
        incremental_strategy=('merge' if target.type == 'bigquery' else 'append'),
        on_schema_change='append_new_columns',
        partition_by=({'field': 'activity_date', 'data_type': 'date', 'granularity': 'day'}
            if target.type == 'bigquery' else none),
        cluster_by=(['user_id'] if target.type == 'bigquery' else none),
        pre_hook="{{ delete_replaced_days('activity_date', ref('fct_events'), 'event_date') }}"
    )
}}

with

events as (

    select * from {{ ref('fct_events') }}

    {% if is_incremental() %}
        -- Whole days, and only those whose load this table does not hold:
        -- the pre-hook has deleted the days fct_events no longer holds with
        -- the same load, so a daily run reads days, not history.
        where event_date in ({{ days_to_build('activity_date', ref('fct_events'), 'event_date') }})
    {% endif %}

),

user_days as (

    select
        user_id,
        event_date as activity_date,
        load_id,
        count(*) as events,
        count(case when event_type = 'miles_earned' then 1 end) as earn_events,
        count(case when event_type = 'miles_redeemed' then 1 end) as redeem_events,
        coalesce(sum(miles_earned), 0) as miles_earned,
        coalesce(sum(miles_redeemed), 0) as miles_redeemed,
        max(loaded_at) as last_loaded_at,
        {{ built_at() }} as _built_at
    from events
    group by user_id, event_date, load_id

)

select * from user_days
