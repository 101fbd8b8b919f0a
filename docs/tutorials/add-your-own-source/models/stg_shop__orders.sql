with

source_orders as (

    select * from {{ source('shop', 'orders') }}

),

typed as (

    select
        order_id,
        _event_time_local as ordered_at_local,
        cast(_event_time_local as date) as order_date,
        trim(user_id) as user_id,
        lower(trim(status)) as status,
        cast(miles_spent as bigint) as miles_spent
    from source_orders

)

select * from typed
