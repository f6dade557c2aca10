"""Bearer-token auth for ``/api/v1``: 401 without a valid token, 403 for the wrong role."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from bot.runtime import Runtime
from bot.services.tokens import find_token
from bot.web.deps import get_runtime, refuse_unknown_query

bearer = HTTPBearer(auto_error=False)


@dataclass(frozen=True)
class Caller:
    token_id: int
    role: str
    name: str

    @property
    def author(self) -> str:
        """How what an admin's token made is signed (``created_by``): ``admin:<name or id>``."""
        return f"admin:{self.name or self.token_id}"


def require_role(*roles: str) -> Callable[..., Awaitable[Caller]]:
    """A dependency admitting tokens whose role is one of ``roles``."""

    async def dependency(
        credentials: HTTPAuthorizationCredentials | None = Depends(bearer),
        runtime: Runtime = Depends(get_runtime),
    ) -> Caller:
        if credentials is None or credentials.scheme.lower() != "bearer":
            raise HTTPException(
                401, "bearer token required", headers={"WWW-Authenticate": "Bearer"}
            )
        async with runtime.sessions() as session:
            row = await find_token(session, credentials.credentials)
        if row is None:
            raise HTTPException(401, "invalid token", headers={"WWW-Authenticate": "Bearer"})
        if row.role not in roles:
            raise HTTPException(403, f"needs role {' or '.join(roles)}")
        return Caller(row.id, row.role, row.name)

    return dependency


require_admin = require_role("admin")
require_officer = require_role("admin", "officer")


async def admin_known_query(request: Request, caller: Caller = Depends(require_admin)) -> Caller:
    """An admin route's guard: the token first (401/403 say nothing of the route), then every
    query parameter must be one the route takes (422 naming it otherwise). Shares
    :data:`require_admin`'s answer, so the token is looked up once."""
    refuse_unknown_query(request)
    return caller


# For ``dependencies=[…]`` of an admin router or route.
ADMIN_QUERY = Depends(admin_known_query)
