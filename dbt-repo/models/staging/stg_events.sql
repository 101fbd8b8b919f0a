with

source_events as (

    select * from {{ source('raw', 'events') }}

),

normalised as (

    select
        {{ record_hash([
            'event_time', 'user_id', 'event_type', 'transaction_category', 'miles_amount',
            'platform', 'utm_source', 'country', 'gender'
        ]) }} as event_id,
        _event_time_local as event_time_local,
        {{ dbt.dateadd('hour', -var('source_utc_offset_hours'), '_event_time_local') }}
            as event_time_utc,
        cast(_event_time_local as date) as event_date,
        trim(user_id) as user_id,
        lower(trim(event_type)) as event_type,
        nullif(lower(trim(transaction_category)), '') as transaction_category,
        cast(miles_amount as {{ dbt.type_float() }}) as miles_amount,
        nullif(lower(trim(platform)), '') as platform,
        nullif(lower(trim(utm_source)), '') as utm_source,
        nullif(upper(trim(country)), '') as country,
        nullif(lower(trim(gender)), '') as gender,
        _interval_start as loaded_interval_start,
        _load_id as load_id,
        _loaded_at as loaded_at

    from source_events

)

select * from normalised
