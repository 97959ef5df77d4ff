"""Repair text that arrives double-encoded in the feed itself ("Mairie du 16ÃƒÂ¨me").

Some publishers encode UTF-8 text, read it back as Windows-1252 and encode it again, once or
twice, before it reaches their feed; no choice of encoding on our side undoes that. ftfy's
``fix_encoding`` recognises such sequences and undoes exactly them: text that is not mojibake
comes back unchanged (curly quotes, ligatures and full-width letters are left as sent, which
``ftfy.fix_text`` would not do). Every repair is reported as an issue of its source.
"""

from __future__ import annotations

import ftfy

__all__ = ["repair_mojibake"]


def repair_mojibake(text: str | None) -> str | None:
    """``text`` with any mojibake undone; the very same object when there was none."""
    if not text or text.isascii():
        return text  # ASCII cannot be mojibake; skip the library for most names
    fixed = ftfy.fix_encoding(text)
    return text if fixed == text else fixed
