# ruff: noqa
# fmt: off
from pydantic import BaseModel, Field
from typing import Optional, Dict, Any
from enum import Enum


class FAQCategory(str, Enum):
    SALES = "sales"
    LABS = "labs"
    REPORTS = "reports"


class ChatRequest(BaseModel):
    question: str = Field(..., min_length=1, max_length=1000)
    conversation_id: Optional[str] = None


class ChatResponse(BaseModel):
    answer: str
    category: FAQCategory
    conversation_id: str
    processing_time: float


class ErrorResponse(BaseModel):
    error: str
    detail: Optional[str] = None
    error_code: str


class HealthResponse(BaseModel):
    status: str
    version: str
    timestamp: str
