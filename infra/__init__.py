"""Local infrastructure launchers (Kafka, PostgreSQL) for development and tests."""
