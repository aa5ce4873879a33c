"""faqbot: a streaming FAQ chatbot that answers only from the team's FAQ files."""

__version__ = "0.1.0"
