"""Text that can be sent. JSON allows a lone surrogate ("\\ud800"); Unicode, and so
UTF-8, does not. A client may send one; nothing may echo it back unescaped."""

from __future__ import annotations


def is_unicode(text: str) -> bool:
    """Whether `text` encodes as UTF-8 (holds no lone surrogate)."""
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def escaped(text: str) -> str:
    """`text` with each lone surrogate written out as its escape (`\\ud800`); Unicode text is unchanged."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")
