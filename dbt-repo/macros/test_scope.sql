{#- Data tests read what a run changed, not all of history (docs/adr/0019).

    A test's `where` may hold a placeholder, set per layer in dbt_project.yml:
    - `__latest_build__` (core tables): the rows the table's latest build
      wrote, the ones with its newest `_built_at`. Rows a run left alone were
      tested when they were written, and nothing changes them but a rebuild.
    - `__days_not_yet_built__` (staging): the raw days fct_events does not
      hold with the same load yet, the ones its next build will read. Staging
      tests guard what enters fct_events.
    A full refresh, a first build (the table does not exist yet) and
    `--vars '{test_scope: all}'` test everything. This is dbt's documented
    way to give `where` a value computed at run time. -#}
{% macro get_where_subquery(relation) -%}
    {%- set where = config.get('where') -%}
    {%- if where -%}
        {%- set scoped = scoped_test_predicate(relation, where) -%}
        {%- if scoped -%}
            {%- set filtered -%}
                (select * from {{ relation }} where {{ scoped }}) as dbt_subquery
            {%- endset -%}
            {%- do return(filtered) -%}
        {%- endif -%}
    {%- endif -%}
    {%- do return(relation) -%}
{%- endmacro %}

{% macro scoped_test_predicate(relation, where) -%}
    {%- set everything = flags.FULL_REFRESH or var('test_scope', 'changed') == 'all' -%}
    {%- set latest -%}
        {%- if everything -%}1 = 1{%- else -%}
            _built_at = (select max(_built_at) from {{ relation }})
        {%- endif -%}
    {%- endset -%}
    {%- set fct_events = built_relation('fct_events') -%}
    {%- set not_yet_built -%}
        {%- if everything or fct_events is none -%}1 = 1{%- else -%}
            loaded_interval_start in (
                select load_day from (
                    {{ day_loads_sql(relation, 'loaded_interval_start') }}
                    {{ dbt.except() }}
                    {{ day_loads_sql(fct_events, 'event_date') }}
                ) as days_not_yet_built
            )
        {%- endif -%}
    {%- endset -%}
    {%- set predicate = where | replace('__latest_build__', latest) | replace('__days_not_yet_built__', not_yet_built) -%}
    {{ return(none if predicate | trim == '1 = 1' else predicate) }}
{%- endmacro %}

{#- A model's relation as the graph names it, or none when it is not built yet.
    An offline compile (`--no-introspect`) may not ask the warehouse, and
    takes it as built. -#}
{% macro built_relation(name) -%}
    {%- set node = graph.nodes.values() | selectattr('resource_type', 'equalto', 'model')
        | selectattr('name', 'equalto', name) | first -%}
    {%- if not flags.INTROSPECT -%}
        {{ return(api.Relation.create(database=node.database, schema=node.schema, identifier=node.alias)) }}
    {%- endif -%}
    {{ return(adapter.get_relation(database=node.database, schema=node.schema, identifier=node.alias)) }}
{%- endmacro %}

{#- When dbt built the rows of this run: what `__latest_build__` tests. -#}
{% macro built_at() -%}
    cast('{{ run_started_at.strftime("%Y-%m-%d %H:%M:%S.%f") }}' as {{ dbt.type_timestamp() }})
{%- endmacro %}
