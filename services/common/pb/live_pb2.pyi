import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class WatchRequest(_message.Message):
    __slots__ = ("interval_seconds",)
    INTERVAL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    interval_seconds: float
    def __init__(self, interval_seconds: _Optional[float] = ...) -> None: ...

class QueueLive(_message.Message):
    __slots__ = ("language", "queue", "waiting", "oldest_wait_seconds", "expected_wait_seconds", "offered_15m", "accepted_15m", "abandoned_15m", "service_level_30m", "answered_within_target_30m", "ended_30m", "agents_signed_in")
    LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    WAITING_FIELD_NUMBER: _ClassVar[int]
    OLDEST_WAIT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_WAIT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    OFFERED_15M_FIELD_NUMBER: _ClassVar[int]
    ACCEPTED_15M_FIELD_NUMBER: _ClassVar[int]
    ABANDONED_15M_FIELD_NUMBER: _ClassVar[int]
    SERVICE_LEVEL_30M_FIELD_NUMBER: _ClassVar[int]
    ANSWERED_WITHIN_TARGET_30M_FIELD_NUMBER: _ClassVar[int]
    ENDED_30M_FIELD_NUMBER: _ClassVar[int]
    AGENTS_SIGNED_IN_FIELD_NUMBER: _ClassVar[int]
    language: str
    queue: str
    waiting: int
    oldest_wait_seconds: float
    expected_wait_seconds: float
    offered_15m: int
    accepted_15m: int
    abandoned_15m: int
    service_level_30m: float
    answered_within_target_30m: int
    ended_30m: int
    agents_signed_in: int
    def __init__(self, language: _Optional[str] = ..., queue: _Optional[str] = ..., waiting: _Optional[int] = ..., oldest_wait_seconds: _Optional[float] = ..., expected_wait_seconds: _Optional[float] = ..., offered_15m: _Optional[int] = ..., accepted_15m: _Optional[int] = ..., abandoned_15m: _Optional[int] = ..., service_level_30m: _Optional[float] = ..., answered_within_target_30m: _Optional[int] = ..., ended_30m: _Optional[int] = ..., agents_signed_in: _Optional[int] = ...) -> None: ...

class LiveSnapshot(_message.Message):
    __slots__ = ("at", "queues", "agents_by_state", "agents_by_language", "bot_answers_15m", "handoffs_15m", "service_level_30m", "service_level_target_seconds")
    class AgentsByStateEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    class AgentsByLanguageEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    AT_FIELD_NUMBER: _ClassVar[int]
    QUEUES_FIELD_NUMBER: _ClassVar[int]
    AGENTS_BY_STATE_FIELD_NUMBER: _ClassVar[int]
    AGENTS_BY_LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    BOT_ANSWERS_15M_FIELD_NUMBER: _ClassVar[int]
    HANDOFFS_15M_FIELD_NUMBER: _ClassVar[int]
    SERVICE_LEVEL_30M_FIELD_NUMBER: _ClassVar[int]
    SERVICE_LEVEL_TARGET_SECONDS_FIELD_NUMBER: _ClassVar[int]
    at: _timestamp_pb2.Timestamp
    queues: _containers.RepeatedCompositeFieldContainer[QueueLive]
    agents_by_state: _containers.ScalarMap[str, int]
    agents_by_language: _containers.ScalarMap[str, int]
    bot_answers_15m: int
    handoffs_15m: int
    service_level_30m: float
    service_level_target_seconds: float
    def __init__(self, at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., queues: _Optional[_Iterable[_Union[QueueLive, _Mapping]]] = ..., agents_by_state: _Optional[_Mapping[str, int]] = ..., agents_by_language: _Optional[_Mapping[str, int]] = ..., bot_answers_15m: _Optional[int] = ..., handoffs_15m: _Optional[int] = ..., service_level_30m: _Optional[float] = ..., service_level_target_seconds: _Optional[float] = ...) -> None: ...
