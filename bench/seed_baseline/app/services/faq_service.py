# ruff: noqa
# fmt: off
import json
from pathlib import Path
from typing import Dict, List
from app.utils.logger import get_logger
from app.models.schemas import FAQCategory

logger = get_logger(__name__)


class FAQService:
    def __init__(self, faq_dir: str = "faqs"):
        self.faq_dir = Path(faq_dir)
        self.faq_content: Dict[str, str] = {}
        self.load_faq_files()
    
    def load_faq_files(self) -> None:
        """Load all FAQ files into memory with error handling."""
        try:
            for faq_file in self.faq_dir.glob("*.txt"):
                category = faq_file.stem
                if category in [e.value for e in FAQCategory]:
                    content = faq_file.read_text(encoding="utf-8")
                    self.faq_content[category] = content
                    logger.info(f"Loaded FAQ category: {category}")
                else:
                    logger.warning(f"Unknown FAQ category: {category}")
        except Exception as e:
            logger.error(f"Error loading FAQ files: {e}")
            raise
    
    def get_faq_content(self, category: str) -> str:
        """Get FAQ content for a specific category."""
        return self.faq_content.get(category, "")
    
    def get_available_categories(self) -> List[str]:
        """Get list of available FAQ categories."""
        return list(self.faq_content.keys())
    
    def build_function_definitions(self) -> List[Dict]:
        """Build OpenAI function definitions for FAQ categories."""
        functions = []
        for category in self.get_available_categories():
            function = {
                "type": "function",
                "function": {
                    "name": f"faq_{category}",
                    "description": f"Answer questions using the {category.title()} FAQ knowledge base. Use this when the question relates to {category} topics.",
  "parameters": {
    "type": "object",
    "properties": {
                            "question": {
                                "type": "string",
                                "description": "The user's question to be answered"
                            }
                        },
                        "required": ["question"],
                        "additionalProperties": False
                    }
                }
            }
            functions.append(function)
        return functions
