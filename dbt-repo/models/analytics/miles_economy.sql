with

miles_events as (

    select
        event_date,
        user_id,
        event_type,
        coalesce(transaction_category, 'uncategorised') as transaction_category,
        coalesce(miles_earned, 0) as miles_earned,
        coalesce(miles_redeemed, 0) as miles_redeemed
    from {{ ref('fct_events') }}
    where event_type in ('miles_earned', 'miles_redeemed')

),

miles_events_by_grain as (

    select
        'week' as period_grain,
        {{ period_start('event_date', 'week') }} as period_start,
        miles_events.*
    from miles_events

    union all

    select
        'month' as period_grain,
        {{ period_start('event_date', 'month') }} as period_start,
        miles_events.*
    from miles_events

),

economy as (

    select
        period_grain,
        period_start,
        transaction_category,
        sum(miles_earned) as miles_earned,
        sum(miles_redeemed) as miles_redeemed,
        count(case when event_type = 'miles_earned' then 1 end) as earn_events,
        count(case when event_type = 'miles_redeemed' then 1 end) as redeem_events,
        count(distinct case when event_type = 'miles_earned' then user_id end) as earning_users,
        count(distinct case when event_type = 'miles_redeemed' then user_id end) as redeeming_users
    from miles_events_by_grain
    group by period_grain, period_start, transaction_category

),

final as (

    select
        *,
        miles_earned - miles_redeemed as net_miles
    from economy

)

select * from final
