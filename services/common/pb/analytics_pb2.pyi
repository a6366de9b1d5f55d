import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class KpiRequest(_message.Message):
    __slots__ = ("window", "dimension", "to")
    WINDOW_FIELD_NUMBER: _ClassVar[int]
    DIMENSION_FIELD_NUMBER: _ClassVar[int]
    FROM_FIELD_NUMBER: _ClassVar[int]
    TO_FIELD_NUMBER: _ClassVar[int]
    window: str
    dimension: str
    to: _timestamp_pb2.Timestamp
    def __init__(self, window: _Optional[str] = ..., dimension: _Optional[str] = ..., to: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., **kwargs) -> None: ...

class KpiCounts(_message.Message):
    __slots__ = ("contacts", "bot_resolved", "handed_off")
    CONTACTS_FIELD_NUMBER: _ClassVar[int]
    BOT_RESOLVED_FIELD_NUMBER: _ClassVar[int]
    HANDED_OFF_FIELD_NUMBER: _ClassVar[int]
    contacts: int
    bot_resolved: int
    handed_off: int
    def __init__(self, contacts: _Optional[int] = ..., bot_resolved: _Optional[int] = ..., handed_off: _Optional[int] = ...) -> None: ...

class SideKpis(_message.Message):
    __slots__ = ("contacts", "resolved", "fcr", "csat", "csat_mean", "csat_responses", "nps", "nps_responses", "handling_seconds", "cost_per_contact", "interactions")
    CONTACTS_FIELD_NUMBER: _ClassVar[int]
    RESOLVED_FIELD_NUMBER: _ClassVar[int]
    FCR_FIELD_NUMBER: _ClassVar[int]
    CSAT_FIELD_NUMBER: _ClassVar[int]
    CSAT_MEAN_FIELD_NUMBER: _ClassVar[int]
    CSAT_RESPONSES_FIELD_NUMBER: _ClassVar[int]
    NPS_FIELD_NUMBER: _ClassVar[int]
    NPS_RESPONSES_FIELD_NUMBER: _ClassVar[int]
    HANDLING_SECONDS_FIELD_NUMBER: _ClassVar[int]
    COST_PER_CONTACT_FIELD_NUMBER: _ClassVar[int]
    INTERACTIONS_FIELD_NUMBER: _ClassVar[int]
    contacts: int
    resolved: int
    fcr: float
    csat: float
    csat_mean: float
    csat_responses: int
    nps: float
    nps_responses: int
    handling_seconds: float
    cost_per_contact: float
    interactions: int
    def __init__(self, contacts: _Optional[int] = ..., resolved: _Optional[int] = ..., fcr: _Optional[float] = ..., csat: _Optional[float] = ..., csat_mean: _Optional[float] = ..., csat_responses: _Optional[int] = ..., nps: _Optional[float] = ..., nps_responses: _Optional[int] = ..., handling_seconds: _Optional[float] = ..., cost_per_contact: _Optional[float] = ..., interactions: _Optional[int] = ...) -> None: ...

