"""`python -m eakte` runs the CLI."""

from eakte.cli import main

main()
