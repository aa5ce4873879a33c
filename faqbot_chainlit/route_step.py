"""The step above each answer that shows how the question was routed ("Used FAQ lookup").

Collapsed by default: a visitor reads the answer first; the topic, the question as searched and
how it was found are one click away (issue 24). Its metadata is stored with the thread.
"""

from __future__ import annotations

from typing import Any

import chainlit as cl

from faqbot.answering.events import RouteDecided
from faqbot.answering.render import route_markdown
from faqbot.domain import ROUTE_STEP_NAME


def route_metadata(event: RouteDecided) -> dict[str, Any]:
    """What the stored step keeps under `metadata["faqbot"]` (see faqbot.store)."""
    return {
        "category": event.category,
        "confidence": round(event.confidence, 4),
        "routed_by": event.via,
        "standalone_question": event.standalone_question,
    }


async def show_route(step: cl.Step | None, event: RouteDecided, asked: str) -> cl.Step:
    """Send the route step for this answer, or update it when the route is decided again."""
    if step is not None:
        step.output = route_markdown(event)
        step.metadata = {"faqbot": route_metadata(event)}
        await step.update()  # type: ignore[no-untyped-call]
        return step
    parent = cl.context.current_step
    step = cl.Step(
        name=ROUTE_STEP_NAME,
        type="tool",
        show_input=False,
        parent_id=parent.id if parent else None,
        default_open=False,
    )
    step.input = asked
    step.output = route_markdown(event)
    step.metadata = {"faqbot": route_metadata(event)}
    await step.send()  # type: ignore[no-untyped-call]
    return step
