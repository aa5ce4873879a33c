"""A follow-up costs no extra model call (issue 21): its reading with the previous question is
searched with the blend of the two cached vectors; new texts together are one batch."""

from __future__ import annotations

import numpy as np

from faqbot.retrieval.embedders import HashEmbedder
from faqbot.retrieval.hybrid import QueryEncoder


async def test_texts_new_together_are_encoded_in_one_call() -> None:
    embedder = HashEmbedder()
    encoder = QueryEncoder(embedder)
    await encoder.prepare(["How do I invite a user?", "and how do I remove one?"])
    assert embedder.calls == 1
    assert embedder.texts_embedded == 2
    alone = HashEmbedder().embed(["and how do I remove one?"])[0]
    assert np.allclose(encoder.cached("and how do I remove one?"), alone)  # type: ignore[arg-type]
    await encoder.prepare(["How do I invite a user?"])
    assert embedder.calls == 1  # cached


async def test_a_blend_is_the_normalised_sum_of_cached_vectors() -> None:
    embedder = HashEmbedder()
    encoder = QueryEncoder(embedder)
    await encoder.prepare(["first question", "and then?"])
    encoder.blend("first question and then?", ("first question", "and then?"))
    a, b = encoder.cached("first question"), encoder.cached("and then?")
    assert a is not None
    assert b is not None
    expected = (a + b) / np.linalg.norm(a + b)
    blended = encoder.cached("first question and then?")
    assert blended is not None
    assert np.allclose(blended, expected)
    assert embedder.calls == 1
    encoder.blend("x y", ("x", "y"))  # parts not encoded: nothing cached, no call
    assert encoder.cached("x y") is None
    assert embedder.calls == 1
