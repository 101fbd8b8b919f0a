with

orders as (

    select * from {{ ref('stg_shop__orders') }}

),

users as (

    select * from {{ ref('dim_users') }}

),

orders_per_user as (

    select
        user_id,
        count(*) as orders,
        sum(case when status = 'paid' then miles_spent else 0 end) as miles_spent_paid
    from orders
    group by user_id

)

select
    users.user_id,
    users.country,
    users.acquisition_utm_source,
    coalesce(orders_per_user.orders, 0) as orders,
    coalesce(orders_per_user.miles_spent_paid, 0) as miles_spent_paid
from users
left join orders_per_user on users.user_id = orders_per_user.user_id
