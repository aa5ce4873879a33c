"""Who a user can turn to when the FAQ has no answer: the support contact shown with refusals.

Order: the SUPPORT_CONTACT setting; else the contact of the category the question was routed to
(a YAML file's `metadata: {contact: ...}`); else the FAQ-wide contact, `metadata:
{support_contact: ...}` in any FAQ file (the first by category name); else none.
"""

from __future__ import annotations

from faqbot.domain import KnowledgeBase

FAQ_WIDE_KEY = "support_contact"
CATEGORY_KEY = "contact"


def support_contact(
    kb: KnowledgeBase | None, configured: str = "", category: str | None = None
) -> str | None:
    """The contact to offer with a refusal, or None when nothing is configured."""
    if configured.strip():
        return configured.strip()
    if kb is None:
        return None
    if category is not None and category in kb.categories:
        own = kb.categories[category].metadata.get(CATEGORY_KEY, "").strip()
        if own:
            return own
    for cat in kb.categories.values():
        wide = cat.metadata.get(FAQ_WIDE_KEY, "").strip()
        if wide:
            return wide
    return None
