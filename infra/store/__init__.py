"""The event store: connections, the chained recorders, group commit, DDL, statements, the
writer lock and the transcoder."""
