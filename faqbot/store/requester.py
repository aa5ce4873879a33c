"""Who is making the current request, for checks made deep in the data layer.

Chainlit's own routes (`PUT /feedback`, `/project/*`) call the data layer without saying who
asked. The front door (faqbot/web/front_door.py) sets `current_requester` for each request it
lets through; the data layer reads it to apply ownership and "one per client" rules. It is a
context variable, so it follows the request into the route's task and never leaks between
requests.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Requester:
    """`client`: the rate-limit bucket (`user:<id>` signed in, else `ip:<addr>`);
    `user`: the signed-in user's identifier, None for an anonymous visitor."""

    client: str
    user: str | None = None


current_requester: ContextVar[Requester | None] = ContextVar("faqbot_requester", default=None)
