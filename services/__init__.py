"""Use cases, the reactions that span aggregates, and queries over the store."""
