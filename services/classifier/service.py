"""classifier: attaches intent (against the use-case catalogue, with an explicit out-of-scope
result and a confidence), sentiment with anger/distress/urgency flags, and language to each turn.

Stateless and deterministic: a turn delivered twice is classified the same way twice, and the
bot, which keeps state, ignores the second copy.
"""

from aiokafka import ConsumerRecord

from relais.classifier import artifact
from relais.classifier.catalogue import load_catalogue
from relais.classifier.domain import classify_batch, to_classification_proto
from relais.common import bus, telemetry, topics, worker
from relais.common.pb import conversation_pb2 as pb
from relais.common.runtime import serve
from relais.common.unit_of_work import Item, UnitOfWork


async def build(w: worker.Worker) -> worker.Service:
    catalogue = load_catalogue()
    try:
        model = artifact.load_for(catalogue)
    except artifact.ArtifactError as error:
        raise SystemExit(f"classifier: {error}") from None

    def decode(record: ConsumerRecord) -> pb.Turn:
        return bus.parse(pb.Turn, record.value)

    async def handle_batch(items: list[Item], unit: UnitOfWork) -> None:
        """The batch's texts go through the model at once; each turn goes on, classified, in its order."""
        results = classify_batch([(i.value.text, i.value.language or None) for i in items], model, catalogue)
        for item, result in zip(items, results):
            turn = item.value
            with telemetry.consume_span(
                "classifier classify", item.record, **{"relais.conversation_id": turn.conversation_id}
            ) as span:
                turn.language = result.language
                turn.classification.CopyFrom(to_classification_proto(result, catalogue))
                span.set_attribute("relais.intent", turn.classification.intent)
                span.set_attribute("relais.confidence", turn.classification.confidence)
                unit.send(
                    [
                        bus.Record(
                            topics.CLASSIFIED_TURNS,
                            item.key or turn.conversation_id.encode(),
                            turn.SerializeToString(),
                            telemetry.inject_headers(),
                        )
                    ]
                )

    return worker.Service(decode=decode, handle_batch=handle_batch, topics=(topics.TURNS,))


def main() -> None:
    serve("classifier", lambda settings, stop: worker.run(settings, stop, build, database=False))


if __name__ == "__main__":
    main()
