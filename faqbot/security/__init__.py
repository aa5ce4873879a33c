"""Prompt-injection red team: attack cases as data and an offline runner (`python -m faqbot
redteam`). The LLM half of the suite runs in tests/test_injection_suite.py against the fake
OpenAI server, because it inspects what reaches the model."""
