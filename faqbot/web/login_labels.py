"""The sign-in form asks for a user name, not an e-mail address.

faqbot's users are names (AUTH_USERS `alice:...`, AUTH_HEADER's value), while Chainlit's
translations label the field "Email address" with a `me@example.com` placeholder, which sent
newcomers looking for an address they never had. `.chainlit/translations/` is made by
`chainlit init` and not kept in git, so the label is replaced where the translations are served.
"""

from __future__ import annotations

from typing import Any

# language prefix -> (label, "required" message); any other language gets the English text.
LABELS: dict[str, tuple[str, str]] = {
    "en": ("User name", "user name is a required field"),
    "da": ("Brugernavn", "brugernavn er et påkrævet felt"),
    "de": ("Benutzername", "Benutzername ist ein Pflichtfeld"),
    "es": ("Nombre de usuario", "el nombre de usuario es obligatorio"),
    "fr": ("Nom d'utilisateur", "le nom d'utilisateur est un champ obligatoire"),
    "it": ("Nome utente", "il nome utente è un campo obbligatorio"),
    "nl": ("Gebruikersnaam", "gebruikersnaam is een verplicht veld"),
    "pt": ("Nome de utilizador", "o nome de utilizador é obrigatório"),
    "ja": ("ユーザー名", "ユーザー名は必須項目です"),
    "ko": ("사용자 이름", "사용자 이름은 필수 입력 항목입니다"),
    "zh-CN": ("用户名", "用户名是必填项"),
    "zh-TW": ("使用者名稱", "使用者名稱是必填項目"),
}


def name_sign_in(translation: dict[str, Any], language: str) -> dict[str, Any]:
    """`translation` (Chainlit's, for `language`) with the sign-in field asking for a name."""
    label, required = LABELS.get(language, LABELS.get(language[:2], LABELS["en"]))
    form = translation.setdefault("auth", {}).setdefault("login", {}).setdefault("form", {})
    field = form.setdefault("email", {})
    field.update({"label": label, "required": required, "placeholder": ""})
    return translation
