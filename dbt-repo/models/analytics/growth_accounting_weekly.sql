with

events as (

    select
        user_id,
        event_date
    from {{ ref('fct_events') }}

),

user_periods as (

    select distinct
        user_id,
        {{ week_start('event_date') }} as period_start
    from events

),

first_periods as (

    select
        user_id,
        min(period_start) as first_period_start
    from user_periods
    group by user_id

),

last_period as (

    select max(period_start) as period_start from user_periods

),

active_statuses as (

    select
        current_period.period_start,
        current_period.user_id,
        case
            when current_period.period_start = first_periods.first_period_start then 'new'
            when previous_period.user_id is not null then 'retained'
            else 'resurrected'
        end as status
    from user_periods as current_period
    inner join first_periods
        on current_period.user_id = first_periods.user_id
    left join user_periods as previous_period
        on
            current_period.user_id = previous_period.user_id
            and previous_period.period_start = {{ add_days('current_period.period_start', -7) }}

),

churned_statuses as (

    select
        {{ add_days('previous_period.period_start', 7) }} as period_start,
        previous_period.user_id,
        'churned' as status
    from user_periods as previous_period
    cross join last_period
    left join user_periods as current_period
        on
            previous_period.user_id = current_period.user_id
            and current_period.period_start = {{ add_days('previous_period.period_start', 7) }}
    where
        current_period.user_id is null
        and previous_period.period_start < last_period.period_start

),

statuses as (

    select * from active_statuses
    union all
    select * from churned_statuses

),

status_counts as (

    select
        period_start,
        count(case when status != 'churned' then 1 end) as active_users,
        count(case when status = 'new' then 1 end) as new_users,
        count(case when status = 'retained' then 1 end) as retained_users,
        count(case when status = 'resurrected' then 1 end) as resurrected_users,
        count(case when status = 'churned' then 1 end) as churned_users
    from statuses
    group by period_start

),

final as (

    select
        *,
        case
            when churned_users > 0
                then cast(new_users + resurrected_users as {{ dbt.type_float() }}) / churned_users
        end as quick_ratio
    from status_counts

)

select * from final
