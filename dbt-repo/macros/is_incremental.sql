{#- dbt's is_incremental() asks the warehouse whether the table exists. An
    offline compile (BigQuery from CI, with no credentials that work) cannot
    ask, so it states the answer: `--vars '{assume_incremental: true}'`
    compiles the incremental branch, false the full build. Unset, this is
    dbt's own macro. -#}
{% macro is_incremental() %}
    {%- set assumed = var('assume_incremental', none) -%}
    {%- if assumed is not none -%}
        {{ return(execute and model.config.materialized == 'incremental' and assumed) }}
    {%- endif -%}
    {{ return(dbt.is_incremental()) }}
{% endmacro %}
