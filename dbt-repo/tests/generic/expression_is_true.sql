{#- Fails on every row where the expression is false or null. Written here
    because dbt packages cannot be fetched in every environment we build in. -#}
{% test expression_is_true(model, expression, column_name=none) %}

select *
from {{ model }}
where not coalesce(({{ expression }}), false)

{% endtest %}
