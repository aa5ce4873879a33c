"""Settings: defaults, env overrides, key placeholders, validation errors naming the variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from faqbot.config import REFUSAL_TEXT, Settings, load_settings
from faqbot.errors import ConfigError

SECRET = "sk-test-0123456789abcdefSECRET"


def test_defaults_are_offline_without_a_key() -> None:
    settings = load_settings()

    assert isinstance(settings, Settings)
    assert settings.openai_api_key is None
    assert settings.llm_enabled is False
    assert settings.openai_model == "gpt-4o-mini"
    assert settings.openai_temperature == 0.1
    assert settings.openai_max_tokens == 1000
    assert settings.port == 8000
    assert settings.host == "0.0.0.0"
    assert settings.rate_limit_requests == 60
    assert settings.rate_limit_window == 60
    assert settings.max_question_chars == 1000
    assert settings.faq_dir == Path("faqs")
    assert settings.cors_origins == ["http://localhost:3000", "http://127.0.0.1:8000"]
    assert settings.log_level == "INFO"
    assert settings.refusal_text == REFUSAL_TEXT


def test_base_url_alone_does_not_enable_the_llm(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9999/v1")
    settings = load_settings()
    assert settings.openai_base_url == "http://127.0.0.1:9999/v1"
    assert settings.llm_enabled is False


def test_a_real_key_enables_the_llm(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    settings = load_settings()
    assert settings.llm_enabled is True
    assert settings.openai_api_key is not None
    assert settings.openai_api_key.get_secret_value() == SECRET


@pytest.mark.parametrize(
    "value",
    ["", "   ", "your_openai_api_key_here", " your_openai_api_key_here ", "sk-FAKE-OPENAI-API-KEY"],
)
def test_blank_or_placeholder_key_means_offline(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", value)
    settings = load_settings()
    assert settings.openai_api_key is None
    assert settings.llm_enabled is False


def test_placeholder_key_passed_as_override_means_offline() -> None:
    assert load_settings(openai_api_key="your_openai_api_key_here").llm_enabled is False


def test_env_vars_override_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORT", "9001")
    monkeypatch.setenv("OPENAI_MODEL", "gpt-4.1-mini")
    monkeypatch.setenv("OPENAI_TEMPERATURE", "0.7")
    monkeypatch.setenv("RATE_LIMIT_REQUESTS", "5")
    monkeypatch.setenv("MAX_QUESTION_CHARS", "200")
    monkeypatch.setenv("FAQ_DIR", "/srv/faqs")
    monkeypatch.setenv("LOG_LEVEL", "debug")
    monkeypatch.setenv("DEBUG", "true")

    settings = load_settings()

    assert settings.port == 9001
    assert settings.openai_model == "gpt-4.1-mini"
    assert settings.openai_temperature == 0.7
    assert settings.rate_limit_requests == 5
    assert settings.max_question_chars == 200
    assert settings.faq_dir == Path("/srv/faqs")
    assert settings.log_level == "DEBUG"
    assert settings.debug is True


def test_keyword_overrides_win_over_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORT", "9001")
    assert load_settings(port=9100).port == 9100


def test_dotenv_in_working_directory_is_read_and_env_wins(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # conftest chdirs to tmp_path, so this .env is the one Settings reads.
    (tmp_path / ".env").write_text("PORT=7001\nOPENAI_MODEL=from-dotenv\n", encoding="utf-8")
    settings = load_settings()
    assert (settings.port, settings.openai_model) == (7001, "from-dotenv")

    monkeypatch.setenv("PORT", "7002")
    assert load_settings().port == 7002


def test_cors_origins_as_json_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CORS_ORIGINS", '["https://a.example", "https://b.example:8443"]')
    assert load_settings().cors_origins == ["https://a.example", "https://b.example:8443"]


def test_cors_origins_as_comma_separated_string(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CORS_ORIGINS", " https://a.example , https://b.example,, ")
    assert load_settings().cors_origins == ["https://a.example", "https://b.example"]


def test_cors_origins_single_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CORS_ORIGINS", "https://only.example")
    assert load_settings().cors_origins == ["https://only.example"]


@pytest.mark.parametrize(
    ("variable", "value", "detail"),
    [
        ("PORT", "abc", "valid integer"),
        ("PORT", "70000", "less than or equal to 65535"),
        ("OPENAI_TEMPERATURE", "5", "less than or equal to 2"),
        ("RATE_LIMIT_REQUESTS", "0", "greater than or equal to 1"),
        ("MAX_QUESTION_CHARS", "-1", "greater than or equal to 1"),
        ("OPENAI_TIMEOUT", "0", "greater than 0"),
        ("LOG_LEVEL", "LOUD", "'DEBUG', 'INFO', 'WARNING', 'ERROR' or 'CRITICAL'"),
        ("CORS_ORIGINS", "[not json", ""),
    ],
)
def test_invalid_value_raises_config_error_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, detail: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as info:
        load_settings()
    message = str(info.value)
    assert message.startswith("Invalid configuration: ")
    assert f"{variable}: " in message
    assert detail in message
    assert info.value.code == "CONFIG_ERROR"


def test_several_invalid_values_are_all_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORT", "abc")
    monkeypatch.setenv("OPENAI_TEMPERATURE", "5")
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert "PORT: " in str(info.value)
    assert "OPENAI_TEMPERATURE: " in str(info.value)


def test_invalid_override_is_named_too() -> None:
    with pytest.raises(ConfigError, match="RATE_LIMIT_WINDOW: "):
        load_settings(rate_limit_window=0)


def test_api_key_never_appears_in_repr_or_str(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    settings = load_settings()
    assert settings.llm_enabled is True
    assert SECRET not in repr(settings)
    assert SECRET not in str(settings)
    assert SECRET not in repr(settings.openai_api_key)
    assert SECRET not in settings.model_dump_json()
    assert "**********" in repr(settings)


def test_api_key_never_appears_in_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    monkeypatch.setenv("PORT", "abc")
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert SECRET not in str(info.value)
    assert SECRET not in repr(info.value)


@pytest.mark.parametrize("name", ["OPENAI_BASE_URL", "EMBEDDINGS_BASE_URL", "REDIS_URL"])
def test_a_blank_url_means_unset(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    """docker-compose.yml passes `${OPENAI_BASE_URL:-}` as an empty string when it is unset."""
    monkeypatch.setenv(name, "  ")
    assert getattr(load_settings(), name.lower()) is None
