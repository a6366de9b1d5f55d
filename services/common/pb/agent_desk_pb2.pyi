import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from relais.common.pb import agent_events_pb2 as _agent_events_pb2
from relais.common.pb import conversation_pb2 as _conversation_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SkillLevel(_message.Message):
    __slots__ = ("skill", "level")
    SKILL_FIELD_NUMBER: _ClassVar[int]
    LEVEL_FIELD_NUMBER: _ClassVar[int]
    skill: str
    level: int
    def __init__(self, skill: _Optional[str] = ..., level: _Optional[int] = ...) -> None: ...

class SignInRequest(_message.Message):
    __slots__ = ("agent_id", "display_name", "languages", "skills", "skill_levels", "capacity")
    class CapacityEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    LANGUAGES_FIELD_NUMBER: _ClassVar[int]
    SKILLS_FIELD_NUMBER: _ClassVar[int]
    SKILL_LEVELS_FIELD_NUMBER: _ClassVar[int]
    CAPACITY_FIELD_NUMBER: _ClassVar[int]
    agent_id: str
    display_name: str
    languages: _containers.RepeatedScalarFieldContainer[str]
    skills: _containers.RepeatedScalarFieldContainer[str]
    skill_levels: _containers.RepeatedCompositeFieldContainer[SkillLevel]
    capacity: _containers.ScalarMap[str, int]
    def __init__(self, agent_id: _Optional[str] = ..., display_name: _Optional[str] = ..., languages: _Optional[_Iterable[str]] = ..., skills: _Optional[_Iterable[str]] = ..., skill_levels: _Optional[_Iterable[_Union[SkillLevel, _Mapping]]] = ..., capacity: _Optional[_Mapping[str, int]] = ...) -> None: ...

class SignInReply(_message.Message):
    __slots__ = ("token",)
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    token: str
    def __init__(self, token: _Optional[str] = ...) -> None: ...

class SignOutRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class SignOutReply(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class SetStateRequest(_message.Message):
    __slots__ = ("state",)
    STATE_FIELD_NUMBER: _ClassVar[int]
    state: _agent_events_pb2.AgentState
    def __init__(self, state: _Optional[_Union[_agent_events_pb2.AgentState, str]] = ...) -> None: ...

class SetStateReply(_message.Message):
    __slots__ = ("state",)
    STATE_FIELD_NUMBER: _ClassVar[int]
    state: _agent_events_pb2.AgentState
    def __init__(self, state: _Optional[_Union[_agent_events_pb2.AgentState, str]] = ...) -> None: ...

class SubscribeRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Suggestion(_message.Message):
    __slots__ = ("suggestion_id", "text", "article_ids", "source")
    SUGGESTION_ID_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    ARTICLE_IDS_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    suggestion_id: str
    text: str
    article_ids: _containers.RepeatedScalarFieldContainer[str]
    source: str
    def __init__(self, suggestion_id: _Optional[str] = ..., text: _Optional[str] = ..., article_ids: _Optional[_Iterable[str]] = ..., source: _Optional[str] = ...) -> None: ...

class AgentAssist(_message.Message):
    __slots__ = ("summary", "history_summary", "suggestions")
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    HISTORY_SUMMARY_FIELD_NUMBER: _ClassVar[int]
    SUGGESTIONS_FIELD_NUMBER: _ClassVar[int]
    summary: str
    history_summary: str
    suggestions: _containers.RepeatedCompositeFieldContainer[Suggestion]
    def __init__(self, summary: _Optional[str] = ..., history_summary: _Optional[str] = ..., suggestions: _Optional[_Iterable[_Union[Suggestion, _Mapping]]] = ...) -> None: ...

class TranscriptLine(_message.Message):
    __slots__ = ("at", "speaker", "text", "agent_id")
    AT_FIELD_NUMBER: _ClassVar[int]
    SPEAKER_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    at: _timestamp_pb2.Timestamp
    speaker: str
    text: str
    agent_id: str
    def __init__(self, at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., speaker: _Optional[str] = ..., text: _Optional[str] = ..., agent_id: _Optional[str] = ...) -> None: ...

class Offer(_message.Message):
    __slots__ = ("task_id", "context", "assist", "expires_at", "priority", "note", "callback", "transcript", "callback_phone")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    ASSIST_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    CALLBACK_FIELD_NUMBER: _ClassVar[int]
    TRANSCRIPT_FIELD_NUMBER: _ClassVar[int]
    CALLBACK_PHONE_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    context: _conversation_pb2.ConversationContext
    assist: AgentAssist
    expires_at: _timestamp_pb2.Timestamp
    priority: int
    note: str
    callback: bool
    transcript: _containers.RepeatedCompositeFieldContainer[TranscriptLine]
    callback_phone: str
    def __init__(self, task_id: _Optional[str] = ..., context: _Optional[_Union[_conversation_pb2.ConversationContext, _Mapping]] = ..., assist: _Optional[_Union[AgentAssist, _Mapping]] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., priority: _Optional[int] = ..., note: _Optional[str] = ..., callback: _Optional[bool] = ..., transcript: _Optional[_Iterable[_Union[TranscriptLine, _Mapping]]] = ..., callback_phone: _Optional[str] = ...) -> None: ...

class Assignment(_message.Message):
    __slots__ = ("task_id", "context", "assist", "note", "callback", "transcript", "callback_phone")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    ASSIST_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    CALLBACK_FIELD_NUMBER: _ClassVar[int]
    TRANSCRIPT_FIELD_NUMBER: _ClassVar[int]
    CALLBACK_PHONE_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    context: _conversation_pb2.ConversationContext
    assist: AgentAssist
    note: str
    callback: bool
    transcript: _containers.RepeatedCompositeFieldContainer[TranscriptLine]
    callback_phone: str
    def __init__(self, task_id: _Optional[str] = ..., context: _Optional[_Union[_conversation_pb2.ConversationContext, _Mapping]] = ..., assist: _Optional[_Union[AgentAssist, _Mapping]] = ..., note: _Optional[str] = ..., callback: _Optional[bool] = ..., transcript: _Optional[_Iterable[_Union[TranscriptLine, _Mapping]]] = ..., callback_phone: _Optional[str] = ...) -> None: ...

class CustomerMessage(_message.Message):
    __slots__ = ("task_id", "turn", "assist")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    TURN_FIELD_NUMBER: _ClassVar[int]
    ASSIST_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    turn: _conversation_pb2.Turn
    assist: AgentAssist
    def __init__(self, task_id: _Optional[str] = ..., turn: _Optional[_Union[_conversation_pb2.Turn, _Mapping]] = ..., assist: _Optional[_Union[AgentAssist, _Mapping]] = ...) -> None: ...

class OfferWithdrawn(_message.Message):
    __slots__ = ("task_id", "reason")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    reason: str
    def __init__(self, task_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class AssistUpdate(_message.Message):
    __slots__ = ("task_id", "assist")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    ASSIST_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    assist: AgentAssist
    def __init__(self, task_id: _Optional[str] = ..., assist: _Optional[_Union[AgentAssist, _Mapping]] = ...) -> None: ...

class DeskEvent(_message.Message):
    __slots__ = ("offer", "assignment", "customer_message", "offer_withdrawn", "assist")
    OFFER_FIELD_NUMBER: _ClassVar[int]
    ASSIGNMENT_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    OFFER_WITHDRAWN_FIELD_NUMBER: _ClassVar[int]
    ASSIST_FIELD_NUMBER: _ClassVar[int]
    offer: Offer
    assignment: Assignment
    customer_message: CustomerMessage
    offer_withdrawn: OfferWithdrawn
    assist: AssistUpdate
    def __init__(self, offer: _Optional[_Union[Offer, _Mapping]] = ..., assignment: _Optional[_Union[Assignment, _Mapping]] = ..., customer_message: _Optional[_Union[CustomerMessage, _Mapping]] = ..., offer_withdrawn: _Optional[_Union[OfferWithdrawn, _Mapping]] = ..., assist: _Optional[_Union[AssistUpdate, _Mapping]] = ...) -> None: ...

class AcceptRequest(_message.Message):
    __slots__ = ("task_id",)
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    def __init__(self, task_id: _Optional[str] = ...) -> None: ...

class AcceptReply(_message.Message):
    __slots__ = ("assignment",)
    ASSIGNMENT_FIELD_NUMBER: _ClassVar[int]
    assignment: Assignment
    def __init__(self, assignment: _Optional[_Union[Assignment, _Mapping]] = ...) -> None: ...

class RejectRequest(_message.Message):
    __slots__ = ("task_id", "reason")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    reason: str
    def __init__(self, task_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class RejectReply(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ReplyRequest(_message.Message):
    __slots__ = ("task_id", "text")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    text: str
    def __init__(self, task_id: _Optional[str] = ..., text: _Optional[str] = ...) -> None: ...

class ReplyReply(_message.Message):
    __slots__ = ("reply_id",)
    REPLY_ID_FIELD_NUMBER: _ClassVar[int]
    reply_id: str
    def __init__(self, reply_id: _Optional[str] = ...) -> None: ...

class TransferRequest(_message.Message):
    __slots__ = ("task_id", "queue", "note")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    queue: str
    note: str
    def __init__(self, task_id: _Optional[str] = ..., queue: _Optional[str] = ..., note: _Optional[str] = ...) -> None: ...

class TransferReply(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class CloseRequest(_message.Message):
    __slots__ = ("task_id", "disposition", "resolved")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    DISPOSITION_FIELD_NUMBER: _ClassVar[int]
    RESOLVED_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    disposition: str
    resolved: bool
    def __init__(self, task_id: _Optional[str] = ..., disposition: _Optional[str] = ..., resolved: _Optional[bool] = ...) -> None: ...

class CloseReply(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class HistoryRequest(_message.Message):
    __slots__ = ("task_id",)
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    def __init__(self, task_id: _Optional[str] = ...) -> None: ...

class PastConversation(_message.Message):
    __slots__ = ("conversation_id", "started_at", "intent", "outcome", "summary")
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    INTENT_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    conversation_id: str
    started_at: _timestamp_pb2.Timestamp
    intent: str
    outcome: str
    summary: str
    def __init__(self, conversation_id: _Optional[str] = ..., started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., intent: _Optional[str] = ..., outcome: _Optional[str] = ..., summary: _Optional[str] = ...) -> None: ...

class HistoryReply(_message.Message):
    __slots__ = ("conversations",)
    CONVERSATIONS_FIELD_NUMBER: _ClassVar[int]
    conversations: _containers.RepeatedCompositeFieldContainer[PastConversation]
    def __init__(self, conversations: _Optional[_Iterable[_Union[PastConversation, _Mapping]]] = ...) -> None: ...

class SuggestionUseRequest(_message.Message):
    __slots__ = ("task_id", "suggestion_id", "use")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    SUGGESTION_ID_FIELD_NUMBER: _ClassVar[int]
    USE_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    suggestion_id: str
    use: _agent_events_pb2.SuggestionUse
    def __init__(self, task_id: _Optional[str] = ..., suggestion_id: _Optional[str] = ..., use: _Optional[_Union[_agent_events_pb2.SuggestionUse, str]] = ...) -> None: ...

class SuggestionUseReply(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...
