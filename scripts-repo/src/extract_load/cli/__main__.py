"""`python -m extract_load.cli`: the same command as the `extract-load` script."""

from extract_load.cli import main

main()
