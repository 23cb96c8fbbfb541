"""Use cases, the policies that react across aggregates, and queries over the store."""
