"""Keep the served UI self-contained: no request may leave for another host.

Chainlit 2.12's index.html asks a CDN for the KaTeX stylesheet (even with LaTeX off) and
preconnects to Google Fonts; `strip_external_links` removes every `<link>` whose href is an
absolute URL, so an air-gapped install makes no outside request. (The Inter font link is already
gone: `public/theme.json` sets `custom_fonts`, which replaces it, and the copilot widget then
skips its own Google Fonts link too.)
"""

from __future__ import annotations

import re

_EXTERNAL_LINK = re.compile(
    r"<link\b[^>]*\bhref\s*=\s*[\"']?(?:https?:)?//[^>]*>\s*", re.IGNORECASE | re.DOTALL
)


def strip_external_links(html: str) -> str:
    """The page without `<link>` elements pointing at another host (http://, https://, //)."""
    return _EXTERNAL_LINK.sub("", html)
