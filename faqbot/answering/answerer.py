"""Grounded answers: the top-k entries of the routed category go to the model, nothing else.

Sources are attributed lexically after the answer (no citation markup in the streamed text):
an entry counts as used when the answer carries a good share of its answer's content words.
Confidence is the best retrieval coverage of the standalone question by a used entry.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

from faqbot.answering.events import Source, Usage
from faqbot.domain import FaqEntry, KnowledgeBase
from faqbot.knowledge.ids import normalise_question
from faqbot.llm.protocol import ChatModel, Meter
from faqbot.prompts import answer_system, neutralise
from faqbot.retrieval.hybrid import HybridRetriever

ATTRIBUTION_SHARE = 0.35


@dataclass(frozen=True, slots=True)
class Grounding:
    """The entries handed to the model for one answer."""

    category: str
    question: str
    entries: tuple[FaqEntry, ...]


class GroundedAnswerer:
    def __init__(
        self,
        model: ChatModel,
        kb: KnowledgeBase,
        retriever: HybridRetriever,
        *,
        app_name: str,
        refusal: str,
        top_k: int,
    ) -> None:
        self.model = model
        self.kb = kb
        self.retriever = retriever
        self.app_name = app_name
        self.refusal = refusal
        self.top_k = top_k
        self._refusal_key = normalise_question(refusal.split(".")[0])

    def ground(self, category: str, question: str) -> Grounding:
        """Top-k entries of the category for the question; the whole category if it is small."""
        entries = self.kb.categories[category].entries
        if len(entries) > self.top_k:
            hits = self.retriever.search(question, k=self.top_k, category=category).hits
            entries = tuple(h.entry for h in hits)
        return Grounding(category, question, tuple(entries))

    def stream(
        self,
        grounding: Grounding,
        usage_sink: list[Usage],
        *,
        brief: bool = False,
        meter: Meter | None = None,
    ) -> AsyncIterator[str]:
        """The answer's pieces; its tokens are charged to `meter` as they are spent."""
        system = answer_system(
            self.app_name, grounding.category, grounding.entries, self.refusal, brief=brief
        )
        messages = [
            {"role": "system", "content": system},
            {"role": "user", "content": neutralise(grounding.question)},
        ]
        return self.model.stream_text(messages, usage_sink, meter=meter)

    def is_refusal(self, answer: str) -> bool:
        """Did the model answer with the refusal sentence (possibly lightly reworded)?"""
        normal = normalise_question(answer)
        return not normal or (
            self._refusal_key in normal and len(normal) < 2 * len(self._refusal_key) + 40
        )

    def attribute(self, grounding: Grounding, answer: str) -> tuple[tuple[Source, ...], float]:
        """Entries the answer draws on, and the confidence of the best of them."""
        tok = self.retriever.tokenizer
        answer_terms = set(tok.content(tok.tokens(answer)))
        used: list[tuple[FaqEntry, float]] = []
        for entry in grounding.entries:
            terms = set(tok.content(tok.tokens(entry.answer)))
            share = len(terms & answer_terms) / len(terms) if terms else 0.0
            if share >= ATTRIBUTION_SHARE:
                used.append((entry, self.retriever.entry_coverage(grounding.question, entry.id)))
        if not used and grounding.entries:
            top = grounding.entries[0]
            used.append((top, self.retriever.entry_coverage(grounding.question, top.id)))
        used.sort(key=lambda item: item[1], reverse=True)
        sources = tuple(
            Source(id=e.id, category=e.category, question=e.question, score=round(c, 4))
            for e, c in used
        )
        return sources, (round(used[0][1], 4) if used else 0.0)
