"""LLM router: one function-calling round picks the category and rewrites follow-ups.

The model must call a tool (tool_choice "required"): a category's `faq_<name>` or `not_covered`
(no tool call at all, from a provider that ignores tool_choice, also means "not covered"). The
tool call is untrusted output: an unknown tool name, invalid JSON, a missing `question` or any
argument the strict schema does not have (smuggled by an injected prompt) is rejected
(`LLMOutputRejected`): the bot falls back to offline retrieval, and the circuit breaker does not
count it against the provider. History reaches the model only as user and
assistant messages, each clipped.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from faqbot.answering.events import Usage
from faqbot.domain import ChatTurn, KnowledgeBase
from faqbot.errors import LLMOutputRejected
from faqbot.llm.protocol import ChatModel, Message, Meter, ToolCall
from faqbot.logs import get_logger
from faqbot.prompts import NOT_COVERED, not_covered_tool, router_system, router_tool, tool_name
from faqbot.retrieval.hybrid import HybridRetriever
from faqbot.validation import strip_invisible

log = get_logger("faqbot.router")
MAX_TURN_CHARS = 1000


@dataclass(frozen=True, slots=True)
class Route:
    category: str | None
    standalone_question: str
    usage: Usage


def history_messages(history: Sequence[ChatTurn], turns: int) -> list[Message]:
    """The last `turns` messages, each clipped, as user or assistant messages.

    Only the bot's own answers are assistant turns; any other role a caller passes (system,
    developer, tool) is sent as a user message, so history can never add instructions.
    """
    window = list(history)[-turns:] if turns else []
    return [
        {
            "role": "assistant" if t.role == "assistant" else "user",
            "content": strip_invisible(str(t.content))[:MAX_TURN_CHARS],
        }
        for t in window
    ]


class LLMRouter:
    def __init__(
        self,
        model: ChatModel,
        kb: KnowledgeBase,
        retriever: HybridRetriever,
        *,
        app_name: str,
        history_turns: int,
    ) -> None:
        self.model = model
        self.retriever = retriever
        self.history_turns = history_turns
        self.tools = [*(router_tool(c) for c in kb.categories.values()), not_covered_tool()]
        self._by_tool = {tool_name(name): name for name in kb.categories}
        self._system = router_system(app_name)

    def messages(self, question: str, history: Sequence[ChatTurn]) -> list[Message]:
        return [
            {"role": "system", "content": self._system},
            *history_messages(history, self.history_turns),
            {"role": "user", "content": question},
        ]

    def _parse(self, call: ToolCall) -> tuple[str, str] | None:
        """(category, standalone question) of a category call; None for `not_covered`."""
        category = self._by_tool.get(call.name)
        if category is None and call.name != NOT_COVERED:
            raise LLMOutputRejected(f"router called an unknown tool {call.name!r}")
        try:
            args = json.loads(call.arguments or "{}")
        except json.JSONDecodeError as exc:
            raise LLMOutputRejected(f"router sent invalid JSON arguments: {exc.msg}") from exc
        if not isinstance(args, dict):
            raise LLMOutputRejected("router tool arguments are not a JSON object")
        if category is None:
            return None  # not covered: whatever it carries, the answer is the refusal
        extra = sorted(set(args) - {"question"})
        if extra:
            raise LLMOutputRejected(f"router tool call has arguments outside its schema: {extra}")
        standalone = args.get("question")
        if not isinstance(standalone, str) or not strip_invisible(standalone).strip():
            raise LLMOutputRejected("router tool call has no 'question' argument")
        return category, " ".join(strip_invisible(standalone).split())[:MAX_TURN_CHARS]

    async def route(
        self, question: str, history: Sequence[ChatTurn], meter: Meter | None = None
    ) -> Route:
        """The route; the call's tokens are charged to `meter` as they are spent."""
        completion = await self.model.call_tools(
            self.messages(question, history), self.tools, meter=meter
        )
        parsed = [p for p in (self._parse(call) for call in completion.tool_calls) if p]
        if not parsed:  # not_covered, or no tool call at all
            return Route(None, question, completion.usage)
        if len(parsed) > 1:
            scored = [
                (self.retriever.search(q, k=1, category=c).confidence, c, q) for c, q in parsed
            ]
            scored.sort(key=lambda item: item[0], reverse=True)
            log.info(
                "router.multiple_tool_calls",
                calls=[c for _, c, _ in scored],
                chosen=scored[0][1],
            )
            parsed = [(scored[0][1], scored[0][2])]
        category, standalone = parsed[0]
        return Route(category, standalone, completion.usage)
