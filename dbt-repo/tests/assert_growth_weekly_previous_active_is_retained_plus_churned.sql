-- Every user active last week is either retained or churned this week.
with

periods as (

    select
        period_start,
        active_users,
        retained_users,
        churned_users,
        lag(active_users) over (order by period_start) as previous_active_users,
        lag(period_start) over (order by period_start) as previous_period_start
    from {{ ref('growth_accounting_weekly') }}

)

select *
from periods
where
    previous_period_start is not null
    and previous_active_users != retained_users + churned_users
