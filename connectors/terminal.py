"""Text from the network made safe to print on a terminal (issue 14.10).

A server's reason phrase, an ETag or a feed title can carry escape sequences (ESC [ ... to
recolour, move the cursor, set the window title, or OSC 8 links) and bidi overrides that
reorder what the reader sees. ``for_terminal`` shows every such character as a visible
``\\xNN``/``\\uNNNN`` escape instead; everything else, Arabic and CJK included, is unchanged.
Used by ``feeds check`` here and by ``feeds list``/``status`` through ``feed_report``.
"""

from __future__ import annotations

import re

# C0 controls but tab, DEL and C1 controls (CSI U+009B among them), bidi overrides/embeddings
# and isolates, line/paragraph separators.
_UNSAFE = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def for_terminal(text: object) -> str:
    """``str(text)`` with every control and direction-override character shown escaped."""
    value = "" if text is None else str(text)
    return _UNSAFE.sub(_escape, value)
