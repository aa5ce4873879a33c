# ruff: noqa
# fmt: off
import json
import time
import uuid
from typing import Dict, Tuple
from openai import OpenAI
from app.config import get_settings
from app.services.faq_service import FAQService
from app.utils.logger import get_logger
from app.utils.exceptions import OpenAIServiceError, FAQNotFoundError

settings = get_settings()
logger = get_logger(__name__)


class OpenAIService:
    def __init__(self):
        self.client = OpenAI(api_key=settings.openai_api_key)
        self.faq_service = FAQService()
    
    async def get_faq_answer(self, question: str, conversation_id: str = None) -> Dict:
        """
        Get FAQ answer using OpenAI function calling.
        Returns: {answer, category, conversation_id, processing_time}
        """
        start_time = time.time()
        
        if not conversation_id:
            conversation_id = str(uuid.uuid4())
        
        try:
            # Step 1: Determine the appropriate FAQ category
            category = await self._classify_question(question)
            
            # Step 2: Generate answer using the selected FAQ
            answer = await self._generate_answer(question, category)
            
            processing_time = time.time() - start_time
            
            return {
                "answer": answer,
                "category": category,
                "conversation_id": conversation_id,
                "processing_time": round(processing_time, 3)
            }
            
        except Exception as e:
            logger.error(f"Error in get_faq_answer: {e}")
            raise OpenAIServiceError(f"Failed to process question: {str(e)}")
    
    async def _classify_question(self, question: str) -> Tuple[str, float]:
        """Classify question using OpenAI function calling."""
        try:
            functions = self.faq_service.build_function_definitions()
            
            response = self.client.chat.completions.create(
                model=settings.openai_model,
                messages=[
                    {
                        "role": "system",
                        "content": "You are an intelligent FAQ classifier. Analyze the user's question and determine which FAQ category best answers it. Only call a function if you're confident it's the right category."
                    },
                    {
                        "role": "user",
                        "content": question
                    }
                ],
                tools=functions,
        tool_choice="auto",
                temperature=settings.openai_temperature,
                max_tokens=settings.openai_max_tokens
            )
            
            message = response.choices[0].message
            
            if not message.tool_calls:
                raise FAQNotFoundError("Could not classify question to any FAQ category")
            
            tool_call = message.tool_calls[0]
            function_name = tool_call.function.name
            category = function_name.replace("faq_", "")
            
            logger.info(f"Classified question to category: {category}")
            
            return category
            
        except Exception as e:
            logger.error(f"Error in question classification: {e}")
            raise
    
    async def _generate_answer(self, question: str, category: str) -> str:
        """Generate answer using the selected FAQ category."""
        try:
            faq_content = self.faq_service.get_faq_content(category)
            
            if not faq_content:
                raise FAQNotFoundError(f"FAQ content not found for category: {category}")
            
            response = self.client.chat.completions.create(
                model=settings.openai_model,
        messages=[
            {
                "role": "system",
                        "content": """You are a helpful FAQ assistant. Use ONLY the provided FAQ content to answer questions. 
                        If the answer is not explicitly covered in the FAQ content, respond with "I don't have that information in my FAQ database. Please contact support for more details."
                        
                        Guidelines:
                        - Be concise and accurate
                        - Use a friendly, professional tone
                        - Include relevant details from the FAQ
                        - If uncertain, acknowledge limitations"""
                    },
                    {
                        "role": "user",
                        "content": f"FAQ Content:\n{faq_content}\n\nQuestion: {question}"
                    }
                ],
                temperature=settings.openai_temperature,
                max_tokens=settings.openai_max_tokens
            )
            
            answer = response.choices[0].message.content.strip()
            logger.info(f"Generated answer for category {category}")
            
            return answer
            
        except Exception as e:
            logger.error(f"Error generating answer: {e}")
            raise
