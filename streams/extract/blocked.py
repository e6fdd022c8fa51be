"""Is this page an interstitial instead of the article? (status ``blocked``)

Two kinds, both decided only when the main text is short, so a full article that merely has a
cookie banner or a "subscribe" box at its foot is never blocked:

- **paywall**: the publisher says so (JSON-LD ``isAccessibleForFree: false``) or the page holds a
  paywall/subscription wall element (class or id naming paywall, piano, regwall, premium
  offers...), and less than ``SHORT_PAYWALL`` characters of text are reachable;
- **cookie consent**: the main text (or, when the extractor found almost nothing, the page's own
  visible text and title) is dominated by consent vocabulary in any of the languages we carry,
  or the page is a consent-manager shell (Sourcepoint, OneTrust, Didomi, Quantcast...) with little
  text.
"""

from __future__ import annotations

import re
from typing import Any, Final

from streams.extract.metadata import PageMeta

__all__ = ["blocked_reason"]

SHORT_PAYWALL: Final = 700
SHORT_CONSENT: Final = 1500

_WALL_ATTR: Final = re.compile(
    r"paywall|pay-wall|piano|regwall|reg-wall|subscriber-only|subscription-wall|premium-wall|"
    r"meter-?wall|tp-modal|offer-wall|article-locked|locked-content|abo-?wall|plus-wall",
    re.I,
)
_CMP_ATTR: Final = re.compile(
    r"sp_message|onetrust|didomi|qc-cmp|cmp-|consent|cookiebot|usercentrics|truste|gdpr|"
    r"cookie-?wall|privacy-?wall",
    re.I,
)
_CONSENT_WORDS: Final = re.compile(
    r"cookie|consent|gdpr|rgpd|dsgvo|datenschutz|einwilligung|zustimm|privacy|privacidad|"
    r"confidentialit|consentement|partenaires|partners|partner|personali[sz]|"
    r"tracking|trackers|targeted ads|publicit[ée]s? (?:cibl|personnal)|werbung|"
    r"çerez|kişisel veri|файл\w* cookie|cookie-файл|персональн\w+ данн|"
    r"ملفات تعريف الارتباط|الخصوصية|کوکی|حریم خصوصی|עוגיות|פרטיות|隐私|隱私|个人信息",
    re.I,
)
_SUBSCRIBE_WORDS: Final = re.compile(
    r"subscri|abonn|abonnent|\babo\b|suscri|abone|подпис|اشترك|اشتراك|مشترک|מנוי|会员|訂閱|订阅",
    re.I,
)


_ARTICLE_TYPES: Final = frozenset(
    {"newsarticle", "article", "reportagenewsarticle", "analysisnewsarticle", "blogposting"}
)


def _has_attr(tree: Any, pattern: re.Pattern[str]) -> bool:
    for el in tree.iter():
        if not isinstance(el.tag, str):
            continue
        attrs = f"{el.get('class', '')} {el.get('id', '')}"
        if len(attrs) > 1 and pattern.search(attrs):
            return True
    return False


def _consent_heavy(text: str) -> bool:
    words = len(text.split()) or 1
    hits = len(_CONSENT_WORDS.findall(text))
    # CJK has no spaces: count per 30 characters instead of per word there.
    units = max(words, len(text) // 30)
    return hits >= 2 and hits / units >= 0.04


def _visible_text(tree: Any) -> str:
    body = tree.find(".//body")
    if body is None:
        return ""
    parts = []
    for el in body.iter():
        if el.tag in ("script", "style", "noscript", "template"):
            continue
        if el.text and el.text.strip():
            parts.append(el.text.strip())
        if len(parts) > 2000:
            break
    return " ".join(parts)


def blocked_reason(tree: Any, text: str, meta: PageMeta, title: str | None) -> str | None:
    """Why this page is an interstitial, or None when it is (or may be) the article."""
    short = len(text)
    if short < SHORT_PAYWALL:
        if meta.accessible_for_free is False:
            return "paywall (isAccessibleForFree: false)"
        # A wall element alone is common (newsletter modals reuse the vendor's classes): it
        # also takes very little text, or subscription wording in that little text.
        if _has_attr(tree, _WALL_ATTR) and (
            short < SHORT_PAYWALL // 3 or _SUBSCRIBE_WORDS.search(text)
        ):
            return "paywall"
    if short < SHORT_CONSENT:
        if text and _consent_heavy(text):
            return "cookie consent"
        # The page's visible text decides only when the extractor found next to nothing:
        # a short story the page itself declares an article (JSON-LD) is the article, even
        # when a cookie banner outweighs it (short CJK items are often under 300 characters).
        declared = bool(meta.ld_types & _ARTICLE_TYPES) and short >= 80
        if short < 300 and not declared:
            visible = _visible_text(tree)
            if _consent_heavy(f"{title or ''} {visible}") and (
                _has_attr(tree, _CMP_ATTR) or len(visible) < 3000
            ):
                return "cookie consent"
    return None
