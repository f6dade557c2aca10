"""FastAPI dependencies that hand routes the runtime and inbound pipeline built at start-up.

They are ``async def`` although they never await: FastAPI runs a plain ``def`` dependency in
its thread pool, a thread hop per request for a single attribute read.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated, Any

from fastapi import Header, HTTPException, Path, Query, Request, Response
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from bot.pipeline import InboundPort
from bot.runtime import Runtime
from bot.services.idempotency import KEY_PATTERN, KeyReused, create_once
from bot.services.routing import station_subtree
from broadcasts.bulletins import Problem
from models.directory import Station

# Ids are 32-bit integers in PostgreSQL; a larger one is no row of ours (a 422, not a 500).
MAX_ROW_ID = 2**31 - 1
RowId = Annotated[int, Path(ge=1, le=MAX_ROW_ID)]
# A creating POST's retry key (bot.services.idempotency); the answer to a retry says it is one.
IdempotencyKeyHeader = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        pattern=KEY_PATTERN,
        description="any unique string (a UUID), the same on every retry of one request: a "
        "retry answers the first answer again and creates nothing; the key with another "
        "body is 409",
    ),
]
REPLAYED_HEADER = "Idempotent-Replayed"
Offset = Annotated[int, Query(ge=0, le=MAX_ROW_ID, description="skip this many (pages of `limit`)")]


class ErrorOut(BaseModel):
    """An error answer other than a validation error: what went wrong, in words."""

    detail: str


_WHY = {
    401: "no token, or an unknown or revoked one (`WWW-Authenticate: Bearer`)",
    403: "the token's role may not use this route (an officer's on an admin route)",
    404: "no such id or code",
    409: "the current state does not allow it (the detail says why)",
    413: "a body over the size cap",
    415: "an upload of a type not taken (the detail says what it looks like)",
}


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for the error answers a route gives, so the API's page and a
    generated client know them (FastAPI lists only 200 and 422 by itself)."""
    return {code: {"model": ErrorOut, "description": _WHY[code]} for code in codes}


ADMIN_ERRORS = errors(401, 403)


def body_error(field: str, message: str, kind: str = "") -> HTTPException:
    """A 422 shaped like FastAPI's validation errors, ``loc`` pointing into the body at the
    dotted ``field``: for requests that parse but are wrong for the directory or the clock.
    ``kind`` is the error's ``type`` (``unknown``, ``past``, ``empty``…: a client can act on
    it without reading the words), ``value_error`` when none is given."""
    return _invalid(["body", *field.split(".")], message, kind)


async def created_once(
    runtime: Runtime,
    response: Response,
    *,
    route: str,
    key: str | None,
    body: Any,
    created_by: str,
    now: datetime,
    create: Callable[[AsyncSession], Awaitable[dict[str, Any]]],
    problem_is_conflict: bool = False,
) -> tuple[dict[str, Any], bool]:
    """A creating POST's answer, once per ``Idempotency-Key``
    (:func:`bot.services.idempotency.create_once`), and whether it is a retry's (then marked
    with :data:`REPLAYED_HEADER`). The key with another body is ``409``; a :class:`Problem`
    of ``create`` is the body's ``422``, or a ``409`` when the state refused it
    (``problem_is_conflict``: a correction of a recalled notice)."""
    try:
        answer, replayed = await create_once(
            runtime.sessions,
            route=route,
            key=key,
            body=body,
            created_by=created_by,
            now=now,
            create=create,
        )
    except Problem as exc:
        if problem_is_conflict:
            raise HTTPException(409, exc.message) from None
        raise body_error(exc.field, exc.message, exc.code) from None
    except KeyReused as exc:
        raise HTTPException(409, str(exc)) from None
    if replayed:
        response.headers[REPLAYED_HEADER] = "true"
    return answer, replayed


def query_error(name: str, message: str) -> HTTPException:
    """A 422 shaped like FastAPI's validation errors, ``loc`` naming the query parameter."""
    return _invalid(["query", name], message)


def _invalid(loc: list[str], message: str, kind: str = "") -> HTTPException:
    """One error in FastAPI's validation-error shape (``type``, ``loc``, ``msg``)."""
    return HTTPException(422, [{"type": kind or "value_error", "loc": loc, "msg": message}])


def _query_names(dependant: Dependant) -> set[str]:
    """The query parameters a route takes, its dependencies' included."""
    names = {p.alias for p in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return names


def refuse_unknown_query(request: Request) -> None:
    """Refuse a query parameter the route does not take (``?stauts=new``, ``?station=`` where
    there is no such filter) with a 422 naming it: ignored, it would answer every row as if
    filtered, and a client would act on the wrong list without knowing. A parameter given
    twice (``?category=report&category=help``) is refused too: each filter takes one value,
    and the last one alone was used, as if the first had not been asked for."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute):
        return
    known = _query_names(route.dependant)
    names = [name for name, _ in request.query_params.multi_items()]
    unknown = sorted(set(names) - known)
    repeated = sorted({name for name in names if names.count(name) > 1} & known)
    if unknown or repeated:
        raise HTTPException(
            422,
            [
                {
                    "type": "extra_forbidden",
                    "loc": ["query", name],
                    "msg": "unknown query parameter; this route takes: "
                    + (", ".join(sorted(known)) or "none"),
                }
                for name in unknown
            ]
            + [
                {
                    "type": "repeated",
                    "loc": ["query", name],
                    "msg": "given more than once; it takes one value",
                }
                for name in repeated
            ],
        )


async def station_filter(session: AsyncSession, station: str | None) -> set[str] | None:
    """The ids of ``station`` and the stations below it, for a list's ``?station=`` (``None``:
    no filter); an unknown station is a 422 naming the parameter, never an empty list."""
    if not station:
        return None
    if await session.get(Station, station) is None:
        raise query_error("station", f"no station {station!r}")
    return await station_subtree(session, [station])


def runtime_of(request: Request) -> Runtime:
    """The app's runtime, read directly: the channel endpoints, whose every microsecond counts
    (issue 17), skip FastAPI's dependency solving (about a fifth of an accepted event's CPU)."""
    runtime: Runtime = request.app.state.runtime  # app.state holds untyped attributes
    return runtime


def pipeline_of(request: Request) -> InboundPort:
    """The app's inbound pipeline (journal writer and processor, in this process or in the
    server's processing process), read directly."""
    pipeline: InboundPort = request.app.state.pipeline
    return pipeline


async def get_runtime(request: Request) -> Runtime:
    """The app's runtime."""
    return runtime_of(request)


async def get_pipeline(request: Request) -> InboundPort:
    """The app's inbound pipeline (journal writer and processor)."""
    return pipeline_of(request)
