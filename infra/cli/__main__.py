"""`python -m infra.cli`: the same as the `backcheck` command."""

from infra.cli import main

main()
