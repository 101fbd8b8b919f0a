{#- The identities of growth accounting, checked on every period of the real
    output: active = new + retained + resurrected; the previous period's
    active = retained + churned; periods are consecutive, one grain apart; and
    the first period has only new users. -#}
{% test growth_accounting_balances(model, grain) %}

with

periods as (

    select
        period_start,
        active_users,
        new_users,
        retained_users,
        resurrected_users,
        churned_users,
        lag(period_start) over (order by period_start) as previous_period_start,
        lag(active_users) over (order by period_start) as previous_active_users
    from {{ model }}

)

select *
from periods
where
    active_users != new_users + retained_users + resurrected_users
    or (
        previous_period_start is null
        and retained_users + resurrected_users + churned_users != 0
    )
    or (
        previous_period_start is not null
        and (
            previous_active_users != retained_users + churned_users
            or period_start != {{ add_periods('previous_period_start', 1, grain) }}
        )
    )

{% endtest %}
