"""Masking of e-mail addresses and phone numbers (MASK_PII), seen from Insight.

The pure functions live in the base (`faqbot.masking`) so that `faqbot.logs` can mask every log
event without reaching up into privacy; this module keeps the privacy package's public names.
"""

from __future__ import annotations

from faqbot.masking import EMAIL_MASK, PHONE_MASK, mask_log_event, mask_pii, mask_value

__all__ = ["EMAIL_MASK", "PHONE_MASK", "mask_log_event", "mask_pii", "mask_value"]
