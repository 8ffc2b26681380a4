"""Bodies of the token endpoint and the JWKS."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from catalog.api.schemas.common import OutBody


class TokenResponse(OutBody):
    access_token: str
    token_type: Literal["Bearer"] = "Bearer"  # noqa: S105 (a scheme name, not a secret)
    expires_in: int = Field(description="seconds until the token expires")


class TokenError(OutBody):
    """RFC 6749 §5.2 error body (OAuth2 clients expect this shape at the token endpoint)."""

    error: str
    error_description: str
    error_description_zh: str


class Jwk(BaseModel):
    model_config = ConfigDict(extra="allow")
    kty: str
    crv: str
    x: str
    kid: str
    use: str
    alg: str
    purpose: str | None = Field(default=None, description="token or certificate")
    status: str | None = Field(
        default=None,
        description="active, retired (still verifies what it signed), or withdrawn (leaked: do not trust "
        "its signatures offline; ask the hub's verify endpoint)",
    )
    withdrawn_since: str | None = Field(
        default=None, description="for a withdrawn key: from when its signatures are not trusted (UTC)"
    )


class Jwks(OutBody):
    keys: list[Jwk]
