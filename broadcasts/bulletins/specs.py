"""The edge: what the admin API, the console and the CLI accept, and what they are told."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from bot.messages import storable_text, without_controls
from broadcasts.bulletins.schedule import parse_cron
from models.bulletins import BULLETIN_CATEGORIES, BulletinCategory


class InputSpec(BaseModel):
    """What the admin API and the CLI take in: strict about keys and about text."""

    # A misspelt key is a mistake worth a 422, not something to ignore silently.
    model_config = ConfigDict(extra="forbid")

    @field_validator("*")
    @classmethod
    def _storable(cls, value: Any) -> Any:
        # NUL (PostgreSQL refuses it) or a lone surrogate (no encoding takes it) would be a
        # 500 at the database; it is the caller's mistake, a 422.
        texts = value if isinstance(value, list) else [value]
        if any(isinstance(t, str) and not storable_text(t) for t in texts):
            raise PydanticCustomError(
                "unstorable", "NUL characters and lone surrogates are not allowed"
            )
        # Bidi overrides and zero-width spaces go, as from residents' words (bot.messages): a
        # right-to-left override showed a bulletin's words reversed in every group.
        if isinstance(value, str):
            return without_controls(value)
        if isinstance(value, list):
            return [without_controls(t) if isinstance(t, str) else t for t in value]
        return value


class MediaSpec(InputSpec):
    # The types the bridge contract names (docs/interfaces.md, 3.3): a "link" was accepted
    # here and went to bridges that know only these three.
    type: Literal["video", "image", "file"]
    url: str = Field(min_length=1, max_length=1000)
    title: str | None = Field(default=None, max_length=200)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not (value.startswith(("https://", "http://")) or value.startswith("/media/")):
            raise PydanticCustomError(
                "media_url", "must be an http(s) URL or /media/<name> from POST /api/v1/media"
            )
        return value


class TargetSpec(InputSpec):
    """Exactly one of ``groups``, ``tags``, ``stations`` (with their sub-stations), ``all``."""

    groups: list[str] | None = None
    tags: list[str] | None = None
    stations: list[str] | None = None
    all: bool | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> TargetSpec:
        given = [k for k in ("groups", "tags", "stations", "all") if getattr(self, k) is not None]
        if len(given) != 1:
            raise PydanticCustomError(
                "targets_one", "give exactly one of groups, tags, stations, all"
            )
        key = given[0]
        if key == "all" and self.all is not True:
            raise PydanticCustomError("targets_one", "all must be true")
        if key != "all" and not getattr(self, key):
            raise PydanticCustomError(
                "targets_empty", "{key} is empty: name at least one", {"key": key}
            )
        return self

    def as_dict(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)


def _aware(value: datetime | None, what: str) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise PydanticCustomError(
            "needs_offset",
            "{what} needs a UTC offset, e.g. 2026-12-01T08:00:00+08:00",
            {"what": what},
        )
    return value.astimezone(UTC) if value is not None else None


class ScheduleSpec(InputSpec):
    """``{"at": ISO-8601 with offset}`` or ``{"cron": "m h dom mon dow", "start"?, "end"?}``."""

    at: datetime | None = None
    cron: str | None = None
    start: datetime | None = None
    end: datetime | None = None

    @field_validator("at", "start", "end", mode="before")
    @classmethod
    def _written_out(cls, value: Any) -> Any:
        # pydantic would take 1764380000 as a time; the contract asks for ISO-8601.
        if value is not None and not isinstance(value, str | datetime):
            raise PydanticCustomError(
                "needs_offset", "must be ISO-8601 with a UTC offset, e.g. 2026-12-01T08:00:00+08:00"
            )
        return value

    @field_validator("at", "start", "end")
    @classmethod
    def _has_offset(cls, value: datetime | None) -> datetime | None:
        return _aware(value, "the time")

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                parse_cron(value)
            except ValueError as exc:
                raise PydanticCustomError(
                    "cron_invalid", "{reason}", {"reason": str(exc)}
                ) from None
        return value

    @model_validator(mode="after")
    def _one_kind(self) -> ScheduleSpec:
        if (self.at is None) == (self.cron is None):
            raise PydanticCustomError("schedule_one", "give exactly one of at, cron")
        if self.at is not None and (self.start or self.end):
            raise PydanticCustomError("schedule_one", "start and end go with cron, not at")
        if self.start and self.end and self.end <= self.start:
            raise PydanticCustomError("end_before_start", "end must be after start")
        return self


class BulletinSpec(InputSpec):
    """A bulletin as the API (``POST /api/v1/bulletins``) and ``lianxin bulletin add`` take it."""

    title: str = Field(min_length=1, max_length=200)
    # One list of categories (models.bulletins): the API's enum, the console's picker.
    category: BulletinCategory
    text: str = Field(min_length=1, max_length=4000)
    media: MediaSpec | None = None
    cover: str | None = Field(default=None, max_length=1000)
    targets: TargetSpec
    schedule: ScheduleSpec

    @field_validator("title", "text")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise PydanticCustomError("blank", "must not be blank")
        return value


class BulletinPatch(InputSpec):
    """``PATCH``: any subset of a bulletin's fields; edits apply to runs not fanned out yet."""

    title: str | None = Field(default=None, min_length=1, max_length=200)
    category: str | None = None
    text: str | None = Field(default=None, min_length=1, max_length=4000)
    media: MediaSpec | None = None
    cover: str | None = Field(default=None, max_length=1000)
    targets: TargetSpec | None = None
    schedule: ScheduleSpec | None = None

    @field_validator("category")
    @classmethod
    def _category(cls, value: str | None) -> str | None:
        if value is not None and value not in BULLETIN_CATEGORIES:
            raise ValueError(f"must be one of {', '.join(BULLETIN_CATEGORIES)}")
        return value

    @field_validator("title", "category", "text", "targets", "schedule", mode="before")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        # null removes media and a cover; these a bulletin cannot be without (left out, a
        # field keeps its value). Before, a null was taken as "unchanged" without a word.
        if value is None:
            raise PydanticCustomError("not_null", "cannot be removed: leave it out to keep it")
        return value


class Problem(Exception):
    """A request that is well-formed but wrong; ``field`` is a dotted path into the body.

    ``code`` and ``values`` say the same for a caller that words it itself (the console, in
    Chinese): ``unknown`` (``names``), ``past``, ``never_fires``, ``outside_scope``
    (``names``), ``scope_tags``, ``scope_all``.
    """

    def __init__(self, field: str, message: str, *, code: str = "", **values: Any) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message
        self.code = code
        self.values = values


class Conflict(Exception):
    """An action the bulletin's state does not allow (resume a cancelled one)."""
