"""Guarded HTTP for every part of newsflow that reaches the web (foundation layer).

- ``fetch``: ``Fetcher``, one bounded, SSRF-guarded (conditional) GET with capped decoding;
  the feed connector polls with it and the page fetcher builds on it.
- ``addresses``: the SSRF address policy (checked after DNS, inside the resolver).
- ``decoding``: Content-Encoding undone under wire and decoded-size caps.
- ``headers``: Retry-After, Cache-Control max-age, Content-Type charset.
- ``types``: ``FetchLimits``, ``FetchResult``, ``Validators``.
- ``robots``, ``pacing``, ``pages``: fetching article pages like a good citizen (robots.txt,
  per-host concurrency, spacing and backoff, a deadline per page) for the extract stage.

Layering: this package may import ``streams.settings`` and third-party HTTP libraries only,
never faust, Kafka, Elasticsearch, ``streams.stages`` or ``connectors``; both the connector and
the stages import it.
"""
