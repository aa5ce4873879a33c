# ruff: noqa
# fmt: off
from functools import lru_cache
from typing import List
from pydantic_settings import BaseSettings


class Settings(BaseSettings):
    # OpenAI Configuration
    openai_api_key: str
    openai_model: str = "gpt-4-1106-preview"
    openai_max_tokens: int = 1000
    openai_temperature: float = 0.1
    
    # App Configuration
    app_name: str = "FAQ Chatbot"
    app_version: str = "1.0.0"
    debug: bool = False
    log_level: str = "INFO"
    
    # Server Configuration
    host: str = "0.0.0.0"
    port: int = 8000
    reload: bool = False
    
    # Security
    cors_origins: List[str] = ["http://localhost:3000"]
    rate_limit_requests: int = 60
    rate_limit_window: int = 60
    
    class Config:
        env_file = ".env"
        case_sensitive = False


@lru_cache()
def get_settings() -> Settings:
    return Settings()
