"""`python -m pgtopo` runs the CLI."""

from pgtopo.cli import main

main()
