"""Kafka: topics, the CloudEvents format, the relay, the projection workers and command intake."""
