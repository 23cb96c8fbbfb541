"""The outbox: what backcheck hands on for another program to send (candidates' portal links),
as files in DATA_DIR/outbox."""
