"""What every relais service needs, written once: config, Kafka bus, telemetry, gRPC health, Postgres."""
