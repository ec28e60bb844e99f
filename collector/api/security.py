"""FastAPI glue of the API's security: bearer token, role check, rate limits, site access.

Use ``Depends(security.requires(Role.VIEWER))`` on an endpoint to get the caller's
:class:`~collector.api.auth.Principal`, then ``ensure_site(principal, site)`` before
touching a site's data. Health endpoints simply do not depend on it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CollectorRegistry

from collector.api.auth import AuthError, Principal, Role, TokenVerifier
from collector.api.auth_config import AuthConfig, RateLimitConfig
from collector.api.ratelimit import LimitKind, RateLimiter, retry_after_s

# auto_error=False: we answer missing and malformed headers ourselves, with a detail;
# the scheme object still documents "bearer" in the OpenAPI description
_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="bearer",
    description="JWT from `oee-collector token create` (or your identity provider)",
)
_CHALLENGE = {"WWW-Authenticate": "Bearer"}
_INVALID_TOKEN = {"WWW-Authenticate": 'Bearer error="invalid_token"'}
_LIMITED_WHO = {"token": "for this token", "client": "from this client address"}


class ApiSecurity:
    """Builds the per-endpoint dependencies from one verifier and one (optional) limiter."""

    def __init__(self, verifier: TokenVerifier, limiter: RateLimiter | None) -> None:
        self._verifier = verifier
        self._limiter = limiter

    @classmethod
    def from_config(
        cls,
        auth: AuthConfig,
        rate_limit: RateLimitConfig,
        *,
        registry: CollectorRegistry | None = None,
    ) -> ApiSecurity:
        """The security of an API configured by ``api.auth`` and ``api.rate_limit``."""
        limiter = RateLimiter(rate_limit, registry=registry) if rate_limit.enabled else None
        return cls(TokenVerifier(auth), limiter)

    def requires(self, role: Role) -> Callable[..., Any]:
        """A dependency admitting callers whose token's role is ``role`` or higher.

        Order: the per-client limit (before the token is looked at, so guessing tokens is
        limited too), the token, the per-token limit, the role.
        """

        def authorize(
            request: Request, credentials: HTTPAuthorizationCredentials | None
        ) -> Principal:
            client = request.client.host if request.client else "unknown"
            self._limit("client", client)
            token = _bearer_token(request, credentials)
            try:
                principal = self._verifier.verify(token)
            except AuthError as exc:
                raise http_error(exc) from None
            token_key = (
                f"jti:{principal.token_id}" if principal.token_id else f"sub:{principal.subject}"
            )
            self._limit("token", token_key)
            if not principal.role.allows(role):
                raise HTTPException(
                    403, detail=f"role {principal.role} may not call this endpoint (needs {role})"
                )
            return principal

        if self._verifier.may_block or (self._limiter is not None and self._limiter.may_block):
            # a plain def: FastAPI runs it in its thread pool, so a JWKS fetch or a Redis
            # round trip never blocks the event loop
            def authorized(
                request: Request,
                credentials: HTTPAuthorizationCredentials | None = Depends(_bearer),
            ) -> Principal:
                return authorize(request, credentials)

            return authorized

        # nothing here waits on the network (local key, in-memory counters): run it on the
        # event loop and save a thread-pool round trip per request (~10 % of a cached answer)
        async def authorized_inline(
            request: Request,
            credentials: HTTPAuthorizationCredentials | None = Depends(_bearer),
        ) -> Principal:
            return authorize(request, credentials)

        return authorized_inline

    def _limit(self, kind: LimitKind, key: str) -> None:
        if self._limiter is None:
            return
        wait_s = self._limiter.check(kind, key)
        if wait_s is not None:
            seconds = retry_after_s(wait_s)
            raise HTTPException(
                429,
                detail=f"too many requests {_LIMITED_WHO[kind]}; retry after {seconds} s",
                headers={"Retry-After": str(seconds)},
            )


def ensure_site(principal: Principal, site: str) -> None:
    """Raise 403 unless the caller's token covers ``site``."""
    if not principal.can_access_site(site):
        raise HTTPException(403, detail=f"no access to site {site!r}")


def http_error(error: AuthError) -> HTTPException:
    """The HTTP answer to an AuthError: its status and detail, with a Bearer challenge on 401."""
    headers = _INVALID_TOKEN if error.status_code == 401 else None
    return HTTPException(error.status_code, detail=error.detail, headers=headers)


def _bearer_token(request: Request, credentials: HTTPAuthorizationCredentials | None) -> str:
    if credentials is not None and credentials.credentials:
        return credentials.credentials
    if "authorization" not in request.headers:
        raise HTTPException(
            401, detail="no bearer token: send 'Authorization: Bearer <token>'", headers=_CHALLENGE
        )
    raise HTTPException(
        401, detail="Authorization header is not 'Bearer <token>'", headers=_INVALID_TOKEN
    )
