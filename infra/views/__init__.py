"""Read views: the view stores (SQLite, PostgreSQL) and the in-process runner."""
