{{ growth_accounting('day') }}
