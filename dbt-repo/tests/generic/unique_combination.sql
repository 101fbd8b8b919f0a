{#- Fails on every combination of `columns` that appears more than once: the
    grain of a table whose key spans several columns. -#}
{% test unique_combination(model, columns) %}

select
    {{ columns | join(', ') }},
    count(*) as occurrences
from {{ model }}
group by {{ columns | join(', ') }}
having count(*) > 1

{% endtest %}
