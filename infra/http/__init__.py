"""The HTTP entry point: `backcheck serve`, an authenticated API over the same use cases as the
command line (services/catalogue.py), with problem+json errors from the one problem table."""
