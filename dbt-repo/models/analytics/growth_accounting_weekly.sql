{{ growth_accounting('week') }}
