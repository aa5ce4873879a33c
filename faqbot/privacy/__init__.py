"""Privacy: PII masking (MASK_PII), retention (RETENTION_DAYS) and deleting one user's data."""

from faqbot.privacy.masking import mask_pii

__all__ = ["mask_pii"]
