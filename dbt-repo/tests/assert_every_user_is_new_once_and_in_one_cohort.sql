-- Every user in dim_users is counted as new exactly once at every grain, and
-- belongs to exactly one weekly and one monthly cohort.
with

users as (

    select count(*) as user_count from {{ ref('dim_users') }}

),

tallies as (

    select
        'growth_accounting_daily' as model_name,
        sum(new_users) as counted
    from {{ ref('growth_accounting_daily') }}
    union all
    select
        'growth_accounting_weekly' as model_name,
        sum(new_users) as counted
    from {{ ref('growth_accounting_weekly') }}
    union all
    select
        'growth_accounting_monthly' as model_name,
        sum(new_users) as counted
    from {{ ref('growth_accounting_monthly') }}
    union all
    select
        'retention_cohorts_weekly' as model_name,
        sum(cohort_size) as counted
    from {{ ref('retention_cohorts_weekly') }}
    where periods_since = 0
    union all
    select
        'retention_cohorts_monthly' as model_name,
        sum(cohort_size) as counted
    from {{ ref('retention_cohorts_monthly') }}
    where periods_since = 0

)

select
    tallies.model_name,
    tallies.counted,
    users.user_count
from tallies
cross join users
where tallies.counted != users.user_count