class Kpis(_message.Message):
    __slots__ = ("window_start", "dimension_value", "contacts", "bot", "human", "contained", "false_contained", "containment_rate", "false_containment_rate", "effective_containment_rate", "fcr", "handoff_rate", "handoff_reasons", "abandoned", "abandonment_rate", "asa_seconds", "service_level", "occupancy", "contacts_per_agent_hour", "suggestion_acceptance", "total_cost", "all_human_cost", "saving", "answered", "agent")
    class HandoffReasonsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    WINDOW_START_FIELD_NUMBER: _ClassVar[int]
    DIMENSION_VALUE_FIELD_NUMBER: _ClassVar[int]
    CONTACTS_FIELD_NUMBER: _ClassVar[int]
    BOT_FIELD_NUMBER: _ClassVar[int]
    HUMAN_FIELD_NUMBER: _ClassVar[int]
    CONTAINED_FIELD_NUMBER: _ClassVar[int]
    FALSE_CONTAINED_FIELD_NUMBER: _ClassVar[int]
    CONTAINMENT_RATE_FIELD_NUMBER: _ClassVar[int]
    FALSE_CONTAINMENT_RATE_FIELD_NUMBER: _ClassVar[int]
    EFFECTIVE_CONTAINMENT_RATE_FIELD_NUMBER: _ClassVar[int]
    FCR_FIELD_NUMBER: _ClassVar[int]
    HANDOFF_RATE_FIELD_NUMBER: _ClassVar[int]
    HANDOFF_REASONS_FIELD_NUMBER: _ClassVar[int]
    ABANDONED_FIELD_NUMBER: _ClassVar[int]
    ABANDONMENT_RATE_FIELD_NUMBER: _ClassVar[int]
    ASA_SECONDS_FIELD_NUMBER: _ClassVar[int]
    SERVICE_LEVEL_FIELD_NUMBER: _ClassVar[int]
    OCCUPANCY_FIELD_NUMBER: _ClassVar[int]
    CONTACTS_PER_AGENT_HOUR_FIELD_NUMBER: _ClassVar[int]
    SUGGESTION_ACCEPTANCE_FIELD_NUMBER: _ClassVar[int]
    TOTAL_COST_FIELD_NUMBER: _ClassVar[int]
    ALL_HUMAN_COST_FIELD_NUMBER: _ClassVar[int]
    SAVING_FIELD_NUMBER: _ClassVar[int]
    ANSWERED_FIELD_NUMBER: _ClassVar[int]
    AGENT_FIELD_NUMBER: _ClassVar[int]
    window_start: str
    dimension_value: str
    contacts: int
    bot: SideKpis
    human: SideKpis
    contained: int
    false_contained: int
    containment_rate: float
    false_containment_rate: float
    effective_containment_rate: float
    fcr: float
    handoff_rate: float
    handoff_reasons: _containers.ScalarMap[str, int]
    abandoned: int
    abandonment_rate: float
    asa_seconds: float
    service_level: float
    occupancy: float
    contacts_per_agent_hour: float
    suggestion_acceptance: float
    total_cost: float
    all_human_cost: float
    saving: float
    answered: int
    agent: AgentKpis
    def __init__(self, window_start: _Optional[str] = ..., dimension_value: _Optional[str] = ..., contacts: _Optional[int] = ..., bot: _Optional[_Union[SideKpis, _Mapping]] = ..., human: _Optional[_Union[SideKpis, _Mapping]] = ..., contained: _Optional[int] = ..., false_contained: _Optional[int] = ..., containment_rate: _Optional[float] = ..., false_containment_rate: _Optional[float] = ..., effective_containment_rate: _Optional[float] = ..., fcr: _Optional[float] = ..., handoff_rate: _Optional[float] = ..., handoff_reasons: _Optional[_Mapping[str, int]] = ..., abandoned: _Optional[int] = ..., abandonment_rate: _Optional[float] = ..., asa_seconds: _Optional[float] = ..., service_level: _Optional[float] = ..., occupancy: _Optional[float] = ..., contacts_per_agent_hour: _Optional[float] = ..., suggestion_acceptance: _Optional[float] = ..., total_cost: _Optional[float] = ..., all_human_cost: _Optional[float] = ..., saving: _Optional[float] = ..., answered: _Optional[int] = ..., agent: _Optional[_Union[AgentKpis, _Mapping]] = ...) -> None: ...

class AgentKpis(_message.Message):
    __slots__ = ("transfers", "transfer_rate", "suggestions_answered", "suggestions_used", "suggestions_edited", "suggestions_ignored", "suggestion_acceptance_rate")
    TRANSFERS_FIELD_NUMBER: _ClassVar[int]
    TRANSFER_RATE_FIELD_NUMBER: _ClassVar[int]
    SUGGESTIONS_ANSWERED_FIELD_NUMBER: _ClassVar[int]
    SUGGESTIONS_USED_FIELD_NUMBER: _ClassVar[int]
    SUGGESTIONS_EDITED_FIELD_NUMBER: _ClassVar[int]
    SUGGESTIONS_IGNORED_FIELD_NUMBER: _ClassVar[int]
    SUGGESTION_ACCEPTANCE_RATE_FIELD_NUMBER: _ClassVar[int]
    transfers: int
    transfer_rate: float
    suggestions_answered: int
    suggestions_used: int
    suggestions_edited: int
    suggestions_ignored: int
    suggestion_acceptance_rate: float
    def __init__(self, transfers: _Optional[int] = ..., transfer_rate: _Optional[float] = ..., suggestions_answered: _Optional[int] = ..., suggestions_used: _Optional[int] = ..., suggestions_edited: _Optional[int] = ..., suggestions_ignored: _Optional[int] = ..., suggestion_acceptance_rate: _Optional[float] = ...) -> None: ...

