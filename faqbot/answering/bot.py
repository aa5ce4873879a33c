"""FaqBot: the one pipeline behind every face. `answer()` yields typed events
(faqbot.answering.events).

With a ChatModel: LLM router -> top-k grounding -> streamed grounded answer. Without one, or when
the LLM fails (timeout, 429, 5xx, torn stream, malformed tool call) or its circuit is open: offline
retrieval, marked with a `Fallback` event first. A `Fallback` after answer tokens means "discard
the partial answer": the offline answer that follows replaces it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from faqbot.answering.answerer import GroundedAnswerer, Grounding
from faqbot.answering.breaker import CircuitBreaker
from faqbot.answering.events import (
    Done,
    Event,
    Fallback,
    Mode,
    Refused,
    RouteDecided,
    Source,
    Sources,
    Suggestions,
    Token,
    TurnResult,
    Usage,
    Via,
)
from faqbot.answering.offline import OfflineEngine, source_of, suggestion_text
from faqbot.answering.router import LLMRouter, Route
from faqbot.config import Settings
from faqbot.domain import ChatTurn, KnowledgeBase
from faqbot.errors import (
    LLMAuthError,
    LLMError,
    LLMOutputRejected,
    LLMProtocolError,
    LLMTimeoutError,
)
from faqbot.knowledge.learned import phrasing_key
from faqbot.llm.protocol import ChatModel
from faqbot.llm.tokens import estimate_tokens
from faqbot.logs import get_logger
from faqbot.metrics import observe_speculation, observe_turn
from faqbot.retrieval import Retriever, SearchResult
from faqbot.retrieval.confidence import Zones
from faqbot.retrieval.hybrid import HybridRetriever
from faqbot.retrieval.indexer import SemanticIndexer
from faqbot.retrieval.vectors import DenseIndex
from faqbot.spend import BudgetReached, Spender, Tab, TokenBudgets
from faqbot.state.cache import AnswerCache, CachedAnswer
from faqbot.validation import clean_question

log = get_logger("faqbot.bot")
T = TypeVar("T")

FALLBACK_MESSAGE = (
    "The AI service is unavailable right now, so this answer is quoted directly from the FAQ."
)


class _Deadline:
    """A per-turn time budget applied to each await on the model (never around a `yield`)."""

    def __init__(self, seconds: float) -> None:
        self.at = time.monotonic() + seconds

    async def run(self, awaitable: Awaitable[T]) -> T:
        remaining = self.at - time.monotonic()
        if remaining <= 0:
            raise LLMTimeoutError("LLM time budget exhausted")
        # asyncio.timeout, not wait_for: no task per awaited token (profiled, bench/RESULTS.md)
        timeout = asyncio.timeout(remaining)
        try:
            async with timeout:
                return await awaitable
        except TimeoutError:
            if timeout.expired():
                raise LLMTimeoutError("LLM time budget exhausted") from None
            raise


class _Speculation:
    """An answer call started before the router has decided, for retrieval's best category.

    Its pieces are buffered until the router agrees (then they are streamed) or not (then the
    call is cancelled). A failure surfaces only if the answer is kept.
    """

    def __init__(self, grounding: Grounding, stream: AsyncIterator[str], sink: list[Usage]) -> None:
        self.grounding = grounding
        self.sink = sink
        self._queue: asyncio.Queue[str | Exception | None] = asyncio.Queue()
        self._task = asyncio.create_task(self._pump(stream), name="faqbot-speculative-answer")

    async def _pump(self, stream: AsyncIterator[str]) -> None:
        try:
            async for piece in stream:
                self._queue.put_nowait(piece)
            self._queue.put_nowait(None)
        except Exception as exc:
            self._queue.put_nowait(exc)
        finally:
            await stream.aclose()  # type: ignore[attr-defined]

    async def pieces(self) -> AsyncIterator[str]:
        while (item := await self._queue.get()) is not None:
            if isinstance(item, Exception):
                raise item
            yield item

    async def cancel(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def drop(self) -> None:
        """Cancel it because the router decided otherwise (counted: its tokens were wasted)."""
        await self.cancel()
        observe_speculation("discarded")


async def _tokens(
    stream: AsyncIterator[str], deadline: _Deadline, pieces: list[str]
) -> AsyncGenerator[Event, None]:
    """The answer's pieces as Token events (each await bounded by the turn's deadline), also
    collected in `pieces`; the stream is always closed."""
    try:
        while True:
            try:
                piece = await deadline.run(anext(stream))
            except StopAsyncIteration:
                break
            pieces.append(piece)
            yield Token(piece)
    finally:
        await stream.aclose()  # type: ignore[attr-defined]


def _zones(settings: Settings, default: Zones) -> Zones:
    """The engine's calibrated zones, with CONFIDENCE_THRESHOLD / SUGGEST_THRESHOLD overrides."""
    answer = (
        default.answer if settings.confidence_threshold is None else settings.confidence_threshold
    )
    suggest = default.suggest if settings.suggest_threshold is None else settings.suggest_threshold
    return Zones(answer=answer, suggest=min(suggest, answer))


