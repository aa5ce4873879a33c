"""Load and validate the FAQ folder into an immutable KnowledgeBase."""

from faqbot.knowledge.loader import check_dir, load_knowledge_base, parse_file

__all__ = ["check_dir", "load_knowledge_base", "parse_file"]
