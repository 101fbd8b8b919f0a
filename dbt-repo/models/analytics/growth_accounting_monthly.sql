{{ growth_accounting('month') }}
