"""Prompt-injection cases: one YAML file of attacks that users extend with their own.

A case is data, not code, so an operator can add the attacks they worry about without writing a
test (the file's header documents every field). Turns may be generated (filled to a length,
base64/rot13/hex/Unicode-tag encoded) so that long and encoded inputs stay readable in the file.
"""

from __future__ import annotations

import base64
import codecs
import re
from collections.abc import Mapping
from importlib.resources import files
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from faqbot.errors import ConfigError

DEFAULT_CASES = Path(str(files(__package__).joinpath("injection_cases.yaml")))
Kind = Literal[
    "ignore_instructions",
    "reveal_prompt",
    "dump_faq",
    "role_play",
    "out_of_scope",
    "other_language",
    "encoding",
    "faq_injection",
    "long_input",
    "tool_smuggling",
    "multi_turn",
]
_LENGTH = re.compile(r"^max(?:\s*([+-])\s*(\d+))?$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GeneratedTurn(_Strict):
    """A turn built from parts: `prefix + encode(text) + suffix`, or `fill` repeated to `length`.

    `length` is a number of characters or "max" / "max+N" / "max-N" (MAX_QUESTION_CHARS).
    """

    text: str = ""
    encode: Literal["base64", "rot13", "hex", "unicode_tags"] | None = None
    prefix: str = ""
    suffix: str = ""
    fill: str | None = None
    length: int | str | None = None

    @field_validator("length")
    @classmethod
    def _length(cls, value: int | str | None) -> int | str | None:
        if isinstance(value, str) and not _LENGTH.match(value.strip()):
            raise ValueError('length must be a number, "max", "max+N" or "max-N"')
        return value

    def render(self, max_chars: int) -> str:
        body = _encode(self.text, self.encode)
        text = f"{self.prefix}{body}{self.suffix}"
        if self.fill is None or self.length is None:
            return text
        target = _target_length(self.length, max_chars)
        room = max(0, target - len(text))
        filler = (self.fill * (room // max(1, len(self.fill)) + 1))[:room]
        return f"{self.prefix}{filler}{body}{self.suffix}"[:target]


class HistoryTurn(_Strict):
    """A turn handed to the bot as earlier history (library callers can pass any role)."""

    role: str
    content: str


class RouterScript(_Strict):
    """What the fake model's router answers (LLM half only): one or more tool calls or text.

    `arguments` is a mapping (JSON-encoded) or a raw string sent verbatim; when absent the call
    carries `{"question": <the last turn>}`.
    """

    tool: str | None = None
    arguments: dict[str, Any] | str | None = None
    calls: list[tuple[str, dict[str, Any] | str]] = Field(default_factory=list)
    text: str | None = None


class ModelScript(_Strict):
    """A hostile or compromised model, for the LLM half (the offline half ignores it)."""

    router: RouterScript | None = None
    answer: str | None = None


class Expect(_Strict):
    """offline: refuse (the refusal text) | safe (refusal, "did you mean" real entries, or a
    verbatim real entry) | answer (a verbatim real entry) | rejected (the input is refused as
    invalid before anything runs). llm: any (only the checks on what reaches the model) |
    refused | fallback (the LLM's reply is rejected: offline answer instead) | rejected."""

    offline: Literal["refuse", "safe", "answer", "rejected"] = "safe"
    llm: Literal["any", "refused", "fallback", "rejected"] = "any"


class InjectionCase(_Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")
    kind: Kind
    description: str = ""
    turns: list[str | GeneratedTurn] = Field(min_length=1)
    history: list[HistoryTurn] = Field(default_factory=list)
    faq_overrides: dict[str, str] = Field(default_factory=dict)
    model: ModelScript | None = None
    expect: Expect = Field(default_factory=Expect)

    @field_validator("faq_overrides")
    @classmethod
    def _file_names(cls, value: dict[str, str]) -> dict[str, str]:
        for name in value:
            if not re.match(r"^[a-z][a-z0-9_]{0,39}\.(txt|ya?ml)$", name):
                raise ValueError(f"faq_overrides: {name!r} is not a FAQ file name (name.yaml)")
        return value

    def questions(self, max_chars: int) -> list[str]:
        """The turns as the user sends them."""
        return [t if isinstance(t, str) else t.render(max_chars) for t in self.turns]


def _target_length(length: int | str, max_chars: int) -> int:
    if isinstance(length, int):
        return length
    match = _LENGTH.match(length.strip())
    assert match is not None  # validated
    sign, number = match.groups()
    delta = int(number or 0) * (-1 if sign == "-" else 1)
    return max(1, max_chars + delta)


def _encode(text: str, how: str | None) -> str:
    if how == "base64":
        return base64.b64encode(text.encode()).decode("ascii")
    if how == "rot13":
        return codecs.encode(text, "rot13")
    if how == "hex":
        return text.encode().hex()
    if how == "unicode_tags":  # invisible "ASCII smuggling": U+E0000 + code point
        return "".join(chr(0xE0000 + ord(c)) if 0x20 <= ord(c) < 0x7F else c for c in text)
    return text


def load_cases(path: Path = DEFAULT_CASES) -> list[InjectionCase]:
    """Read and validate a cases file; any problem is a ConfigError naming the case."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read injection cases {path}: {exc.strerror or exc}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"injection cases {path} are not valid YAML: {exc}") from exc
    items = raw.get("cases") if isinstance(raw, Mapping) else None
    if not isinstance(items, list) or not items:
        raise ConfigError(f"injection cases {path}: expected a top-level 'cases:' list")
    cases: list[InjectionCase] = []
    for n, item in enumerate(items, 1):
        try:
            cases.append(InjectionCase.model_validate(item))
        except ValidationError as exc:
            name = item.get("id", f"#{n}") if isinstance(item, Mapping) else f"#{n}"
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise ConfigError(f"injection case {name} in {path}: {where}: {first['msg']}") from exc
    seen: set[str] = set()
    for case in cases:
        if case.id in seen:
            raise ConfigError(f"injection cases {path}: duplicate id {case.id!r}")
        seen.add(case.id)
    return cases
