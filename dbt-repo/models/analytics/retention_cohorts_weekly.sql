{{ retention_cohorts('week') }}
