"""``oee-collector token create``: bearer tokens (JWT) for the collector's HTTP API.

The token alone goes to stdout, so ``TOKEN=$(oee-collector token create ...)`` captures it;
a one-line summary goes to stderr. Neither ever shows the signing secret or key.
"""

from __future__ import annotations

import getpass
import re
import sys
from datetime import UTC, datetime
from typing import Annotated

import jwt
import typer

from collector.api.auth import AuthSetupError, Role, create_token
from collector.api.auth_config import AuthConfig
from collector.cli_common import EXIT_CONFIG, ConfigArg, err, load_or_exit
from collector.config import CollectorConfig

app = typer.Typer(no_args_is_help=True)

_TTL_RE = re.compile(r"^\s*(\d+)\s*([smhd])\s*$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86_400}


@app.callback()
def tokens() -> None:
    """Bearer tokens for the collector's HTTP API."""
    # a callback keeps `token` a group even with one command: `token create`, not `token`


@app.command()
def create(
    role: Annotated[Role, typer.Option(help="What the token may do", case_sensitive=False)],
    site: Annotated[
        list[str],
        typer.Option("--site", help="Site the token may read (repeat; '*' for every site)"),
    ],
    config: ConfigArg = None,
    ttl: Annotated[str, typer.Option(help="Lifetime: 90s, 30m, 8h or 7d")] = "8h",
    subject: Annotated[
        str | None,
        typer.Option(help="Who the token is for (its 'sub'); default: your user name"),
    ] = None,
) -> None:
    """Print a new signed token on stdout and what it grants on stderr."""
    auth = _auth_config(load_or_exit(config))
    try:
        token, summary = mint(auth, role, site, ttl, subject or getpass.getuser())
    except ValueError as exc:  # AuthSetupError or a bad --ttl: the message names the fix
        err.print(f"oee-collector token create: {exc}", highlight=False, markup=False)
        raise typer.Exit(EXIT_CONFIG) from None
    sys.stdout.write(token + "\n")
    err.print(summary, highlight=False, markup=False)


def mint(
    config: AuthConfig,
    role: Role,
    sites: list[str],
    ttl: str,
    subject: str,
    *,
    now: datetime | None = None,
) -> tuple[str, str]:
    """A new token and its one-line summary (role, sites, expiry in UTC; never the key).

    Raises ValueError (AuthSetupError) for a bad TTL, site, subject or key file.
    """
    ttl_s = parse_ttl(ttl)
    issued = now or datetime.now(UTC)
    token = create_token(config, subject=subject, role=role, sites=sites, ttl_s=ttl_s, now=issued)
    claims = jwt.decode(token, options={"verify_signature": False})
    expires = datetime.fromtimestamp(claims["exp"], UTC)
    summary = (
        f"token for {subject!r}: role {Role(role)}, sites {', '.join(claims['sites'])}, "
        f"expires {expires.isoformat().replace('+00:00', 'Z')} ({config.algorithm}, "
        f"id {claims['jti']})"
    )
    return token, summary


def parse_ttl(text: str) -> int:
    """Seconds in a lifetime such as 90s, 30m, 8h or 7d; AuthSetupError otherwise."""
    match = _TTL_RE.match(text)
    if match is None:
        raise AuthSetupError(f"--ttl {text!r}: write a whole number and a unit: 90s, 30m, 8h, 7d")
    seconds = int(match.group(1)) * _UNIT_S[match.group(2)]
    if seconds <= 0:
        raise AuthSetupError(f"--ttl {text!r}: must be longer than 0")
    return seconds


def _auth_config(loaded: CollectorConfig) -> AuthConfig:
    """``api.auth`` of the loaded configuration, or exit 2 saying what to add."""
    auth: AuthConfig | None = loaded.api.auth  # CollectorConfig.api is an ApiConfig
    if auth is None:
        err.print(
            "oee-collector token create: the config has no api.auth section; add one with "
            "issuer, audience and hs256_secret (or RS256 keys)",
            highlight=False,
        )
        raise typer.Exit(EXIT_CONFIG)
    return auth
