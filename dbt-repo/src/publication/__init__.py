"""Publishing what the platform knows: the dbt docs site and the public data exports."""
