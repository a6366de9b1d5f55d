from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class KpiRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class KpiCounts(_message.Message):
    __slots__ = ("contacts", "bot_resolved", "handed_off")
    CONTACTS_FIELD_NUMBER: _ClassVar[int]
    BOT_RESOLVED_FIELD_NUMBER: _ClassVar[int]
    HANDED_OFF_FIELD_NUMBER: _ClassVar[int]
    contacts: int
    bot_resolved: int
    handed_off: int
    def __init__(self, contacts: _Optional[int] = ..., bot_resolved: _Optional[int] = ..., handed_off: _Optional[int] = ...) -> None: ...

class KpiReply(_message.Message):
    __slots__ = ("total", "by_intent", "by_language", "suggestions")
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
    total: KpiCounts
    by_intent: _containers.MessageMap[str, KpiCounts]
    by_language: _containers.MessageMap[str, KpiCounts]
    suggestions: SuggestionCounts
    def __init__(self, total: _Optional[_Union[KpiCounts, _Mapping]] = ..., by_intent: _Optional[_Mapping[str, KpiCounts]] = ..., by_language: _Optional[_Mapping[str, KpiCounts]] = ..., suggestions: _Optional[_Union[SuggestionCounts, _Mapping]] = ...) -> None: ...

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
