from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class OpeningHoursRequest(_message.Message):
    __slots__ = ("site",)
    SITE_FIELD_NUMBER: _ClassVar[int]
    site: str
    def __init__(self, site: _Optional[str] = ...) -> None: ...

class OpeningHoursReply(_message.Message):
    __slots__ = ("site", "days")
    SITE_FIELD_NUMBER: _ClassVar[int]
    DAYS_FIELD_NUMBER: _ClassVar[int]
    site: str
    days: _containers.RepeatedCompositeFieldContainer[DayHours]
    def __init__(self, site: _Optional[str] = ..., days: _Optional[_Iterable[_Union[DayHours, _Mapping]]] = ...) -> None: ...

class DayHours(_message.Message):
    __slots__ = ("weekday", "opens", "closes")
    WEEKDAY_FIELD_NUMBER: _ClassVar[int]
    OPENS_FIELD_NUMBER: _ClassVar[int]
    CLOSES_FIELD_NUMBER: _ClassVar[int]
    weekday: int
    opens: str
    closes: str
    def __init__(self, weekday: _Optional[int] = ..., opens: _Optional[str] = ..., closes: _Optional[str] = ...) -> None: ...

class OrderStatusRequest(_message.Message):
    __slots__ = ("order_id", "customer_id")
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    order_id: str
    customer_id: str
    def __init__(self, order_id: _Optional[str] = ..., customer_id: _Optional[str] = ...) -> None: ...

class OrderStatusReply(_message.Message):
    __slots__ = ("order_id", "status", "carrier", "expected_delivery")
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    CARRIER_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_DELIVERY_FIELD_NUMBER: _ClassVar[int]
    order_id: str
    status: str
    carrier: str
    expected_delivery: str
    def __init__(self, order_id: _Optional[str] = ..., status: _Optional[str] = ..., carrier: _Optional[str] = ..., expected_delivery: _Optional[str] = ...) -> None: ...

class AccountBalanceRequest(_message.Message):
    __slots__ = ("customer_id",)
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    def __init__(self, customer_id: _Optional[str] = ...) -> None: ...

class AccountBalanceReply(_message.Message):
    __slots__ = ("account_masked", "balance_cents", "currency", "as_of")
    ACCOUNT_MASKED_FIELD_NUMBER: _ClassVar[int]
    BALANCE_CENTS_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    AS_OF_FIELD_NUMBER: _ClassVar[int]
    account_masked: str
    balance_cents: int
    currency: str
    as_of: str
    def __init__(self, account_masked: _Optional[str] = ..., balance_cents: _Optional[int] = ..., currency: _Optional[str] = ..., as_of: _Optional[str] = ...) -> None: ...
