import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AgentState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    AGENT_STATE_UNSPECIFIED: _ClassVar[AgentState]
    AGENT_STATE_OFFLINE: _ClassVar[AgentState]
    AGENT_STATE_AVAILABLE: _ClassVar[AgentState]
    AGENT_STATE_BUSY: _ClassVar[AgentState]
    AGENT_STATE_WRAP_UP: _ClassVar[AgentState]
    AGENT_STATE_BREAK: _ClassVar[AgentState]

class SuggestionUse(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SUGGESTION_USE_UNSPECIFIED: _ClassVar[SuggestionUse]
    SUGGESTION_USE_USED: _ClassVar[SuggestionUse]
    SUGGESTION_USE_EDITED: _ClassVar[SuggestionUse]
    SUGGESTION_USE_IGNORED: _ClassVar[SuggestionUse]
AGENT_STATE_UNSPECIFIED: AgentState
AGENT_STATE_OFFLINE: AgentState
AGENT_STATE_AVAILABLE: AgentState
AGENT_STATE_BUSY: AgentState
AGENT_STATE_WRAP_UP: AgentState
AGENT_STATE_BREAK: AgentState
SUGGESTION_USE_UNSPECIFIED: SuggestionUse
SUGGESTION_USE_USED: SuggestionUse
SUGGESTION_USE_EDITED: SuggestionUse
SUGGESTION_USE_IGNORED: SuggestionUse

class AgentStateChanged(_message.Message):
    __slots__ = ("previous", "state", "cause")
    PREVIOUS_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    CAUSE_FIELD_NUMBER: _ClassVar[int]
    previous: AgentState
    state: AgentState
    cause: str
    def __init__(self, previous: _Optional[_Union[AgentState, str]] = ..., state: _Optional[_Union[AgentState, str]] = ..., cause: _Optional[str] = ...) -> None: ...

class SuggestionFeedback(_message.Message):
    __slots__ = ("task_id", "conversation_id", "suggestion_id", "use", "intent", "language", "source", "article_ids")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    SUGGESTION_ID_FIELD_NUMBER: _ClassVar[int]
    USE_FIELD_NUMBER: _ClassVar[int]
    INTENT_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    ARTICLE_IDS_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    conversation_id: str
    suggestion_id: str
    use: SuggestionUse
    intent: str
    language: str
    source: str
    article_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, task_id: _Optional[str] = ..., conversation_id: _Optional[str] = ..., suggestion_id: _Optional[str] = ..., use: _Optional[_Union[SuggestionUse, str]] = ..., intent: _Optional[str] = ..., language: _Optional[str] = ..., source: _Optional[str] = ..., article_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class AgentEvent(_message.Message):
    __slots__ = ("event_id", "agent_id", "at", "state_changed", "suggestion_feedback")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    STATE_CHANGED_FIELD_NUMBER: _ClassVar[int]
    SUGGESTION_FEEDBACK_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    agent_id: str
    at: _timestamp_pb2.Timestamp
    state_changed: AgentStateChanged
    suggestion_feedback: SuggestionFeedback
    def __init__(self, event_id: _Optional[str] = ..., agent_id: _Optional[str] = ..., at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., state_changed: _Optional[_Union[AgentStateChanged, _Mapping]] = ..., suggestion_feedback: _Optional[_Union[SuggestionFeedback, _Mapping]] = ...) -> None: ...
