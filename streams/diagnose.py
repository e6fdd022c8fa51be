"""Say which credential, certificate or broker is at fault, in words an operator can act on.

Pure functions: an exception of kafka-python, aiokafka or the Elasticsearch client (plus the
settings that were used) in, a ``Problem`` out -- ``"kafka: SASL authentication failed for user
'newsflow' (check NEWSFLOW_KAFKA__SASL_USERNAME/SASL_PASSWORD)"``. ``/health/ready`` and the log
show ``Problem.message``; ``Problem.auth`` feeds ``newsflow_auth_failures_total``.

A message never contains a secret: passwords and API keys are not read here except to blank
them out of the libraries' own texts (``scrub``), and an API key is named by its id only.

aiokafka is recognised by class name (``aiokafka.errors.*``), never imported: the connector and
the pure-work layers import this module and must not depend on aiokafka. The I/O that finds
the failing broker (``streams.ops.probe_broker``) lives in ``streams.ops``.

Callers::

    from streams import diagnose
    health.dependency("kafka", diagnose.kafka(exc, settings.kafka))          # any Kafka error
    health.dependency("elasticsearch", diagnose.elastic(exc, settings.elastic))
    health.dependency("elasticsearch", diagnose.elastic_answer(text, settings.elastic))
"""

from __future__ import annotations

import base64
import binascii
import re
import ssl
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

from streams.settings import ElasticSettings, KafkaSettings

Kind = Literal[
    "authentication",  # wrong user/password/API key (SASL, 401)
    "authorization",  # authenticated, but not allowed (ACL, 403)
    "tls",  # certificate not trusted / wrong host name / not a TLS listener
    "unreachable",  # refused, reset, no route, DNS, timeout
    "config",  # our settings contradict each other or the server's
    "refused",  # the server answers but refuses the work (write block)
    "other",
]
AUTH_KINDS: frozenset[str] = frozenset({"authentication", "authorization"})
KAFKA_AUTH_VARS = "NEWSFLOW_KAFKA__SASL_USERNAME/SASL_PASSWORD"
MAX_DETAIL = 240


@dataclass(frozen=True)
class Problem:
    """One dependency's failure: ``message`` is what /health/ready and the log show."""

    dependency: str  # kafka | elasticsearch
    kind: Kind
    message: str
    broker: str | None = None  # host:port of the broker at fault, when known

    @property
    def auth(self) -> Literal["authentication", "authorization"] | None:
        """The auth-failure reason for newsflow_auth_failures_total, else None."""
        if self.kind == "authentication":
            return "authentication"
        if self.kind == "authorization":
            return "authorization"
        return None

    def __str__(self) -> str:
        return self.message


# --- helpers ---------------------------------------------------------------------------------


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc``, its causes/contexts and the errors an aggregate carries, each once."""
    seen: set[int] = set()
    todo = [exc]
    while todo:
        cur = todo.pop(0)
        if id(cur) in seen:
            continue
        seen.add(id(cur))
        yield cur
        for nxt in (cur.__cause__, cur.__context__):
            if nxt is not None:
                todo.append(nxt)
        for arg in cur.args:
            if isinstance(arg, BaseException):
                todo.append(arg)
        for err in getattr(cur, "errors", ()) or ():
            if isinstance(err, BaseException):
                todo.append(err)


def _class_names(exc: BaseException) -> set[str]:
    return {cls.__name__ for cls in type(exc).__mro__}


def _has_class(exc: BaseException, *names: str) -> bool:
    return any(_class_names(e) & set(names) for e in _chain(exc))


class Reported(Exception):
    """A failure known only by its text (a callback's message): classified by its words."""


def _words(exc: BaseException) -> str:
    """str(exc), plus the ``message`` elastic_transport keeps apart ("TLS error": <message>)."""
    text = str(exc)
    message = getattr(exc, "message", None)
    if isinstance(message, str) and message and message not in text:
        text = f"{text}: {message}"
    return text


def _text(exc: BaseException) -> str:
    return " | ".join(
        _words(e) if isinstance(e, Reported) else f"{type(e).__name__}: {_words(e)}"
        for e in _chain(exc)
    )


def _secrets(*values: object) -> list[str]:
    out = []
    for value in values:
        secret = getattr(value, "get_secret_value", None)
        raw = secret() if callable(secret) else value
        if isinstance(raw, str) and len(raw) >= 3:
            out.append(raw)
    return out


_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)[^/@\s]+@")


