"""Spend limits for a public deployment: token budgets (per conversation, per client per UTC
day, per deployment per UTC day) and a cap on the answers a client has in progress at once."""

from faqbot.spend.budgets import NOTICES, BudgetReached, Spender, TokenBudgets
from faqbot.spend.streams import StreamSlot, StreamSlots
from faqbot.spend.tab import Tab

__all__ = [
    "NOTICES",
    "BudgetReached",
    "Spender",
    "StreamSlot",
    "StreamSlots",
    "Tab",
    "TokenBudgets",
]
