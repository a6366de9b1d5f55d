"""Single-node Kafka broker run from Maven Central jars."""

from infra.kafka.broker import KafkaBroker

__all__ = ["KafkaBroker"]
