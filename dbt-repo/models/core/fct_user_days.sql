{{
    config(
        materialized='incremental',
        unique_key=(none if target.type == 'bigquery' else 'activity_date'),
        incremental_strategy=('insert_overwrite' if target.type == 'bigquery' else 'delete+insert'),
        on_schema_change='append_new_columns',
        partition_by=({'field': 'activity_date', 'data_type': 'date', 'granularity': 'day'}
            if target.type == 'bigquery' else none),
        cluster_by=(['user_id'] if target.type == 'bigquery' else none)
    )
}}

with

events as (

    select * from {{ ref('fct_events') }}

    {% if is_incremental() %}
        -- Rebuild whole days: every day that received an event since the
        -- newest load this table has seen (less the same look-back as
        -- fct_events), from all of that day's events. Every other day is
        -- left as it is, so a daily run reads days, not history.
        where event_date in (
            select distinct event_date
            from {{ ref('fct_events') }}
            where loaded_at >= (
                select {{ dbt.dateadd('day', -var('lookback_days'), 'max(last_loaded_at)') }}
                from {{ this }}
            )
        )
    {% endif %}

),

user_days as (

    select
        user_id,
        event_date as activity_date,
        count(*) as events,
        count(case when event_type = 'miles_earned' then 1 end) as earn_events,
        count(case when event_type = 'miles_redeemed' then 1 end) as redeem_events,
        coalesce(sum(miles_earned), 0) as miles_earned,
        coalesce(sum(miles_redeemed), 0) as miles_redeemed,
        max(loaded_at) as last_loaded_at
    from events
    group by user_id, event_date

)

select * from user_days