def scrub(text: str, secrets: Sequence[str] = ()) -> str:
    """``text`` without the given secrets (and their API-key halves) or URL credentials."""
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, "***")
        decoded = _api_key_parts(secret)
        if decoded is not None and len(decoded[1]) >= 3:
            text = text.replace(decoded[1], "***")
    return _USERINFO.sub(r"\g<scheme>***@", text)


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_DETAIL else text[: MAX_DETAIL - 1] + "…"


def _api_key_parts(encoded: str) -> tuple[str, str] | None:
    """(id, key) of an ``encoded`` API key (base64 of ``id:key``), else None."""
    try:
        raw = base64.b64decode(encoded, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    key_id, sep, key = raw.partition(":")
    return (key_id, key) if sep and key_id and key else None


def _tls_problem(exc: BaseException) -> tuple[str, str] | None:
    """('untrusted'|'hostname'|'expired'|'not_tls'|'handshake', detail) of a TLS failure."""
    for e in _chain(exc):
        if isinstance(e, ssl.SSLCertVerificationError):
            detail = str(e.verify_message or e)
            low = detail.lower()
            if "mismatch" in low or "doesn't match" in low or e.verify_code == 62:
                return "hostname", detail
            if "expired" in low:
                return "expired", detail
            return "untrusted", detail
    text = _text(exc)
    low = text.lower()
    if "certificate_verify_failed" in low or "certificate verify failed" in low:
        if "mismatch" in low or "doesn't match" in low:
            return "hostname", text
        if "expired" in low:
            return "expired", text
        return "untrusted", text
    if "doesn't match" in low and "hostname" in low:
        return "hostname", text
    if "wrong_version_number" in low or "wrong version number" in low:
        return "not_tls", text
    if "unexpected_eof" in low or "eof occurred in violation of protocol" in low:
        return "not_tls", text
    if any(isinstance(e, ssl.SSLError) for e in _chain(exc)) or "handshake failed" in low:
        return "handshake", text
    return None


def _unreachable(exc: BaseException) -> str | None:
    """A short reason when ``exc`` says the address could not be reached, else None."""
    for e in _chain(exc):
        if isinstance(e, ConnectionRefusedError):
            return "connection refused"
        if isinstance(e, ConnectionResetError):
            return "connection reset"
        if isinstance(e, TimeoutError):
            return "timed out"
    text = _text(exc).lower()
    for needle, reason in (
        ("econnrefused", "connection refused"),
        ("connection refused", "connection refused"),
        ("connect call failed", "connection refused"),
        ("name or service not known", "host name not found"),
        ("nodename nor servname", "host name not found"),
        ("temporary failure in name resolution", "host name not resolvable"),
        ("no route to host", "no route to host"),
        ("network is unreachable", "network unreachable"),
        ("connection reset", "connection reset"),
        ("remotedisconnected", "connection closed"),
        ("remote end closed", "connection closed"),
        ("socket disconnected", "connection closed"),
        ("timed out", "timed out"),
        ("timeout", "timed out"),
    ):
        if needle in text:
            return reason
    return None


# --- Kafka -----------------------------------------------------------------------------------

_KAFKA_AUTHN = (
    "SaslAuthenticationFailedError",
    "SaslAuthenticationFailed",
    "AuthenticationFailedError",
)
_KAFKA_AUTHZ = (
    "AuthorizationError",  # kafka-python base of the *AuthorizationFailedError
    "TopicAuthorizationFailedError",
    "GroupAuthorizationFailedError",
    "ClusterAuthorizationFailedError",
    "TransactionalIdAuthorizationFailedError",
    "TransactionalIdAuthorizationFailed",
)
_KAFKA_BOOTSTRAP = ("NoBrokersAvailable",)


def _user(kafka: KafkaSettings) -> str:
    return repr(kafka.sasl_username) if kafka.sasl_username else "(none set)"


def _kafka_secrets(kafka: KafkaSettings) -> list[str]:
    return _secrets(kafka.sasl_password)


def kafka(exc: BaseException, settings: KafkaSettings, broker: str | None = None) -> Problem:
    """What ``exc`` (from any Kafka client, or ``probe_broker``) says is wrong, and what to fix.

    ``broker`` (host:port) is the address the error came from, when the caller knows it.
    """
    at = f" at {broker}" if broker else ""
    where = broker or settings.bootstrap_servers
    detail = _short(scrub(_text(exc), _kafka_secrets(settings)))

    def problem(kind: Kind, message: str) -> Problem:
        return Problem("kafka", kind, "kafka: " + message, broker)

    if _has_class(exc, "KafkaConfigError"):
        return problem("config", scrub(str(exc), _kafka_secrets(settings)))
    if _has_class(exc, *_KAFKA_AUTHN):
        if not settings.security_protocol.startswith("SASL_"):
            return problem(
                "authentication",
                f"the broker{at} demands authentication but "
                f"NEWSFLOW_KAFKA__SECURITY_PROTOCOL={settings.security_protocol} "
                "(SASL_SSL with NEWSFLOW_KAFKA__SASL_USERNAME/SASL_PASSWORD)",
            )
        return problem(
            "authentication",
            f"SASL authentication failed for user {_user(settings)}{at} "
            f"({settings.sasl_mechanism}; check {KAFKA_AUTH_VARS})",
        )
    if _has_class(exc, "UnsupportedSaslMechanismError"):
        return problem(
            "config",
            f"the broker{at} does not offer SASL mechanism {settings.sasl_mechanism} "
            f"(NEWSFLOW_KAFKA__SASL_MECHANISM): {detail}",
        )
    if _has_class(exc, "IllegalSaslStateError"):
        return problem(
            "config",
            f"the listener{at} does not expect SASL: NEWSFLOW_KAFKA__SECURITY_PROTOCOL="
            f"{settings.security_protocol} does not match the broker's listener "
            "(PLAINTEXT or SSL there?)",
        )
    if _has_class(exc, *_KAFKA_AUTHZ):
        return problem(
            "authorization",
            f"user {_user(settings)} is not allowed to do this{at} (Kafka ACLs: grant the "
            f"newsflow topics, groups and cluster describe): {detail}",
        )
    uses_tls = settings.security_protocol in ("SSL", "SASL_SSL")
    tls = _tls_problem(exc)
    if tls is not None:
        what, tls_detail = tls
        tls_detail = _short(scrub(tls_detail, _kafka_secrets(settings)))
        if what == "untrusted":
            return problem(
                "tls",
                f"TLS certificate of {where} not trusted (NEWSFLOW_KAFKA__SSL_CAFILE"
                f"{'=' + str(settings.ssl_cafile) if settings.ssl_cafile else ' not set'}): "
                f"{tls_detail}",
            )
        if what == "hostname":
            return problem(
                "tls",
                f"TLS certificate of {where} is not valid for that host name (use a name the "
                "certificate lists in NEWSFLOW_KAFKA__BOOTSTRAP_SERVERS, or "
                f"NEWSFLOW_KAFKA__SSL_CHECK_HOSTNAME=false): {tls_detail}",
            )
        if what == "expired":
            return problem("tls", f"TLS certificate of {where} has expired: {tls_detail}")
        if what == "not_tls":
            return problem(
                "tls",
                f"{where} does not speak TLS (a PLAINTEXT listener?): "
                f"NEWSFLOW_KAFKA__SECURITY_PROTOCOL={settings.security_protocol}",
            )
        return problem("tls", f"TLS handshake with {where} failed: {tls_detail}")
    reason = _unreachable(exc)
    if (
        reason in ("connection reset", "connection closed")
        and not uses_tls
        and settings.security_protocol == "PLAINTEXT"
        and broker is not None
    ):
        # A TLS listener drops the plaintext hello; say both possibilities.
        return problem(
            "unreachable",
            f"broker {broker} closed the connection (a TLS or SASL listener? "
            f"NEWSFLOW_KAFKA__SECURITY_PROTOCOL={settings.security_protocol})",
        )
    if reason is not None and broker is not None:
        return problem("unreachable", f"broker {broker} unreachable ({reason})")
    if _has_class(exc, *_KAFKA_BOOTSTRAP) or "unable to bootstrap" in detail.lower():
        return problem(
            "unreachable",
            f"no broker of NEWSFLOW_KAFKA__BOOTSTRAP_SERVERS={settings.bootstrap_servers} answered",
        )
    if reason is not None:
        return problem(
            "unreachable", f"brokers {settings.bootstrap_servers} unreachable ({reason})"
        )
    return problem("other", detail)


def kafka_brokers(
    results: Mapping[str, BaseException | None], settings: KafkaSettings
) -> Problem | None:
    """One message from a probe of each broker (host:port -> its error, or None when it was
    fine): the brokers at fault, what is wrong with them, and how many are up."""
    failed = {b: kafka(e, settings, b) for b, e in results.items() if e is not None}
    if not failed:
        return None
    up, total = len(results) - len(failed), len(results)
    counted = f"({up} of {total} broker{'s' if total != 1 else ''} up)"
    first = next(iter(failed.values()))
    if first.kind in AUTH_KINDS or first.kind == "config":
        # The brokers answer; our credential (or setting) is wrong, the same for all of them.
        (exc,) = [e for b, e in results.items() if b == first.broker]
        assert exc is not None
        return kafka(exc, settings)
    same = [b for b, p in failed.items() if p.kind == first.kind]
    if first.kind == "unreachable" and len(same) > 1:
        reasons = {p.message.rsplit("(", 1)[-1].rstrip(")") for b, p in failed.items()}
        why = reasons.pop() if len(reasons) == 1 else "see each broker"
        message = f"kafka: brokers {', '.join(same)} unreachable ({why}) {counted}"
        return Problem("kafka", "unreachable", message, same[0])
    return Problem("kafka", first.kind, f"{first.message} {counted}", first.broker)


def brokers_missing(
    missing: Mapping[str, BaseException | None], in_metadata: int, settings: KafkaSettings
) -> str | None:
    """A warning for brokers seen before but gone from the cluster metadata (broker label ->
    the error of a connection attempt, None if it answered)."""
    if not missing:
        return None
    total = in_metadata + len(missing)
    parts = []
    for label, exc in missing.items():
        if exc is None:
            parts.append(f"broker {label} not in the cluster metadata (fenced or restarting)")
        else:
            reason = _unreachable(exc)
            parts.append(
                f"broker {label} unreachable ({reason})"
                if reason
                else kafka(exc, settings, label).message.removeprefix("kafka: ")
            )
    return f"kafka: {'; '.join(parts)} ({in_metadata} of {total} brokers up)"


# --- Elasticsearch ---------------------------------------------------------------------------


def _elastic_secrets(settings: ElasticSettings) -> list[str]:
    return _secrets(settings.password, settings.api_key)


def _safe_url(url: str) -> str:
    parts = urlsplit(url)
    if "@" in parts.netloc:
        parts = parts._replace(netloc="***@" + parts.netloc.rsplit("@", 1)[1])
    return urlunsplit(parts)


def elastic_credential(settings: ElasticSettings) -> str:
    """Which credential the client sends, naming the variables that set it (never its value)."""
    if settings.api_key is not None:
        parts = _api_key_parts(settings.api_key.get_secret_value())
        key_id = f" {parts[0]}" if parts else ""
        return f"API key{key_id} (NEWSFLOW_ELASTIC__API_KEY)"
    if settings.username:
        return f"user {settings.username} (NEWSFLOW_ELASTIC__USERNAME/NEWSFLOW_ELASTIC__PASSWORD)"
    return "no credentials (set NEWSFLOW_ELASTIC__API_KEY or NEWSFLOW_ELASTIC__USERNAME/PASSWORD)"


def _status(exc: BaseException) -> int | None:
    for e in _chain(exc):
        meta = getattr(e, "meta", None)
        status = getattr(meta, "status", None)
        if isinstance(status, int):
            return status
        status = getattr(e, "status_code", None)
        if isinstance(status, int):
            return status
    return None


def _elastic_body(exc: BaseException) -> str:
    for e in _chain(exc):
        body = getattr(e, "body", None)
        if isinstance(body, Mapping):
            error = body.get("error")
            if isinstance(error, Mapping):
                return str(error.get("reason") or error.get("type") or "")
            if error:
                return str(error)
    return ""


def elastic(exc: BaseException, settings: ElasticSettings) -> Problem:
    """What an Elasticsearch client error says is wrong, naming the credential or setting."""
    url = _safe_url(settings.url)
    secrets = _elastic_secrets(settings)
    detail = _short(scrub(_elastic_body(exc) or _text(exc), secrets))

    def problem(kind: Kind, message: str) -> Problem:
        return Problem("elasticsearch", kind, "elasticsearch: " + message)

    status = _status(exc)
    if status == 401:
        return problem(
            "authentication", f"authentication failed (401) for {elastic_credential(settings)}"
        )
    if status == 403:
        if "cluster_block_exception" in _text(exc) or "cluster_block_exception" in detail:
            return problem(
                "refused", f"writes blocked (index.blocks.write or flood stage): {detail}"
            )
        return problem(
            "authorization",
            f"{elastic_credential(settings)} lacks a privilege (403): {detail}",
        )
    tls = _tls_problem(exc)
    if tls is not None:
        what, tls_detail = tls
        tls_detail = _short(scrub(tls_detail, secrets))
        if what == "untrusted":
            ca = f"={settings.ca_certs}" if settings.ca_certs else " not set"
            return problem(
                "tls",
                f"TLS certificate of {url} not trusted (NEWSFLOW_ELASTIC__CA_CERTS{ca}): "
                f"{tls_detail}",
            )
        if what == "hostname":
            return problem(
                "tls",
                f"TLS certificate of {url} is not valid for that host name (use a name the "
                f"certificate lists in NEWSFLOW_ELASTIC__URL): {tls_detail}",
            )
        if what == "expired":
            return problem("tls", f"TLS certificate of {url} has expired: {tls_detail}")
        if what == "not_tls":
            return problem(
                "tls",
                f"{url} does not speak TLS: use an http:// NEWSFLOW_ELASTIC__URL, or enable TLS "
                "on the cluster",
            )
        return problem("tls", f"TLS handshake with {url} failed: {tls_detail}")
    reason = _unreachable(exc)
    if reason in ("connection reset", "connection closed") and url.startswith("http://"):
        return problem(
            "unreachable",
            f"{url} closed the connection (an https-only cluster? NEWSFLOW_ELASTIC__URL "
            "should then start with https://)",
        )
    if _has_class(exc, "ConnectionTimeout"):
        return problem(
            "unreachable",
            f"{url} did not answer within NEWSFLOW_ELASTIC__REQUEST_TIMEOUT_S="
            f"{settings.request_timeout_s:g}",
        )
    if reason is not None:
        return problem("unreachable", f"{url} unreachable ({reason}; NEWSFLOW_ELASTIC__URL)")
    if status is not None:
        return problem("other", f"{url} answered {status}: {detail}")
    if isinstance(exc, Reported):  # our own code's words: whole (they may end with a hint)
        return problem("other", scrub(str(exc), secrets))
    return problem("other", detail)


def elastic_answer(message: str | None, settings: ElasticSettings) -> str | None:
    """The index path's outcome text (``write_until_settled``'s ``on_request``: None when
    Elasticsearch answered, else what went wrong) with the credential named on a 401/403
    refusal. ``None`` stays ``None``."""
    problem = elastic_answer_problem(message, settings)
    return None if problem is None else problem.message


def elastic_answer_problem(message: str | None, settings: ElasticSettings) -> Problem | None:
    """Like ``elastic_answer``, as a ``Problem`` (so auth failures can be counted)."""
    if message is None:
        return None
    if "refused (credentials)" in message:
        return Problem(
            "elasticsearch",
            "authentication",
            "elasticsearch: authentication failed (401) for "
            f"{elastic_credential(settings)}: writes refused (credentials), articles wait",
        )
    if "refused (privileges)" in message:
        return Problem(
            "elasticsearch",
            "authorization",
            f"elasticsearch: {elastic_credential(settings)} lacks a privilege (403) on the "
            "newsflow indices (write, create_index): writes refused (privileges), articles wait",
        )
    if "refused (" in message:  # write_block and whatever comes: the sink's words, whole
        return Problem(
            "elasticsearch",
            "refused",
            "elasticsearch: " + scrub(message, _elastic_secrets(settings)),
        )
    return elastic(Reported(message), settings)
