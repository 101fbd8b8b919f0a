"""Extract: each kind of source (REST, file, Google Sheets/Drive, Kafka) and the registry that declares them.

A source reads from outside and lands days through `extract_load.landing`;
it never touches the warehouse.
"""
