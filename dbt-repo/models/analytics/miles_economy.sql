{{ period_table_config("{{ delete_changed_period_keys(miles_period_digests_sql()) }}") }}

-- Incremental by period (docs/adr/0019): a week's or a month's flows depend on
-- its own days only, so exactly the periods whose days with miles changed are
-- recomputed, however old, and no other.
with

period_digests as {{ cte_materialized() }} (

    {{ miles_period_digests_sql() }}

),

{% if is_incremental() %}
periods_to_build as (

    select
        period_grain,
        period_start
    from (
        select period_grain, period_start, loads_digest from period_digests
        {{ dbt.except() }}
        select period_grain, period_start, loads_digest from {{ this }}
    ) as missing_periods

),
{% endif %}

miles_events as (

    select
        event_date,
        user_id,
        event_type,
        coalesce(transaction_category, 'uncategorised') as transaction_category,
        coalesce(miles_earned, 0) as miles_earned,
        coalesce(miles_redeemed, 0) as miles_redeemed
    from {{ ref('fct_events') }}
    where event_type in ({{ miles_event_types() }})
    {% if is_incremental() %}
        and event_date >= (select min(periods_to_build.period_start) from periods_to_build)
    {% endif %}

),

user_day_flows as (

    -- Events are summed per user first, so counting users is counting rows
    -- rather than a distinct count over every event.
    select
        event_date,
        transaction_category,
        user_id,
        sum(miles_earned) as miles_earned,
        sum(miles_redeemed) as miles_redeemed,
        count(case when event_type = 'miles_earned' then 1 end) as earn_events,
        count(case when event_type = 'miles_redeemed' then 1 end) as redeem_events
    from miles_events
    group by event_date, transaction_category, user_id

),

user_period_flows as (

    select
        'week' as period_grain,
        {{ period_start('event_date', 'week') }} as period_start,
        transaction_category,
        user_id,
        sum(miles_earned) as miles_earned,
        sum(miles_redeemed) as miles_redeemed,
        sum(earn_events) as earn_events,
        sum(redeem_events) as redeem_events
    from user_day_flows
    group by {{ period_start('event_date', 'week') }}, transaction_category, user_id

    union all

    select
        'month' as period_grain,
        {{ period_start('event_date', 'month') }} as period_start,
        transaction_category,
        user_id,
        sum(miles_earned) as miles_earned,
        sum(miles_redeemed) as miles_redeemed,
        sum(earn_events) as earn_events,
        sum(redeem_events) as redeem_events
    from user_day_flows
    group by {{ period_start('event_date', 'month') }}, transaction_category, user_id

),

periods_built as (

    select user_period_flows.*
    from user_period_flows
    {% if is_incremental() %}
        inner join periods_to_build
            on
                user_period_flows.period_grain = periods_to_build.period_grain
                and user_period_flows.period_start = periods_to_build.period_start
    {% endif %}

),

economy as (

    select
        period_grain,
        period_start,
        transaction_category,
        sum(miles_earned) as miles_earned,
        sum(miles_redeemed) as miles_redeemed,
        cast(sum(earn_events) as {{ dbt.type_bigint() }}) as earn_events,
        cast(sum(redeem_events) as {{ dbt.type_bigint() }}) as redeem_events,
        count(case when earn_events > 0 then 1 end) as earning_users,
        count(case when redeem_events > 0 then 1 end) as redeeming_users
    from periods_built
    group by period_grain, period_start, transaction_category

),

final as (

    select
        economy.*,
        period_digests.loads_digest,
        economy.miles_earned - economy.miles_redeemed as net_miles
    from economy
    inner join period_digests
        on
            economy.period_grain = period_digests.period_grain
            and economy.period_start = period_digests.period_start

)

select * from final
