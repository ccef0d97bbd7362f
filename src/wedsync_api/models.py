"""Request and response bodies of the reference API."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal, get_args
from uuid import UUID

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

MAX_ID = 2**63 - 1

Category = Literal[
    "photographer",
    "videographer",
    "florist",
    "caterer",
    "band",
    "dj",
    "cake",
    "hair_makeup",
    "officiant",
    "planner",
    "transport",
    "stationery",
]
CATEGORIES: tuple[str, ...] = get_args(Category)
ArrivalStatus = Literal["expected", "arrived", "late", "no_show"]
CheckinStatus = Literal["arrived", "late", "no_show"]


def storable_text(value: str) -> str:
    """PostgreSQL text holds neither NUL nor lone surrogates: reject them as 422, not 500."""
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode text") from None
    return value


Text = Annotated[str, AfterValidator(storable_text)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SupplierSummary(BaseModel):
    id: int
    name: str
    category: str
    region: str
    rating: float | None
    price_band: int
    distance_km: float | None = None


class Supplier(SupplierSummary):
    lat: float
    lon: float
    services: list[str]
    email: str | None
    phone: str | None


class SupplierPage(BaseModel):
    items: list[SupplierSummary]
    page: int
    page_size: int
    has_more: bool


class DayAvailability(BaseModel):
    day: date
    available: bool


class VenueAvailability(BaseModel):
    venue_id: int
    days: list[DayAvailability]


class BookingRequest(_Body):
    day: date
    wedding_id: Annotated[int, Field(ge=1, le=MAX_ID)] | None = None


class Booking(BaseModel):
    id: int
    venue_id: int
    day: date
    wedding_id: int | None


class VenueSummary(BaseModel):
    id: int
    name: str
    region: str
    capacity: int


class BookedSupplier(BaseModel):
    id: int
    name: str
    category: str
    role: str


class Wedding(BaseModel):
    id: int
    wedding_date: date
    status: str
    guest_count: int
    couple: list[str]
    venue: VenueSummary | None
    suppliers: list[BookedSupplier]


class TimelineItem(BaseModel):
    id: int
    starts_at: datetime
    ends_at: datetime
    title: str
    location: str
    supplier_id: int | None


class Timeline(BaseModel):
    wedding_id: int
    wedding_date: date
    items: list[TimelineItem]


class Vendor(BaseModel):
    supplier_id: int
    name: str
    category: str
    role: str
    email: str | None
    phone: str | None
    arrival_status: ArrivalStatus
    arrived_at: datetime | None


class VendorList(BaseModel):
    wedding_id: int
    wedding_date: date
    vendors: list[Vendor]


class CheckinRequest(_Body):
    supplier_id: Annotated[int, Field(ge=1, le=MAX_ID)]
    status: CheckinStatus = "arrived"
    note: Annotated[Text, Field(max_length=500)] = ""


class Checkin(BaseModel):
    id: int
    wedding_id: int
    supplier_id: int
    status: CheckinStatus
    created_at: datetime


class MessageRequest(_Body):
    sender: Annotated[Text, Field(min_length=1, max_length=100)]
    body: Annotated[Text, Field(min_length=1, max_length=2000)]


class Message(BaseModel):
    id: int
    wedding_id: int
    sender: str
    body: str
    created_at: datetime


class ImportResult(BaseModel):
    id: UUID
    kind: str
    format: str
    status: str
    row_count: int
    created_at: datetime
    finished_at: datetime | None


class RowError(BaseModel):
    row: int = Field(
        description="1-based data row (the CSV header is not counted; 0 is the header)"
    )
    field: str
    message: str


class ImportRejected(BaseModel):
    detail: str
    error_count: int
    errors: list[RowError]
