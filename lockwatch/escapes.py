"""Untrusted text shown safely: control characters and bidirectional overrides as visible escapes."""
from __future__ import annotations

import re
import unicodedata

# Anything outside printable ASCII is looked at; of that, what a terminal or the Unicode
# bidirectional algorithm acts on is escaped: controls (ESC sequences that retitle a window or
# erase a line, \r, \b, \n that forges a line), format characters (U+202A-202E embeddings and
# overrides, U+2066-2069 isolates, U+200E/F marks, zero-width characters), line and paragraph
# separators, and lone surrogates (a file name's undecodable bytes, which no UTF-8 stream takes).
_SUSPECT = re.compile(r"[^\x20-\x7e]")
_ESCAPED_CATEGORIES = frozenset(("Cc", "Cf", "Cs", "Zl", "Zp"))
_SHORT = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


def _escape(m: re.Match) -> str:
    ch = m.group()
    if unicodedata.category(ch) not in _ESCAPED_CATEGORIES:
        return ch
    if ch in _SHORT:
        return _SHORT[ch]
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def printable(text: str) -> str:
    """``text`` with those characters written as Python escapes (``\\x1b``, ``\\u202e``); other
    text, accented letters and CJK included, unchanged. Idempotent."""
    if _SUSPECT.search(text) is None:
        return text
    out = _SUSPECT.sub(_escape, text)
    return text if out == text else out
