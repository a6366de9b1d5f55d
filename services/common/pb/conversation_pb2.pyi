import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Channel(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CHANNEL_UNSPECIFIED: _ClassVar[Channel]
    CHANNEL_CHAT: _ClassVar[Channel]
    CHANNEL_EMAIL: _ClassVar[Channel]
    CHANNEL_SMS: _ClassVar[Channel]
    CHANNEL_VOICE_TRANSCRIPT: _ClassVar[Channel]

class HandoffReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    HANDOFF_REASON_UNSPECIFIED: _ClassVar[HandoffReason]
    HANDOFF_REASON_CUSTOMER_REQUEST: _ClassVar[HandoffReason]
    HANDOFF_REASON_ANGER: _ClassVar[HandoffReason]
    HANDOFF_REASON_DISTRESS: _ClassVar[HandoffReason]
    HANDOFF_REASON_OUT_OF_SCOPE: _ClassVar[HandoffReason]
    HANDOFF_REASON_LOW_CONFIDENCE: _ClassVar[HandoffReason]
    HANDOFF_REASON_REPEATED_FAILURE: _ClassVar[HandoffReason]
    HANDOFF_REASON_NOT_BOT_ALLOWED: _ClassVar[HandoffReason]
    HANDOFF_REASON_ESCALATING_SENTIMENT: _ClassVar[HandoffReason]
    HANDOFF_REASON_TIER_NOT_SERVED: _ClassVar[HandoffReason]
    HANDOFF_REASON_AMOUNT_ABOVE_LIMIT: _ClassVar[HandoffReason]
    HANDOFF_REASON_BOT_TURN_LIMIT: _ClassVar[HandoffReason]
    HANDOFF_REASON_LANGUAGE_NOT_SERVED: _ClassVar[HandoffReason]
    HANDOFF_REASON_CHURN_RISK: _ClassVar[HandoffReason]
    HANDOFF_REASON_MULTIPLE_REQUESTS: _ClassVar[HandoffReason]
    HANDOFF_REASON_NEEDS_JUDGEMENT: _ClassVar[HandoffReason]

class OutcomeKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    OUTCOME_KIND_UNSPECIFIED: _ClassVar[OutcomeKind]
    OUTCOME_KIND_BOT_ANSWERED: _ClassVar[OutcomeKind]
    OUTCOME_KIND_BOT_CLARIFIED: _ClassVar[OutcomeKind]
    OUTCOME_KIND_HANDED_OFF: _ClassVar[OutcomeKind]
    OUTCOME_KIND_ASSIGNED: _ClassVar[OutcomeKind]
    OUTCOME_KIND_AGENT_REPLIED: _ClassVar[OutcomeKind]
    OUTCOME_KIND_CLOSED: _ClassVar[OutcomeKind]
    OUTCOME_KIND_SURVEY: _ClassVar[OutcomeKind]
    OUTCOME_KIND_TRANSFERRED: _ClassVar[OutcomeKind]

class SurveyScale(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SURVEY_SCALE_UNSPECIFIED: _ClassVar[SurveyScale]
    SURVEY_SCALE_CSAT: _ClassVar[SurveyScale]
    SURVEY_SCALE_NPS: _ClassVar[SurveyScale]
CHANNEL_UNSPECIFIED: Channel
CHANNEL_CHAT: Channel
CHANNEL_EMAIL: Channel
CHANNEL_SMS: Channel
CHANNEL_VOICE_TRANSCRIPT: Channel
HANDOFF_REASON_UNSPECIFIED: HandoffReason
HANDOFF_REASON_CUSTOMER_REQUEST: HandoffReason
HANDOFF_REASON_ANGER: HandoffReason
HANDOFF_REASON_DISTRESS: HandoffReason
HANDOFF_REASON_OUT_OF_SCOPE: HandoffReason
HANDOFF_REASON_LOW_CONFIDENCE: HandoffReason
HANDOFF_REASON_REPEATED_FAILURE: HandoffReason
HANDOFF_REASON_NOT_BOT_ALLOWED: HandoffReason
HANDOFF_REASON_ESCALATING_SENTIMENT: HandoffReason
HANDOFF_REASON_TIER_NOT_SERVED: HandoffReason
HANDOFF_REASON_AMOUNT_ABOVE_LIMIT: HandoffReason
HANDOFF_REASON_BOT_TURN_LIMIT: HandoffReason
HANDOFF_REASON_LANGUAGE_NOT_SERVED: HandoffReason
HANDOFF_REASON_CHURN_RISK: HandoffReason
HANDOFF_REASON_MULTIPLE_REQUESTS: HandoffReason
HANDOFF_REASON_NEEDS_JUDGEMENT: HandoffReason
OUTCOME_KIND_UNSPECIFIED: OutcomeKind
OUTCOME_KIND_BOT_ANSWERED: OutcomeKind
OUTCOME_KIND_BOT_CLARIFIED: OutcomeKind
OUTCOME_KIND_HANDED_OFF: OutcomeKind
OUTCOME_KIND_ASSIGNED: OutcomeKind
OUTCOME_KIND_AGENT_REPLIED: OutcomeKind
OUTCOME_KIND_CLOSED: OutcomeKind
OUTCOME_KIND_SURVEY: OutcomeKind
OUTCOME_KIND_TRANSFERRED: OutcomeKind
SURVEY_SCALE_UNSPECIFIED: SurveyScale
SURVEY_SCALE_CSAT: SurveyScale
SURVEY_SCALE_NPS: SurveyScale

class Customer(_message.Message):
    __slots__ = ("id", "language", "tier", "phone", "time_zone")
    ID_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    TIER_FIELD_NUMBER: _ClassVar[int]
    PHONE_FIELD_NUMBER: _ClassVar[int]
    TIME_ZONE_FIELD_NUMBER: _ClassVar[int]
    id: str
    language: str
    tier: str
    phone: str
    time_zone: str
    def __init__(self, id: _Optional[str] = ..., language: _Optional[str] = ..., tier: _Optional[str] = ..., phone: _Optional[str] = ..., time_zone: _Optional[str] = ...) -> None: ...

class ContactMessage(_message.Message):
    __slots__ = ("channel", "customer", "text", "sent_at")
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    SENT_AT_FIELD_NUMBER: _ClassVar[int]
    channel: Channel
    customer: Customer
    text: str
    sent_at: _timestamp_pb2.Timestamp
    def __init__(self, channel: _Optional[_Union[Channel, str]] = ..., customer: _Optional[_Union[Customer, _Mapping]] = ..., text: _Optional[str] = ..., sent_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Sentiment(_message.Message):
    __slots__ = ("score", "anger", "distress", "urgency")
    SCORE_FIELD_NUMBER: _ClassVar[int]
    ANGER_FIELD_NUMBER: _ClassVar[int]
    DISTRESS_FIELD_NUMBER: _ClassVar[int]
    URGENCY_FIELD_NUMBER: _ClassVar[int]
    score: float
    anger: bool
    distress: bool
    urgency: bool
    def __init__(self, score: _Optional[float] = ..., anger: _Optional[bool] = ..., distress: _Optional[bool] = ..., urgency: _Optional[bool] = ...) -> None: ...

class Classification(_message.Message):
    __slots__ = ("intent", "confidence", "out_of_scope", "best_guess", "sentiment", "asks_for_human", "catalogue_version", "amount", "churn_risk", "other_intents")
    INTENT_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    OUT_OF_SCOPE_FIELD_NUMBER: _ClassVar[int]
    BEST_GUESS_FIELD_NUMBER: _ClassVar[int]
    SENTIMENT_FIELD_NUMBER: _ClassVar[int]
    ASKS_FOR_HUMAN_FIELD_NUMBER: _ClassVar[int]
    CATALOGUE_VERSION_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    CHURN_RISK_FIELD_NUMBER: _ClassVar[int]
    OTHER_INTENTS_FIELD_NUMBER: _ClassVar[int]
    intent: str
    confidence: float
    out_of_scope: bool
    best_guess: str
    sentiment: Sentiment
    asks_for_human: bool
    catalogue_version: str
    amount: float
    churn_risk: bool
    other_intents: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, intent: _Optional[str] = ..., confidence: _Optional[float] = ..., out_of_scope: _Optional[bool] = ..., best_guess: _Optional[str] = ..., sentiment: _Optional[_Union[Sentiment, _Mapping]] = ..., asks_for_human: _Optional[bool] = ..., catalogue_version: _Optional[str] = ..., amount: _Optional[float] = ..., churn_risk: _Optional[bool] = ..., other_intents: _Optional[_Iterable[str]] = ...) -> None: ...

class Turn(_message.Message):
    __slots__ = ("turn_id", "conversation_id", "seq", "channel", "customer", "language", "text", "sent_at", "received_at", "classification", "language_unsure")
    TURN_ID_FIELD_NUMBER: _ClassVar[int]
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    SENT_AT_FIELD_NUMBER: _ClassVar[int]
    RECEIVED_AT_FIELD_NUMBER: _ClassVar[int]
    CLASSIFICATION_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_UNSURE_FIELD_NUMBER: _ClassVar[int]
    turn_id: str
    conversation_id: str
    seq: int
    channel: Channel
    customer: Customer
    language: str
    text: str
    sent_at: _timestamp_pb2.Timestamp
    received_at: _timestamp_pb2.Timestamp
    classification: Classification
    language_unsure: bool
    def __init__(self, turn_id: _Optional[str] = ..., conversation_id: _Optional[str] = ..., seq: _Optional[int] = ..., channel: _Optional[_Union[Channel, str]] = ..., customer: _Optional[_Union[Customer, _Mapping]] = ..., language: _Optional[str] = ..., text: _Optional[str] = ..., sent_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., received_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., classification: _Optional[_Union[Classification, _Mapping]] = ..., language_unsure: _Optional[bool] = ...) -> None: ...

class Lookup(_message.Message):
    __slots__ = ("name", "request", "result", "ok", "error", "turn_id")
    class RequestEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class ResultEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    OK_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    TURN_ID_FIELD_NUMBER: _ClassVar[int]
    name: str
    request: _containers.ScalarMap[str, str]
    result: _containers.ScalarMap[str, str]
    ok: bool
    error: str
    turn_id: str
    def __init__(self, name: _Optional[str] = ..., request: _Optional[_Mapping[str, str]] = ..., result: _Optional[_Mapping[str, str]] = ..., ok: _Optional[bool] = ..., error: _Optional[str] = ..., turn_id: _Optional[str] = ...) -> None: ...

class BotAttempt(_message.Message):
    __slots__ = ("turn_id", "intent", "reply_text", "resolved", "clarification")
    TURN_ID_FIELD_NUMBER: _ClassVar[int]
    INTENT_FIELD_NUMBER: _ClassVar[int]
    REPLY_TEXT_FIELD_NUMBER: _ClassVar[int]
    RESOLVED_FIELD_NUMBER: _ClassVar[int]
    CLARIFICATION_FIELD_NUMBER: _ClassVar[int]
    turn_id: str
    intent: str
    reply_text: str
    resolved: bool
    clarification: bool
    def __init__(self, turn_id: _Optional[str] = ..., intent: _Optional[str] = ..., reply_text: _Optional[str] = ..., resolved: _Optional[bool] = ..., clarification: _Optional[bool] = ...) -> None: ...

class ConversationContext(_message.Message):
    __slots__ = ("conversation_id", "customer", "channel", "language", "turns", "lookups", "bot_attempts", "reason", "reason_detail", "intent", "handed_off_at", "reasons", "priority", "omitted_turns", "advisor_messages", "omitted_advisor_messages")
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    TURNS_FIELD_NUMBER: _ClassVar[int]
    LOOKUPS_FIELD_NUMBER: _ClassVar[int]
    BOT_ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    REASON_DETAIL_FIELD_NUMBER: _ClassVar[int]
    INTENT_FIELD_NUMBER: _ClassVar[int]
    HANDED_OFF_AT_FIELD_NUMBER: _ClassVar[int]
    REASONS_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    OMITTED_TURNS_FIELD_NUMBER: _ClassVar[int]
    ADVISOR_MESSAGES_FIELD_NUMBER: _ClassVar[int]
    OMITTED_ADVISOR_MESSAGES_FIELD_NUMBER: _ClassVar[int]
    conversation_id: str
    customer: Customer
    channel: Channel
    language: str
    turns: _containers.RepeatedCompositeFieldContainer[Turn]
    lookups: _containers.RepeatedCompositeFieldContainer[Lookup]
    bot_attempts: _containers.RepeatedCompositeFieldContainer[BotAttempt]
    reason: HandoffReason
    reason_detail: str
    intent: str
    handed_off_at: _timestamp_pb2.Timestamp
    reasons: _containers.RepeatedScalarFieldContainer[HandoffReason]
    priority: int
    omitted_turns: int
    advisor_messages: _containers.RepeatedCompositeFieldContainer[AdvisorMessage]
    omitted_advisor_messages: int
    def __init__(self, conversation_id: _Optional[str] = ..., customer: _Optional[_Union[Customer, _Mapping]] = ..., channel: _Optional[_Union[Channel, str]] = ..., language: _Optional[str] = ..., turns: _Optional[_Iterable[_Union[Turn, _Mapping]]] = ..., lookups: _Optional[_Iterable[_Union[Lookup, _Mapping]]] = ..., bot_attempts: _Optional[_Iterable[_Union[BotAttempt, _Mapping]]] = ..., reason: _Optional[_Union[HandoffReason, str]] = ..., reason_detail: _Optional[str] = ..., intent: _Optional[str] = ..., handed_off_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., reasons: _Optional[_Iterable[_Union[HandoffReason, str]]] = ..., priority: _Optional[int] = ..., omitted_turns: _Optional[int] = ..., advisor_messages: _Optional[_Iterable[_Union[AdvisorMessage, _Mapping]]] = ..., omitted_advisor_messages: _Optional[int] = ...) -> None: ...

class AdvisorMessage(_message.Message):
    __slots__ = ("reply_id", "agent_id", "text", "sent_at", "after_turn_id")
    REPLY_ID_FIELD_NUMBER: _ClassVar[int]
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    SENT_AT_FIELD_NUMBER: _ClassVar[int]
    AFTER_TURN_ID_FIELD_NUMBER: _ClassVar[int]
    reply_id: str
    agent_id: str
    text: str
    sent_at: _timestamp_pb2.Timestamp
    after_turn_id: str
    def __init__(self, reply_id: _Optional[str] = ..., agent_id: _Optional[str] = ..., text: _Optional[str] = ..., sent_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., after_turn_id: _Optional[str] = ...) -> None: ...

class HandoffEvent(_message.Message):
    __slots__ = ("handoff", "customer_message")
    HANDOFF_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    handoff: ConversationContext
    customer_message: Turn
    def __init__(self, handoff: _Optional[_Union[ConversationContext, _Mapping]] = ..., customer_message: _Optional[_Union[Turn, _Mapping]] = ...) -> None: ...

class ContactSurvey(_message.Message):
    __slots__ = ("score", "comment", "scale", "customer", "answered_at")
    SCORE_FIELD_NUMBER: _ClassVar[int]
    COMMENT_FIELD_NUMBER: _ClassVar[int]
    SCALE_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_FIELD_NUMBER: _ClassVar[int]
    ANSWERED_AT_FIELD_NUMBER: _ClassVar[int]
    score: int
    comment: str
    scale: SurveyScale
    customer: Customer
    answered_at: _timestamp_pb2.Timestamp
    def __init__(self, score: _Optional[int] = ..., comment: _Optional[str] = ..., scale: _Optional[_Union[SurveyScale, str]] = ..., customer: _Optional[_Union[Customer, _Mapping]] = ..., answered_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Outcome(_message.Message):
    __slots__ = ("outcome_id", "conversation_id", "kind", "intent", "language", "channel", "reason", "agent_id", "disposition", "resolved", "at", "customer_id", "survey_scale", "survey_score", "survey_comment")
    OUTCOME_ID_FIELD_NUMBER: _ClassVar[int]
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    INTENT_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    DISPOSITION_FIELD_NUMBER: _ClassVar[int]
    RESOLVED_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    SURVEY_SCALE_FIELD_NUMBER: _ClassVar[int]
    SURVEY_SCORE_FIELD_NUMBER: _ClassVar[int]
    SURVEY_COMMENT_FIELD_NUMBER: _ClassVar[int]
    outcome_id: str
    conversation_id: str
    kind: OutcomeKind
    intent: str
    language: str
    channel: Channel
    reason: HandoffReason
    agent_id: str
    disposition: str
    resolved: bool
    at: _timestamp_pb2.Timestamp
    customer_id: str
    survey_scale: SurveyScale
    survey_score: int
    survey_comment: str
    def __init__(self, outcome_id: _Optional[str] = ..., conversation_id: _Optional[str] = ..., kind: _Optional[_Union[OutcomeKind, str]] = ..., intent: _Optional[str] = ..., language: _Optional[str] = ..., channel: _Optional[_Union[Channel, str]] = ..., reason: _Optional[_Union[HandoffReason, str]] = ..., agent_id: _Optional[str] = ..., disposition: _Optional[str] = ..., resolved: _Optional[bool] = ..., at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., customer_id: _Optional[str] = ..., survey_scale: _Optional[_Union[SurveyScale, str]] = ..., survey_score: _Optional[int] = ..., survey_comment: _Optional[str] = ...) -> None: ...
