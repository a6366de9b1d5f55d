"""`POST /events`: the HTTP intake. A channel without a Kafka client sends its CloudEvents here, in the HTTP
protocol binding's structured (`application/cloudevents+json`), binary (`ce-*` headers, the data as the body) or
batch (`application/cloudevents-batch+json`) mode.

Each event is read by intake's own parser (relais.common.cloudevents.parse_contact_event), the HTTP headers turned
into the Kafka binding's (`ce-x` -> `ce_x`, percent-decoded), and produced as it came, keyed by its conversation
(`subject`), on relais.contact-events.v1 with the shared idempotent producer (acks=all). 202 only once the broker
acknowledged every event of the request; 400 + `{"reason": ...}` for an event intake would refuse (nothing of a
batch is produced then); 413 for one over the broker's limit; 503 while the broker cannot be reached (an event
sent again after a 503 is harmless: intake applies an event id once).
"""

import asyncio
import json
import logging
from dataclasses import dataclass
from urllib.parse import unquote

from aiohttp import web
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from relais.common import bus, cloudevents, topics
from relais.common.bus import BadInput

log = logging.getLogger(__name__)

BATCH = "application/cloudevents-batch+json"
MAX_REQUEST_BYTES = 4 * bus.MAX_MESSAGE_BYTES  # a batch's; each event must also fit the broker's limit
ACK_SECONDS = 15.0  # what a request waits for the broker's acknowledgement before 503
# Headers that travel with an event besides its ce-* attributes: its trace context (W3C Trace Context binding).
PASSED_HEADERS = ("traceparent", "tracestate")


@dataclass(frozen=True)
class Accepted:
    event: cloudevents.ContactEvent
    record: bus.Record


def kafka_headers(http_headers) -> list[tuple[str, bytes]]:
    """The Kafka binding's headers for an HTTP request's: content-type, ce_* (from ce-*, percent-decoded as the
    HTTP binding encodes them), trace context."""
    headers = []
    for name, value in http_headers.items():
        lower = name.lower()
        if lower.startswith("ce-"):
            headers.append((f"ce_{lower[3:]}", unquote(value).encode("utf-8", "surrogateescape")))
        elif lower == "content-type" or lower in PASSED_HEADERS:
            headers.append((lower, value.encode("utf-8", "surrogateescape")))
    return headers


def read_event(value: bytes, headers: list[tuple[str, bytes]], max_text_chars: int) -> Accepted:
    """One event as intake reads it, and its record on relais.contact-events.v1; BadInput with intake's reason."""
    event = cloudevents.parse_contact_event(value, headers, max_text_chars)
    record = bus.Record(topics.CONTACT_EVENTS, event.subject.encode(), value, headers)
    if not bus.fits(record.key, record.value, record.headers):
        size = bus.record_size(record.key, value, headers)
        raise TooLarge(f"the event is {size} bytes; the broker takes at most {bus.MAX_MESSAGE_BYTES - 1024}")
    return Accepted(event, record)


class TooLarge(BadInput):
    pass


def read_request(body: bytes, http_headers, max_text_chars: int) -> list[Accepted]:
    """The events of a request (one, or a batch's in order); BadInput for the first that intake would refuse."""
    if http_headers.get("Content-Type", "").split(";")[0].strip().lower() != BATCH:
        return [read_event(body, kafka_headers(http_headers), max_text_chars)]
    try:
        batch = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        raise BadInput(f"malformed JSON batch: {error}") from None
    if not isinstance(batch, list) or not batch:
        raise BadInput("a batch is a non-empty JSON array of structured CloudEvents")
    accepted = []
    structured = [("content-type", cloudevents.STRUCTURED.encode())]
    for n, doc in enumerate(batch):
        try:
            accepted.append(read_event(json.dumps(doc, ensure_ascii=False).encode(), structured, max_text_chars))
        except BadInput as bad:
            raise type(bad)(f"event {n} of the batch: {bad}") from None
    return accepted


def reason(status: int, text: str) -> web.Response:
    return web.json_response({"reason": text}, status=status)


class EventIntake:
    """The /events handler and its producer, started in the background so the gateway serves while the broker is
    unreachable (503 until it is)."""

    def __init__(self, bootstrap: str, max_text_chars: int):
        self.bootstrap, self.max_text_chars = bootstrap, max_text_chars
        self.producer: AIOKafkaProducer | None = None
        self._starting: asyncio.Task | None = None

    def start(self) -> None:
        self._starting = asyncio.create_task(self._start())

    async def _start(self) -> None:
        delay = 0.5
        while True:
            producer = bus.make_producer(self.bootstrap, request_timeout_ms=int(ACK_SECONDS * 1000))
            try:
                await producer.start()
            except KafkaError as error:
                await producer.stop()
                log.warning("broker %s not reachable (%r): /events answers 503 until it is", self.bootstrap, error)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5)
                continue
            self.producer = producer
            return

    async def stop(self) -> None:
        if self._starting is not None and not self._starting.done():
            self._starting.cancel()
            await asyncio.gather(self._starting, return_exceptions=True)
        if self.producer is not None:
            await self.producer.stop()

    async def handle(self, request: web.Request) -> web.Response:
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return reason(413, f"the request is over {MAX_REQUEST_BYTES} bytes")
        try:
            accepted = read_request(body, request.headers, self.max_text_chars)
        except TooLarge as bad:
            return reason(413, str(bad))
        except BadInput as bad:
            return reason(400, str(bad))
        if self.producer is None:
            return reason(503, f"the broker ({self.bootstrap}) is not reachable yet; try again")
        try:
            async with asyncio.timeout(ACK_SECONDS):
                await bus.publish(self.producer, [a.record for a in accepted])
        except (KafkaError, TimeoutError) as error:
            log.warning("/events: %d event(s) not acknowledged by the broker: %r", len(accepted), error)
            return reason(503, f"the broker did not acknowledge the event ({type(error).__name__}); try again")
        return web.json_response(
            {"accepted": [{"id": a.event.id, "source": a.event.source, "subject": a.event.subject} for a in accepted]},
            status=202,
        )