@dataclass(frozen=True, slots=True)
class _Parts:
    """Everything derived from one knowledge base; replaced as a whole on reload."""

    kb: KnowledgeBase
    retriever: HybridRetriever
    offline: OfflineEngine
    router: LLMRouter | None
    answerer: GroundedAnswerer | None


class FaqBot:
    """Answers questions from a KnowledgeBase; offline by retrieval when `model` is None."""

    def __init__(
        self,
        kb: KnowledgeBase,
        settings: Settings,
        *,
        model: ChatModel | None = None,
        semantic: SemanticIndexer | None = None,
        spend: TokenBudgets | None = None,
    ) -> None:
        self.settings = settings
        self.model = model
        self.semantic = semantic
        self.breaker = CircuitBreaker(
            settings.circuit_failure_threshold, settings.circuit_reset_seconds
        )
        self.cache = AnswerCache(
            settings.answer_cache_size, settings.answer_cache_ttl, settings.redis_url
        )
        self.spend = spend if spend is not None else TokenBudgets.from_settings(settings)
        # questions owners marked out of scope (issue 22; faqbot.knowledge.learned.phrasing_key
        # of each): an exact repeat is refused, with no LLM call (faqbot/ops/reload.py sets it)
        self.out_of_scope: frozenset[str] = frozenset()
        self._parts = self._build(kb)
        self._encode(kb)

    def _encode(self, kb: KnowledgeBase) -> None:
        """Serve lexically now; switch to hybrid when the entry vectors are ready."""
        if self.semantic is not None:
            self.semantic.start(kb.entries, kb.version, self._attach_vectors)

    def _attach_vectors(self, version: str, index: DenseIndex) -> None:
        parts = self._parts
        if parts.kb.version == version:  # else a newer reload owns the parts
            self._parts = self._build(parts.kb, index)

    def _build(self, kb: KnowledgeBase, dense: DenseIndex | None = None) -> _Parts:
        settings = self.settings
        semantic = self.semantic
        retriever = HybridRetriever(
            Retriever(kb.entries),
            dense,
            semantic.queries if semantic else None,
            semantic.calibrator if semantic else None,
            background=semantic.background if semantic else None,
        )
        offline = OfflineEngine(
            retriever,
            zones=_zones(settings, retriever.zones),
            top_k=settings.retrieval_top_k,
        )
        router = answerer = None
        if self.model is not None:
            router = LLMRouter(
                self.model,
                kb,
                retriever,
                app_name=settings.app_name,
                history_turns=settings.llm_history_turns,
            )
            answerer = GroundedAnswerer(
                self.model,
                kb,
                retriever,
                app_name=settings.app_name,
                refusal=settings.refusal_text,
                top_k=settings.retrieval_top_k,
            )
        return _Parts(kb, retriever, offline, router, answerer)

    def reload(self, kb: KnowledgeBase) -> None:
        """Swap in a new knowledge base atomically; answers in flight finish on the old one.

        The new entries are served lexically until their vectors are encoded (only changed
        texts are: the rest comes from the vector cache).
        """
        self._parts = self._build(kb)
        self._encode(kb)

    def wait_for_vectors(self, timeout: float | None = None) -> bool:
        """Block until hybrid ranking is on (False without an embedder, or on failure)."""
        return self.semantic.wait(timeout) if self.semantic is not None else False

    def retrieval_status(self) -> dict[str, object]:
        """For health: which ranking serves now, the encoder's progress, and why if degraded."""
        status: dict[str, object] = {"ranking": self._parts.retriever.mode}
        if self.semantic is not None:
            encoder = self.semantic.status()
            status["embeddings"] = encoder
            if encoder["state"] == "error":
                status["degraded"] = f"embeddings failed, serving lexical: {encoder['error']}"
            elif "query_embedding" in encoder:
                status["degraded"] = "query embedding failing: questions ranked lexically"
        elif self.settings.embeddings == "off":
            status["embeddings"] = "off"
        else:
            status["embeddings"] = "unavailable"
            status["note"] = (
                "no embedding model on this platform or endpoint configured: lexical-only "
                "(English word matching; see README, Languages)"
            )
        return status

    @property
    def kb(self) -> KnowledgeBase:
        return self._parts.kb

    @property
    def retriever(self) -> HybridRetriever:
        return self._parts.retriever

    @property
    def offline(self) -> OfflineEngine:
        return self._parts.offline

    @property
    def mode(self) -> Mode:
        return "llm" if self.model is not None else "offline"

    @property
    def model_name(self) -> str | None:
        return self.model.name if self.model is not None else None

    async def answer(
        self,
        question: str,
        history: Sequence[ChatTurn] = (),
        *,
        brief: bool = False,
        spender: Spender | None = None,
    ) -> AsyncIterator[Event]:
        """Answer one question given the recent history; raises InputError before any event.

        `brief` asks for a short answer (the copilot widget). `spender` is who the LLM tokens
        are charged to (faqbot.spend), as they are spent, also when the consumer goes away
        mid-answer: with a token budget spent the answer is offline.
        """
        started = time.perf_counter()
        question = clean_question(question, self.settings.max_question_chars)
        fallback: Fallback | None = None
        parts = self._parts
        tab = self.spend.tab(spender)
        if self.out_of_scope and phrasing_key(question) in self.out_of_scope:
            async for event in self._out_of_scope(parts, question, started):
                yield event
            return
        if parts.router is not None and parts.answerer is not None:
            fallback = await self.spend.check(spender)  # a spent token budget: answer offline
            if fallback is None and self.breaker.allow():
                probe = self.breaker.probing
                try:
                    async for event in self._llm_turn(
                        parts, question, history, brief, started, spender, tab
                    ):
                        yield event
                    self.breaker.record_success()
                    return
                except BudgetReached as reached:  # spent by this turn's router call: no fault
                    fallback = reached.fallback
                    if probe:
                        self.breaker.release()
                except Exception as exc:
                    fallback = self._on_llm_failure(exc)
                except BaseException:  # CancelledError, GeneratorExit: the consumer went away
                    if probe:
                        self.breaker.release()  # no verdict on the provider; let another probe
                    raise
            elif fallback is None:
                fallback = Fallback("circuit_open", FALLBACK_MESSAGE)
                log.warning("llm.skipped", reason="circuit_open", **self.breaker.snapshot())
        async for event in self._offline_turn(parts, question, history, started, fallback, tab):
            yield event

    def _on_llm_failure(self, exc: Exception) -> Fallback:
        """Count the failure; a provider that said when to come back (Retry-After) gets no call
        before then: the circuit opens that long, and users meanwhile get the offline answer.
        A model output refused by the bot (`LLMOutputRejected`) is no provider failure."""
        if isinstance(exc, LLMOutputRejected):
            self.breaker.record_success()  # the provider answered; its output was refused
            log.warning("llm.output_rejected", detail=str(exc), **self.breaker.snapshot())
            return Fallback(exc.code, FALLBACK_MESSAGE)
        self.breaker.record_failure()
        error = exc if isinstance(exc, LLMError) else LLMProtocolError(repr(exc))
        if error.retry_after:
            self.breaker.open_for(error.retry_after)
        if isinstance(error, LLMAuthError):
            log.error(
                "llm.auth_failed",
                detail=str(error),
                hint="the provider rejected OPENAI_API_KEY; check the key and OPENAI_BASE_URL",
            )
            message = f"{error.user_message} This answer is quoted directly from the FAQ."
        else:
            log.warning(
                "llm.failed",
                code=error.code,
                detail=str(error),
                unexpected=not isinstance(exc, LLMError),
                **self.breaker.snapshot(),
            )
            message = FALLBACK_MESSAGE
        return Fallback(error.code, message)

    async def _llm_turn(
        self,
        parts: _Parts,
        question: str,
        history: Sequence[ChatTurn],
        brief: bool,
        started: float,
        spender: Spender | None,
        tab: Tab,
    ) -> AsyncIterator[Event]:
        answerer = parts.answerer
        assert answerer is not None
        deadline = _Deadline(self.settings.llm_budget_seconds)
        route, via, speculation = await self._route(
            parts, question, history, brief, spender, tab, deadline
        )
        usage = route.usage
        if route.category is None:
            yield RouteDecided(None, 0.0, route.standalone_question, "llm")
            async for event in self._refusal(parts):
                yield event
            yield self._done(
                question, self.settings.refusal_text, None, 0.0, route.standalone_question,
                (), refused=True, mode="llm", usage=usage, started=started,
            )  # fmt: skip
            return
        await self._prepare(parts, [route.standalone_question], tab)  # off the event loop
        grounding = answerer.ground(route.category, route.standalone_question)
        found = parts.retriever.search(route.standalone_question, k=1, category=route.category)
        yield RouteDecided(route.category, found.confidence, route.standalone_question, via)
        key = AnswerCache.key(
            parts.kb.version,
            route.category,
            route.standalone_question + ("|brief" if brief else ""),
        )
        cached = await self.cache.get(key)
        if cached is not None and speculation is not None:
            await speculation.drop()  # started before the router's rewrite found this entry
            speculation = None
        if cached is not None:
            async for event in parts.offline.stream(cached.answer):
                yield event
            text, sources, confidence, refused = (
                cached.answer, cached.sources, cached.confidence, cached.refused,
            )  # fmt: skip
        else:
            sink: list[Usage] = []
            pieces: list[str] = []
            if speculation is not None:  # the router agreed: its answer is already on its way
                observe_speculation("kept")
                grounding, sink = speculation.grounding, speculation.sink
                stream = speculation.pieces()
            else:
                await self.spend.ensure(spender)  # the router's tokens may have spent a budget
                stream = answerer.stream(grounding, sink, brief=brief, meter=tab)
            try:
                async with contextlib.aclosing(_tokens(stream, deadline, pieces)) as tokens:
                    async for event in tokens:  # closed at once if our consumer goes away
                        yield event
            finally:
                if speculation is not None:
                    await speculation.cancel()  # a no-op once it has ended
            usage = usage + sum(sink, Usage())  # charged to the tab while it streamed
            text = "".join(pieces).strip()
            refused = answerer.is_refusal(text)
            sources, confidence = ((), 0.0) if refused else answerer.attribute(grounding, text)
            if sources and found.top is not None and sources[0].id == found.top.entry.id:
                confidence = found.confidence  # the same calibrated confidence as offline
            await self.cache.put(key, CachedAnswer(text, sources, confidence, refused))
        yield Sources(sources)
        if refused:
            yield Refused("model_refused")
        yield self._done(
            question, text, route.category, confidence, route.standalone_question, sources,
            refused=refused, mode="llm", usage=usage, started=started, cached=cached is not None,
        )  # fmt: skip

    async def _route(
        self,
        parts: _Parts,
        question: str,
        history: Sequence[ChatTurn],
        brief: bool,
        spender: Spender | None,
        tab: Tab,
        deadline: _Deadline,
    ) -> tuple[Route, Via, _Speculation | None]:
        """Locally when confident; else the router's call (with a speculative answer call
        alongside, when on), and the speculation only if the router agreed with it."""
        route, guess = await self._local_route(parts, question, history, tab)
        if route is not None:
            return route, "retrieval", None
        assert parts.router is not None
        speculation = await self._speculate(parts, guess, question, brief, spender, tab)
        try:
            route = await deadline.run(parts.router.route(question, history, tab))
        except BaseException:
            if speculation is not None:
                await speculation.cancel()
            raise
        if speculation is not None and speculation.grounding.category != route.category:
            await speculation.drop()
            speculation = None
        return route, route.via, speculation  # "retrieval": no tool call

    async def _local_route(
        self, parts: _Parts, question: str, history: Sequence[ChatTurn], tab: Tab
    ) -> tuple[Route | None, SearchResult | None]:
        """Route by retrieval, skipping the router's LLM call, when that is safe: hybrid ranking
        is on (calibrated), its confidence is in the answer zone, and the question stands alone
        (a follow-up needs the router's standalone rewrite). Measured in bench/RESULTS.md.
        Also returns the search of a standalone question, for `_speculate`."""
        if not self.settings.local_routing or parts.retriever.mode != "hybrid":
            return None, None
        if history and parts.offline.is_follow_up(question):
            return None, None
        await self._prepare(parts, [question], tab)
        found = parts.retriever.search(question, k=1)
        if found.top is None or parts.offline.zones.zone(found.confidence) != "answer":
            return None, found
        return Route(found.top.entry.category, question, Usage()), found

    async def _speculate(
        self,
        parts: _Parts,
        found: SearchResult | None,
        question: str,
        brief: bool,
        spender: Spender | None,
        tab: Tab,
    ) -> _Speculation | None:
        """Start the answer call for an unsure standalone question ("Did you mean" zone) while
        the router decides; None when SPECULATIVE_ANSWER is off or nothing qualifies."""
        if not self.settings.speculative_answer or found is None or found.top is None:
            return None
        if parts.offline.zones.zone(found.confidence) != "suggest" or parts.answerer is None:
            return None
        try:
            await self.spend.ensure(spender)
        except BudgetReached:
            return None  # the router call decides what happens next
        grounding = parts.answerer.ground(found.top.entry.category, question)
        sink: list[Usage] = []
        stream = parts.answerer.stream(grounding, sink, brief=brief, meter=tab)
        return _Speculation(grounding, stream, sink)

    async def _prepare(self, parts: _Parts, texts: list[str], tab: Tab) -> None:
        """Encode query texts for hybrid ranking (in a worker thread), charging the tab first
        for those a per-token billed embedder (OPENAI embeddings) will be asked to encode."""
        await tab.charge(self._embedding_tokens(parts, texts))
        await parts.retriever.prepare(texts)

    def _embedding_tokens(self, parts: _Parts, texts: list[str]) -> int:
        """Estimated tokens of the texts `prepare` would send to a billed embedder (none that
        its query cache holds; none while it cools down after a failure)."""
        semantic = self.semantic
        if semantic is None or parts.retriever.mode != "hybrid":
            return 0
        if not getattr(semantic.embedder, "billed", False) or semantic.queries.down():
            return 0
        fresh = [t for t in dict.fromkeys(texts) if semantic.queries.cached(t) is None]
        return sum(estimate_tokens(t) for t in fresh)

    async def _refusal(self, parts: _Parts) -> AsyncIterator[Event]:
        async for event in parts.offline.stream(self.settings.refusal_text):
            yield event
        yield Sources(())
        yield Refused("not_covered")

    async def _out_of_scope(
        self, parts: _Parts, question: str, started: float
    ) -> AsyncIterator[Event]:
        """An owner marked this very question out of scope: the refusal, as for "not covered"."""
        yield RouteDecided(None, 0.0, question, "retrieval")
        async for event in self._refusal(parts):
            yield event
        yield self._done(
            question, self.settings.refusal_text, None, 0.0, question, (), refused=True,
            mode="offline", usage=Usage(), started=started,
        )  # fmt: skip

    async def _offline_turn(
        self,
        parts: _Parts,
        question: str,
        history: Sequence[ChatTurn],
        started: float,
        fallback: Fallback | None,
        tab: Tab,
    ) -> AsyncIterator[Event]:
        if fallback is not None:
            yield fallback
        await tab.charge(self._embedding_tokens(parts, [question]))  # offline ranking embeds too
        decision = await parts.offline.decide(question, history)
        confidence = decision.result.confidence
        yield RouteDecided(decision.category, confidence, decision.query, "retrieval")
        entry = decision.entry
        sources: tuple[Source, ...] = ()
        suggestions = tuple(source_of(e, confidence) for e in decision.suggestions)
        if suggestions:
            text = suggestion_text(decision.suggestions)
            async for event in parts.offline.stream(text):
                yield event
            yield Sources(())
            yield Suggestions(suggestions)
        elif entry is None:
            text = self.settings.refusal_text
            async for event in self._refusal(parts):
                yield event
        else:
            text = entry.answer
            async for event in parts.offline.stream(text):
                yield event
            sources = (source_of(entry, confidence),)
            yield Sources(sources)
        yield self._done(
            question, text, decision.category, confidence, decision.query, sources,
            refused=entry is None and not suggestions, mode="offline", usage=Usage(),
            started=started, fallback=fallback, suggestions=suggestions,
        )  # fmt: skip

    def _related(self, sources: tuple[Source, ...]) -> tuple[Source, ...]:
        """Up to three questions to offer after an answer (issue 21): those its entry's author
        listed in `related:`, else the nearest entries; never the answered entries again."""
        if not sources:
            return ()
        shown = {s.id for s in sources}
        near = self._parts.retriever.related(sources[0].id)
        return tuple(source_of(e, 0.0) for e in near if e.id not in shown)

    def _done(
        self,
        question: str,
        text: str,
        category: str | None,
        confidence: float,
        standalone: str,
        sources: tuple[Source, ...],
        *,
        refused: bool,
        mode: Mode,
        usage: Usage,
        started: float,
        cached: bool = False,
        fallback: Fallback | None = None,
        suggestions: tuple[Source, ...] = (),
    ) -> Done:
        result = TurnResult(
            question=question,
            answer=text,
            category=category,
            confidence=confidence,
            standalone_question=standalone,
            sources=sources,
            refused=refused,
            fallback=fallback is not None,
            fallback_reason=fallback.reason if fallback else None,
            fallback_notice=fallback.message if fallback else None,
            mode=mode,
            cached=cached,
            usage=usage,
            elapsed_s=round(time.perf_counter() - started, 4),
            suggestions=suggestions,
            related=self._related(sources) if not refused else (),
        )
        log.info(
            "turn",
            mode=mode,
            model=self.model_name,
            category=category,
            confidence=confidence,
            outcome=result.outcome,
            fallback=result.fallback_reason,
            cached=cached,
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            cost_usd=usage.cost_usd,
            elapsed_s=result.elapsed_s,
        )
        observe_turn(result)
        return Done(result)


async def collect(stream: AsyncIterator[Event]) -> TurnResult:
    """Drain an event stream and return its TurnResult (for non-streaming callers)."""
    result: TurnResult | None = None
    async for event in stream:
        if isinstance(event, Done):
            result = event.result
    if result is None:  # pragma: no cover - answer() always ends with Done
        raise RuntimeError("event stream ended without Done")
    return result
