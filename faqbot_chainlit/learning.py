"""The chat UI's part in learning from visitors (issue 22).

- A "Did you mean" message is kept with the question asked (`keep_offer`, `take_offer`), and
  a choice is evidence: the question the visitor typed and the entry they chose
  (faqbot.store.learned.record_choice), which /admin proposes as a phrasing of that entry.
- A chosen (or related) entry's answer carries thumbs like a typed question's: Chainlit's UI
  draws the thumbs only under a message inside a `run` step (its Buttons/index.tsx renders
  `FeedbackButtons` for `run` only), which Chainlit makes for `on_message` but not for an
  action callback. `as_run` makes the same step, under the question shown for the click, so
  the rating reaches the answer (faqbot.store.feedback maps a run to its answer).
"""

from __future__ import annotations

import chainlit as cl

from faqbot.config import Settings
from faqbot.logs import get_logger
from faqbot.masking import mask_pii
from faqbot.store import learned
from faqbot_chainlit.persistence import Persistence

log = get_logger("faqbot.chainlit")


def _kept() -> dict[str, tuple[cl.Message, str]]:
    kept = cl.user_session.get("suggestion_messages")  # type: ignore[no-untyped-call]
    return kept if isinstance(kept, dict) else {}


def keep_offer(message: cl.Message, asked: str, kept_at_most: int) -> None:
    """Keep a "Did you mean" message (its buttons work while kept) with the question asked."""
    kept = _kept()
    kept[message.id] = (message, asked)
    while len(kept) > kept_at_most:
        kept.pop(next(iter(kept)))
    cl.user_session.set("suggestion_messages", kept)  # type: ignore[no-untyped-call]


def take_offer(message_id: str | None) -> tuple[cl.Message | None, str]:
    """The kept "Did you mean" message a click came from, and the question asked; one choice
    per message, so it is no longer kept."""
    return _kept().pop(message_id or "", (None, ""))


def as_run(question: cl.Message) -> cl.Step:
    """The run step Chainlit makes for a typed question (`on_message`), for a clicked one."""
    return cl.Step(name="on_message", type="run", parent_id=question.id)


async def record_choice(
    parts: Persistence, settings: Settings, asked: str, entry_id: str, thread_id: str
) -> None:
    """Keep the visitor's question and their choice; a database failure never breaks the chat."""
    if parts.database is None or not asked.strip():
        return
    text = mask_pii(asked) if settings.mask_pii else asked  # MASK_PII: as turns are stored
    try:
        await learned.record_choice(parts.database, text, entry_id, thread_id)
    except Exception as exc:
        log.error("store.choice_not_saved", error=f"{type(exc).__name__}: {exc}"[:300])
