"""LLM router: one function-calling round picks the category and rewrites follow-ups.

No tool call means "not covered". Unknown tool names, invalid JSON arguments or a missing
`question` are protocol errors: the bot falls back to offline retrieval.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from faqbot.domain import ChatTurn, KnowledgeBase
from faqbot.errors import LLMProtocolError
from faqbot.events import Usage
from faqbot.llm.protocol import ChatModel, Message, ToolCall
from faqbot.logs import get_logger
from faqbot.prompts import router_system, router_tool, tool_name
from faqbot.retrieval.hybrid import HybridRetriever

log = get_logger("faqbot.router")
MAX_TURN_CHARS = 1000


@dataclass(frozen=True, slots=True)
class Route:
    category: str | None
    standalone_question: str
    usage: Usage


def history_messages(history: Sequence[ChatTurn], turns: int) -> list[Message]:
    """The last `turns` messages, each clipped, as chat messages."""
    window = list(history)[-turns:] if turns else []
    return [{"role": t.role, "content": t.content[:MAX_TURN_CHARS]} for t in window]


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
        self.tools = [router_tool(c) for c in kb.categories.values()]
        self._by_tool = {tool_name(name): name for name in kb.categories}
        self._system = router_system(app_name)

    def messages(self, question: str, history: Sequence[ChatTurn]) -> list[Message]:
        return [
            {"role": "system", "content": self._system},
            *history_messages(history, self.history_turns),
            {"role": "user", "content": question},
        ]

    def _parse(self, call: ToolCall) -> tuple[str, str]:
        category = self._by_tool.get(call.name)
        if category is None:
            raise LLMProtocolError(f"router called an unknown tool {call.name!r}")
        try:
            args = json.loads(call.arguments or "{}")
        except json.JSONDecodeError as exc:
            raise LLMProtocolError(f"router sent invalid JSON arguments: {exc.msg}") from exc
        standalone = args.get("question") if isinstance(args, dict) else None
        if not isinstance(standalone, str) or not standalone.strip():
            raise LLMProtocolError("router tool call has no 'question' argument")
        return category, standalone.strip()

    async def route(self, question: str, history: Sequence[ChatTurn]) -> Route:
        completion = await self.model.call_tools(self.messages(question, history), self.tools)
        if not completion.tool_calls:
            return Route(None, question, completion.usage)
        parsed = [self._parse(call) for call in completion.tool_calls]
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
