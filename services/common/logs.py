"""Service logs: the text lines of old (RELAIS_LOG_FORMAT=text, the default), or one JSON object per line
(RELAIS_LOG_FORMAT=json) that a log pipeline indexes without parsing: time (RFC 3339, UTC), level, service, logger,
message, the conversation or event id the line is about, the current span's trace_id / span_id (hex, as
OpenTelemetry and the trace backends show them, so a line leads to its trace), the exception as one field, and the
fields a call passes in `extra=` (routing's business events: event, agent_id, conversation_id, task_id...).

The conversation a line is about comes from `extra={"conversation_id": ...}`, else from `about(...)`, which the
consumers' record spans set (relais.common.telemetry.consume_span) for every line written while a record is handled.
"""

import json
import logging
import sys
import time
from contextvars import ContextVar

from opentelemetry import trace

TEXT_FORMAT = "%(asctime)s {service} %(levelname)s %(name)s: %(message)s"
FORMATS = ("text", "json")

CONVERSATION_ID: ContextVar[str | None] = ContextVar("relais_conversation_id", default=None)
EVENT_ID: ContextVar[str | None] = ContextVar("relais_event_id", default=None)

# What every LogRecord has: anything else on a record came from `extra=` and is written as a field.
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime", "taskName"}


class about:
    """While inside, the lines written name this conversation (and event): `with logs.about(conversation_id): ...`.
    A class, not a generator: it is entered for every record a service handles."""

    __slots__ = ("conversation_id", "event_id", "tokens")

    def __init__(self, conversation_id: str | None = None, event_id: str | None = None):
        self.conversation_id, self.event_id = conversation_id, event_id

    def __enter__(self):
        self.tokens = (
            CONVERSATION_ID.set(self.conversation_id) if self.conversation_id else None,
            EVENT_ID.set(self.event_id) if self.event_id else None,
        )
        return self

    def __exit__(self, *exc) -> None:
        conversation, event = self.tokens
        if conversation is not None:
            CONVERSATION_ID.reset(conversation)
        if event is not None:
            EVENT_ID.reset(event)


def event(logger: logging.Logger, name: str, **ids) -> None:
    """A business event at INFO, in one line: its name and ids in the text ("offered agent=a1 conversation=c1
    task=t1"), and as fields in JSON (event, agent_id, conversation_id, task_id...)."""
    if logger.isEnabledFor(logging.INFO):
        shown = " ".join(f"{key.removesuffix('_id')}={value}" for key, value in ids.items())
        logger.info("%s %s", name, shown, extra={"event": name, **ids}, stacklevel=2)


class JsonFormatter(logging.Formatter):
    """One JSON object per line; a traceback is one string field (its newlines escaped), never several lines."""

    def __init__(self, service: str):
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        doc = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "service": self.service,
            "logger": record.name,
            "message": record.getMessage(),
        }
        conversation_id = getattr(record, "conversation_id", None) or CONVERSATION_ID.get()
        if conversation_id:
            doc["conversation_id"] = conversation_id
        event_id = getattr(record, "event_id", None) or EVENT_ID.get()
        if event_id:
            doc["event_id"] = event_id
        span = trace.get_current_span().get_span_context()
        if span.is_valid:
            doc["trace_id"], doc["span_id"] = f"{span.trace_id:032x}", f"{span.span_id:016x}"
        for key, value in record.__dict__.items():
            if key not in _STANDARD and key not in doc and not key.startswith("_"):
                doc[key] = value
        if record.exc_info:
            doc["exception_type"] = getattr(record.exc_info[0], "__name__", str(record.exc_info[0]))
            doc["exception"] = record.exc_text or self.formatException(record.exc_info)
        elif record.exc_text:
            doc["exception"] = record.exc_text
        if record.stack_info:
            doc["stack"] = self.formatStack(record.stack_info)
        return json.dumps(doc, ensure_ascii=False, default=str)


def formatter(service: str, log_format: str) -> logging.Formatter:
    return JsonFormatter(service) if log_format == "json" else logging.Formatter(TEXT_FORMAT.format(service=service))


def setup(service: str, level: str | int, log_format: str = "text") -> logging.Handler:
    """The root logger writes to stderr in `log_format` (FORMATS) from `level` up; returns its handler. In JSON,
    Python's warnings and an uncaught exception are log records too: nothing else writes several lines."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter(service, log_format))
    logging.basicConfig(level=level, handlers=[handler])
    if log_format == "json":
        logging.captureWarnings(True)
        sys.excepthook = lambda kind, error, tb: logging.getLogger(service).critical(
            "uncaught exception", exc_info=(kind, error, tb)
        )
    return handler
