"""An exact FAQ question or attached phrasing is answered with its entry (issue 22), even when
the ranking alone is only sure enough for "Did you mean"."""

from __future__ import annotations

import asyncio
from pathlib import Path

from faqbot.answering.offline import OfflineEngine
from faqbot.domain import Category, FaqEntry, KnowledgeBase
from faqbot.knowledge.learned import LearnedPhrasing, apply_learned
from faqbot.retrieval.confidence import Zones
from faqbot.retrieval.hybrid import HybridRetriever
from faqbot.retrieval.lexical import Retriever

ENTRIES = (
    FaqEntry("s-refund", "sales", "What is your refund policy?", "Full refund within 30 days."),
    FaqEntry("s-trial", "sales", "Is there a free trial?", "Yes, 14 days, no card needed."),
    FaqEntry("s-plans", "sales", "What are your pricing plans?", "Starter, Team and Enterprise."),
)
SURE_OF_NOTHING = Zones(answer=1.01, suggest=0.0)  # ranking alone never answers


def engine(kb: KnowledgeBase) -> OfflineEngine:
    return OfflineEngine(HybridRetriever(Retriever(kb.entries)), zones=SURE_OF_NOTHING, top_k=3)


def decide(kb: KnowledgeBase, question: str) -> tuple[str, str | None]:
    decision = asyncio.run(engine(kb).decide(question))
    entry = decision.entry
    if entry is not None:
        assert decision.result.confidence >= SURE_OF_NOTHING.answer  # what it is answered at
    return decision.zone, entry.id if entry else None


def test_an_attached_phrasing_asked_again_is_answered_with_its_entry() -> None:
    kb = KnowledgeBase.build([Category("sales", ENTRIES, Path("sales.txt"))])
    asked = "can we get the money back, if the tool does not suit us?"
    assert decide(kb, asked)[0] == "suggest"  # before: only offered
    learned = apply_learned(kb, [LearnedPhrasing("s-refund", asked)])
    assert decide(learned, asked) == ("answer", "s-refund")
    assert decide(learned, "  CAN we get the money back if the tool does not suit us ")[1] == (
        "s-refund"
    )  # case, spaces and punctuation aside
    assert decide(learned, "can we get the money back if the tool suits us")[0] == "suggest"


def test_a_faq_question_asked_as_written_is_answered() -> None:
    kb = KnowledgeBase.build([Category("sales", ENTRIES, Path("sales.txt"))])
    assert decide(kb, "is there a FREE trial") == ("answer", "s-trial")
    assert decide(kb, "is there a FREE trial for teams")[0] == "suggest"


def test_the_exact_entry_wins_over_a_confident_other_one() -> None:
    kb = KnowledgeBase.build([Category("sales", ENTRIES, Path("sales.txt"))])
    learned = apply_learned(kb, [LearnedPhrasing("s-plans", "free trial")])  # the owner's word
    retriever = HybridRetriever(Retriever(learned.entries))
    ranked = retriever.search("Free trial!", k=3)
    assert ranked.top is not None
    assert (ranked.top.entry.id, ranked.confidence > 0.5) == ("s-trial", True)  # sure, other
    engine = OfflineEngine(retriever, zones=Zones(answer=0.5, suggest=0.1), top_k=3)
    decision = asyncio.run(engine.decide("Free trial!"))
    assert (decision.zone, decision.entry.id if decision.entry else None) == ("answer", "s-plans")
    elsewhere = asyncio.run(engine.decide("Free trial!", category="support"))  # not its category
    assert elsewhere.entry is None
