"""How an ``article_id`` is derived: part of the contract, so every producer agrees.

Canonicalising the URL (tracking parameters, host case, fragments) is the connector's job;
this only hashes the canonical form.
"""

from __future__ import annotations

import hashlib


def article_id(canonical_url: str) -> str:
    """32 hex chars of SHA-256 over the canonical URL (or ``guid:<guid>`` as a fallback)."""
    if not canonical_url:
        raise ValueError("article_id needs a non-empty canonical URL or GUID key")
    return hashlib.sha256(canonical_url.encode("utf-8")).hexdigest()[:32]
