{{ retention_cohorts('month') }}