class KpiReply(_message.Message):
    __slots__ = ("total", "by_intent", "by_language", "suggestions", "rows", "currency", "service_level_seconds", "recontact_days")
    class ByIntentEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: KpiCounts
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[KpiCounts, _Mapping]] = ...) -> None: ...
    class ByLanguageEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: KpiCounts
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[KpiCounts, _Mapping]] = ...) -> None: ...
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    BY_INTENT_FIELD_NUMBER: _ClassVar[int]
    BY_LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    SUGGESTIONS_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    SERVICE_LEVEL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    RECONTACT_DAYS_FIELD_NUMBER: _ClassVar[int]
    total: KpiCounts
    by_intent: _containers.MessageMap[str, KpiCounts]
    by_language: _containers.MessageMap[str, KpiCounts]
    suggestions: SuggestionCounts
    rows: _containers.RepeatedCompositeFieldContainer[Kpis]
    currency: str
    service_level_seconds: float
    recontact_days: float
    def __init__(self, total: _Optional[_Union[KpiCounts, _Mapping]] = ..., by_intent: _Optional[_Mapping[str, KpiCounts]] = ..., by_language: _Optional[_Mapping[str, KpiCounts]] = ..., suggestions: _Optional[_Union[SuggestionCounts, _Mapping]] = ..., rows: _Optional[_Iterable[_Union[Kpis, _Mapping]]] = ..., currency: _Optional[str] = ..., service_level_seconds: _Optional[float] = ..., recontact_days: _Optional[float] = ...) -> None: ...

class SuggestionCounts(_message.Message):
    __slots__ = ("used", "edited", "ignored", "acceptance_rate")
    USED_FIELD_NUMBER: _ClassVar[int]
    EDITED_FIELD_NUMBER: _ClassVar[int]
    IGNORED_FIELD_NUMBER: _ClassVar[int]
    ACCEPTANCE_RATE_FIELD_NUMBER: _ClassVar[int]
    used: int
    edited: int
    ignored: int
    acceptance_rate: float
    def __init__(self, used: _Optional[int] = ..., edited: _Optional[int] = ..., ignored: _Optional[int] = ..., acceptance_rate: _Optional[float] = ...) -> None: ...

class IrritantsRequest(_message.Message):
    __slots__ = ("to", "max_topics")
    FROM_FIELD_NUMBER: _ClassVar[int]
    TO_FIELD_NUMBER: _ClassVar[int]
    MAX_TOPICS_FIELD_NUMBER: _ClassVar[int]
    to: _timestamp_pb2.Timestamp
    max_topics: int
    def __init__(self, to: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., max_topics: _Optional[int] = ..., **kwargs) -> None: ...

class Irritant(_message.Message):
    __slots__ = ("label", "size", "previous_size", "trend", "examples", "terms", "languages")
    LABEL_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_SIZE_FIELD_NUMBER: _ClassVar[int]
    TREND_FIELD_NUMBER: _ClassVar[int]
    EXAMPLES_FIELD_NUMBER: _ClassVar[int]
    TERMS_FIELD_NUMBER: _ClassVar[int]
    LANGUAGES_FIELD_NUMBER: _ClassVar[int]
    label: str
    size: int
    previous_size: int
    trend: float
    examples: _containers.RepeatedScalarFieldContainer[str]
    terms: _containers.RepeatedScalarFieldContainer[str]
    languages: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, label: _Optional[str] = ..., size: _Optional[int] = ..., previous_size: _Optional[int] = ..., trend: _Optional[float] = ..., examples: _Optional[_Iterable[str]] = ..., terms: _Optional[_Iterable[str]] = ..., languages: _Optional[_Iterable[str]] = ...) -> None: ...

class IrritantsReply(_message.Message):
    __slots__ = ("irritants", "verbatims", "previous_verbatims", "contacts", "previous_contacts")
    IRRITANTS_FIELD_NUMBER: _ClassVar[int]
    VERBATIMS_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_VERBATIMS_FIELD_NUMBER: _ClassVar[int]
    CONTACTS_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_CONTACTS_FIELD_NUMBER: _ClassVar[int]
    irritants: _containers.RepeatedCompositeFieldContainer[Irritant]
    verbatims: int
    previous_verbatims: int
    contacts: int
    previous_contacts: int
    def __init__(self, irritants: _Optional[_Iterable[_Union[Irritant, _Mapping]]] = ..., verbatims: _Optional[int] = ..., previous_verbatims: _Optional[int] = ..., contacts: _Optional[int] = ..., previous_contacts: _Optional[int] = ...) -> None: ...

