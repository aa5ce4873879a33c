"""The language-model boundary: a small ChatModel protocol and its OpenAI implementation."""

from faqbot.llm.protocol import ChatModel, ToolCall, ToolCompletion

__all__ = ["ChatModel", "ToolCall", "ToolCompletion"]
