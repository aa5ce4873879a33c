"""A question's topic words: what is left once its frame ("where is your ...?") is taken away.

Why: the embedding of a short question is dominated by its frame, so "where is your office?"
lands next to "Where is my data stored?" with a high confidence although nothing in that entry
is about offices. An answer needs evidence on the topic words themselves: found in the entry
(lexical coverage) or, failing that, the topic words alone still pointing at the entry by
meaning, or at least at the FAQ's own domain rather than at generic off-topic questions
(hybrid.py checks this with one more query vector, only for such answers).

The frame words are the function words of the languages users write in most (English, German,
French, Spanish, Italian, Portuguese, Dutch), compared accent-folded and lower-cased.
"""

from __future__ import annotations

import re

from faqbot.retrieval.lexical import STOPWORDS, fold

_FOREIGN = """
wo ist sind ihr ihre ihren ihrem mein meine meinen meinem wie was wer wann warum welche welcher
welches kann konnen ich wir sie es der die das den dem des ein eine einen einem und oder zu von
mit fur auf bei gibt habe haben hat wird werden
ou est sont vos votre mon ma mes quel quelle quels quelles qui que quoi comment pourquoi quand
puis peut je nous vous le la les un une des du de et se il elle ce en au aux avez ai
donde esta estan su sus mi mis cual cuales quien quienes que como por cuando puedo puede el los
las una unos unas del es son hay tiene tienen
dove sono il lo gli di che chi posso mio mia suo sua
onde sao seu sua meu minha quem qual posso
waar zijn uw mijn wat hoe wanneer ik het een
"""
FRAME_WORDS = frozenset(STOPWORDS) | frozenset(_FOREIGN.split())
_WORD = re.compile(r"[^\W_]+", re.UNICODE)


def topic_words(question: str) -> str:
    """The question's words that are not frame words, in order ("" when none are left, or when
    none were taken away: then the question is its own topic and there is nothing to check)."""
    words = _WORD.findall(question)
    kept = [w for w in words if fold(w) not in FRAME_WORDS]
    if not kept or len(kept) == len(words):
        return ""
    return " ".join(kept)


def frame_share(question: str) -> float:
    """The share of the question's words that are frame words (0 without words)."""
    words = _WORD.findall(question)
    if not words:
        return 0.0
    return sum(fold(w) in FRAME_WORDS for w in words) / len(words)
