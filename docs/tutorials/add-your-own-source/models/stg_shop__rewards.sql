-- The raw table is a change log (one version per reward and day it changed):
-- keep each reward's newest version, and drop the ones deleted since.
with

source_rewards as (

    select * from {{ source('shop', 'rewards') }}

),

newest_versions as (

    select
        cast(reward_id as bigint) as reward_id,
        title,
        cast(miles_price as bigint) as miles_price,
        deleted_at,
        row_number() over (
            partition by reward_id order by _event_time_local desc
        ) as version_rank
    from source_rewards

)

select
    reward_id,
    title,
    miles_price
from newest_versions
where version_rank = 1 and deleted_at is null