class StaffingRequest(_message.Message):
    __slots__ = ("target_level", "target_seconds", "peak_multiplier", "to", "concurrency")
    TARGET_LEVEL_FIELD_NUMBER: _ClassVar[int]
    TARGET_SECONDS_FIELD_NUMBER: _ClassVar[int]
    PEAK_MULTIPLIER_FIELD_NUMBER: _ClassVar[int]
    FROM_FIELD_NUMBER: _ClassVar[int]
    TO_FIELD_NUMBER: _ClassVar[int]
    CONCURRENCY_FIELD_NUMBER: _ClassVar[int]
    target_level: float
    target_seconds: float
    peak_multiplier: float
    to: _timestamp_pb2.Timestamp
    concurrency: float
    def __init__(self, target_level: _Optional[float] = ..., target_seconds: _Optional[float] = ..., peak_multiplier: _Optional[float] = ..., to: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., concurrency: _Optional[float] = ..., **kwargs) -> None: ...

class StaffingPlan(_message.Message):
    __slots__ = ("agents", "service_level", "occupancy", "asa_seconds")
    AGENTS_FIELD_NUMBER: _ClassVar[int]
    SERVICE_LEVEL_FIELD_NUMBER: _ClassVar[int]
    OCCUPANCY_FIELD_NUMBER: _ClassVar[int]
    ASA_SECONDS_FIELD_NUMBER: _ClassVar[int]
    agents: int
    service_level: float
    occupancy: float
    asa_seconds: float
    def __init__(self, agents: _Optional[int] = ..., service_level: _Optional[float] = ..., occupancy: _Optional[float] = ..., asa_seconds: _Optional[float] = ...) -> None: ...

class StaffingReply(_message.Message):
    __slots__ = ("calls_per_hour", "aht_seconds", "basis", "recommended", "peak", "curve")
    CALLS_PER_HOUR_FIELD_NUMBER: _ClassVar[int]
    AHT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    BASIS_FIELD_NUMBER: _ClassVar[int]
    RECOMMENDED_FIELD_NUMBER: _ClassVar[int]
    PEAK_FIELD_NUMBER: _ClassVar[int]
    CURVE_FIELD_NUMBER: _ClassVar[int]
    calls_per_hour: float
    aht_seconds: float
    basis: str
    recommended: StaffingPlan
    peak: StaffingPlan
    curve: _containers.RepeatedCompositeFieldContainer[StaffingPlan]
    def __init__(self, calls_per_hour: _Optional[float] = ..., aht_seconds: _Optional[float] = ..., basis: _Optional[str] = ..., recommended: _Optional[_Union[StaffingPlan, _Mapping]] = ..., peak: _Optional[_Union[StaffingPlan, _Mapping]] = ..., curve: _Optional[_Iterable[_Union[StaffingPlan, _Mapping]]] = ...) -> None: ...

class AlertsRequest(_message.Message):
    __slots__ = ("to",)
    FROM_FIELD_NUMBER: _ClassVar[int]
    TO_FIELD_NUMBER: _ClassVar[int]
    to: _timestamp_pb2.Timestamp
    def __init__(self, to: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., **kwargs) -> None: ...

class RaisedAlert(_message.Message):
    __slots__ = ("alert_id", "kind", "window_start", "detail", "raised_at")
    ALERT_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    WINDOW_START_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    RAISED_AT_FIELD_NUMBER: _ClassVar[int]
    alert_id: str
    kind: str
    window_start: str
    detail: str
    raised_at: _timestamp_pb2.Timestamp
    def __init__(self, alert_id: _Optional[str] = ..., kind: _Optional[str] = ..., window_start: _Optional[str] = ..., detail: _Optional[str] = ..., raised_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class AlertsReply(_message.Message):
    __slots__ = ("alerts", "window")
    ALERTS_FIELD_NUMBER: _ClassVar[int]
    WINDOW_FIELD_NUMBER: _ClassVar[int]
    alerts: _containers.RepeatedCompositeFieldContainer[RaisedAlert]
    window: str
    def __init__(self, alerts: _Optional[_Iterable[_Union[RaisedAlert, _Mapping]]] = ..., window: _Optional[str] = ...) -> None: ...
