"""The support contact offered with refusals, and the answer prompt's language instruction."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from faqbot.answering.bot import collect
from faqbot.answering.contact import support_contact
from faqbot.answering.factory import build_bot
from faqbot.knowledge import load_knowledge_base
from tests import fake_chat_model as fc
from tests.conftest import FAQ_DIR

META = """category: {name}
metadata: {{{meta}}}
entries:
  - question: "What is {name}?"
    answer: "It is {name}."
"""


def _kb(tmp_path: Path, **metas: str) -> Any:
    for name, meta in metas.items():
        (tmp_path / f"{name}.yaml").write_text(META.format(name=name, meta=meta), "utf-8")
    return load_knowledge_base(tmp_path)


def test_the_setting_wins_over_the_faq(tmp_path: Path) -> None:
    kb = _kb(tmp_path, billing='contact: "bills@x.example", support_contact: "help@x.example"')
    assert support_contact(kb, " desk@x.example ", "billing") == "desk@x.example"


def test_a_category_contact_then_the_faq_wide_contact(tmp_path: Path) -> None:
    kb = _kb(
        tmp_path,
        billing='contact: "bills@x.example"',
        zebra='support_contact: "help@x.example"',
    )
    assert support_contact(kb, "", "billing") == "bills@x.example"
    assert support_contact(kb, "", "zebra") == "help@x.example"
    assert support_contact(kb, "", None) == "help@x.example"


def test_no_contact_anywhere_is_none(tmp_path: Path) -> None:
    assert support_contact(_kb(tmp_path, billing='description: "Bills"'), "", None) is None
    assert support_contact(None, "", None) is None


def test_the_shipped_faq_names_support() -> None:
    assert support_contact(load_knowledge_base(FAQ_DIR)) == "support@lablens.example"


async def test_the_answer_prompt_asks_for_the_users_language(make_settings: Any) -> None:
    settings = make_settings(openai_api_key="test-key", embeddings="off")
    model = fc.ScriptedChatModel(
        fc.tool("faq_sales", question="Remboursement ?"), fc.text("30 jours.")
    )
    await collect(
        build_bot(settings, model=model).answer("Quelle est votre politique de remboursement ?")
    )
    assert [c.kind for c in model.calls] == ["tools", "text"]
    system = model.calls[1].messages[0]["content"]
    assert "Answer in the language of the user's question" in system
    assert "keep its facts unchanged" in system
    assert "word for word (do not translate it)" in system  # the refusal stays detectable
