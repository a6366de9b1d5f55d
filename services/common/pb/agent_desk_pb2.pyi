from relais.common.pb import conversation_pb2 as _conversation_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SignInRequest(_message.Message):
    __slots__ = ("agent_id", "display_name", "languages", "skills")
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    LANGUAGES_FIELD_NUMBER: _ClassVar[int]
    SKILLS_FIELD_NUMBER: _ClassVar[int]
    agent_id: str
    display_name: str
    languages: _containers.RepeatedScalarFieldContainer[str]
    skills: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, agent_id: _Optional[str] = ..., display_name: _Optional[str] = ..., languages: _Optional[_Iterable[str]] = ..., skills: _Optional[_Iterable[str]] = ...) -> None: ...

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

class SubscribeRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Offer(_message.Message):
    __slots__ = ("task_id", "context")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    context: _conversation_pb2.ConversationContext
    def __init__(self, task_id: _Optional[str] = ..., context: _Optional[_Union[_conversation_pb2.ConversationContext, _Mapping]] = ...) -> None: ...

class Assignment(_message.Message):
    __slots__ = ("task_id", "context")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    context: _conversation_pb2.ConversationContext
    def __init__(self, task_id: _Optional[str] = ..., context: _Optional[_Union[_conversation_pb2.ConversationContext, _Mapping]] = ...) -> None: ...

class CustomerMessage(_message.Message):
    __slots__ = ("task_id", "turn")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    TURN_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    turn: _conversation_pb2.Turn
    def __init__(self, task_id: _Optional[str] = ..., turn: _Optional[_Union[_conversation_pb2.Turn, _Mapping]] = ...) -> None: ...

class DeskEvent(_message.Message):
    __slots__ = ("offer", "assignment", "customer_message")
    OFFER_FIELD_NUMBER: _ClassVar[int]
    ASSIGNMENT_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    offer: Offer
    assignment: Assignment
    customer_message: CustomerMessage
    def __init__(self, offer: _Optional[_Union[Offer, _Mapping]] = ..., assignment: _Optional[_Union[Assignment, _Mapping]] = ..., customer_message: _Optional[_Union[CustomerMessage, _Mapping]] = ...) -> None: ...

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
