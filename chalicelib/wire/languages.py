"""Language codes accepted for speakers and listeners.

The default set is the ISO 639-1 languages that both Amazon Translate and Amazon
Polly's neural voices support, so every listener language can be translated and
spoken. Override it with SUPPORTED_LANGUAGES. Checking is local: no AWS call at join.
"""

from __future__ import annotations

import re

_CODE = re.compile(r"[a-z]{2}")

DEFAULT_SUPPORTED_LANGUAGES = (
    "ar",  # Arabic (Polly: arb, Hala/Zayd neural)
    "ca",  # Catalan
    "da",  # Danish
    "de",  # German
    "en",  # English
    "es",  # Spanish
    "fi",  # Finnish
    "fr",  # French
    "hi",  # Hindi
    "it",  # Italian
    "ja",  # Japanese
    "ko",  # Korean
    "nl",  # Dutch
    "no",  # Norwegian (Polly: nb-NO)
    "pl",  # Polish
    "pt",  # Portuguese
    "sv",  # Swedish
    "tr",  # Turkish
    "zh",  # Chinese (Polly: cmn-CN)
)


def is_language_code(value: object) -> bool:
    """True for a syntactically valid ISO 639-1 code (two lower-case letters)."""
    return isinstance(value, str) and bool(_CODE.fullmatch(value))
