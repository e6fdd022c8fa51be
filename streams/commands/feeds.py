"""``newsflow feeds ...`` and ``newsflow connect``: the connector's commands.

Registered on the main ``newsflow`` command (``streams/commands/cli.py``); settings are built there
once and reach these functions through ``Settings()`` at the command's entry.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from connectors.feeds import (
    FeedList,
    FeedListError,
    FeedSpec,
    export_opml,
    feed_id_for,
    import_opml,
    load_feed_list,
    save_feed_list,
)
from connectors.sharding import Shard, ShardingError, resolve, state_path_for
from streams.settings import Settings

feeds_app = typer.Typer(
    help="The feed list: list (with health), add, remove, import/export OPML, check, serve.",
    no_args_is_help=True,
)

FeedsOpt = Annotated[
    Path | None,
    typer.Option("--feeds", "-f", help="Feed list file (default: connector.feeds_file)."),
]


def _err(message: str, code: int = 1) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def _feeds_path(settings: Settings, path: Path | None) -> Path:
    return path or settings.connector.feeds_file


def _load(path: Path, *, missing_ok: bool = False) -> FeedList:
    if missing_ok and not path.exists():
        return FeedList()
    try:
        return load_feed_list(path)
    except FeedListError as exc:
        _err(str(exc))
        raise  # unreachable: _err exits


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit}"
    return f"{seconds:.0f}s"


@feeds_app.command("list")
def feeds_list(
    feeds: FeedsOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per feed.")] = False,
) -> None:
    """Every feed with its health (ok / not-modified / failing / stale / dead / pending)."""
    from streams.commands.feed_report import feed_rows

    settings = Settings()
    rows = feed_rows(settings.connector, _load(_feeds_path(settings, feeds)))
    if as_json:
        for row in rows:
            typer.echo(json.dumps(row, ensure_ascii=False))
        return
    # With several connector replicas: which one polls the feed (connectors/sharding.py).
    replicas = settings.connector.replicas
    head = f"{'REPLICA':>7} " if replicas > 1 else ""
    typer.echo(
        f"{'ID':<28} {head}{'HEALTH':<13} {'LAST NEW':>9} {'POLLED':>8} {'EVERY':>7}  URL / ERROR"
    )
    for row in rows:
        extra = row["last_error"] or row["url"]
        owner = f"{row['replica']:>3}/{replicas:<3} " if replicas > 1 else ""
        typer.echo(
            f"{row['id'][:28]:<28} {owner}{row['health']:<13} "
            f"{_age(row['last_new_item_age_s']):>9} "
            f"{_age(row['last_poll_age_s']):>8} {_age(row['interval_s']):>7}  {extra}"
        )
    typer.echo(f"{len(rows)} feeds", err=True)


@feeds_app.command("add")
def feeds_add(
    url: Annotated[str, typer.Argument(help="Feed URL (http or https).")],
    feeds: FeedsOpt = None,
    feed_id: Annotated[str | None, typer.Option("--id", help="Id (default: from URL).")] = None,
    name: Annotated[str | None, typer.Option(help="Human-readable name.")] = None,
    language: Annotated[str | None, typer.Option(help="Language hint, e.g. ar.")] = None,
    country: Annotated[str | None, typer.Option(help="ISO 3166-1 alpha-2.")] = None,
    tag: Annotated[list[str] | None, typer.Option(help="Tag (repeatable).")] = None,
) -> None:
    """Add a feed to the list (the file is created when missing)."""
    from pydantic import ValidationError

    settings = Settings()
    path = _feeds_path(settings, feeds)
    flist = _load(path, missing_ok=True)
    try:
        spec = FeedSpec(
            id=feed_id or feed_id_for(url, (f.id for f in flist.feeds)),
            url=url,
            name=name,
            language=language,
            country=country.upper() if country else None,
            tags=tuple(tag or ()),
        )
        flist = flist.with_feed(spec)
    except ValidationError as exc:
        _err("; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()))
        return
    except FeedListError as exc:
        _err(str(exc))
        return
    save_feed_list(path, flist)
    typer.echo(f"added {spec.id} ({spec.url}) to {path}")


@feeds_app.command("remove")
def feeds_remove(
    feed_id: Annotated[str, typer.Argument(help="Id of the feed to remove.")],
    feeds: FeedsOpt = None,
) -> None:
    """Remove a feed from the list (its state is kept until the next `connect`)."""
    settings = Settings()
    path = _feeds_path(settings, feeds)
    try:
        flist = _load(path).without(feed_id)
    except FeedListError as exc:
        _err(str(exc))
        return
    save_feed_list(path, flist)
    typer.echo(f"removed {feed_id} from {path}")


@feeds_app.command("import")
def feeds_import(
    opml: Annotated[Path, typer.Argument(help="OPML file to import.", exists=True)],
    feeds: FeedsOpt = None,
) -> None:
    """Add every feed of an OPML file (duplicates by URL are skipped, bad outlines reported)."""
    settings = Settings()
    path = _feeds_path(settings, feeds)
    before = _load(path, missing_ok=True)
    try:
        after, problems = import_opml(opml.read_bytes(), str(opml), before)
    except FeedListError as exc:
        _err(str(exc))
        return
    for problem in problems:
        typer.secho(f"skipped: {problem}", fg=typer.colors.YELLOW, err=True)
    save_feed_list(path, after)
    typer.echo(f"imported {len(after.feeds) - len(before.feeds)} feed(s) into {path}")


@feeds_app.command("export")
def feeds_export(
    feeds: FeedsOpt = None,
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="File (default: -).")
    ] = None,
) -> None:
    """The feed list as OPML 2.0."""
    settings = Settings()
    data = export_opml(_load(_feeds_path(settings, feeds)))
    if output:
        output.write_bytes(data)
    else:
        sys.stdout.buffer.write(data)


@feeds_app.command("check")
def feeds_check(
    target: Annotated[str, typer.Argument(help="Feed URL, or a file with a feed document.")],
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the RawArticle records as JSON lines.")
    ] = False,
    allow_private: Annotated[
        bool, typer.Option(help="Allow loopback/private addresses (local test servers).")
    ] = False,
    base_url: Annotated[
        str | None, typer.Option(help="Base URL for relative links when checking a file.")
    ] = None,
    language: Annotated[str | None, typer.Option(help="Language hint, as in the list.")] = None,
) -> None:
    """Fetch (or read) once, parse, and show what would be produced. Nothing goes to Kafka."""
    from connectors.rss.check import check

    settings = Settings()
    report = asyncio.run(
        check(
            settings.connector,
            target,
            allow_private=allow_private,
            base_url=base_url,
            language=language,
        )
    )
    if as_json:
        for article in report.articles:
            typer.echo(article.model_dump_json())
    else:
        for line in report.lines():
            typer.echo(line)
    for warning in report.warnings:
        typer.secho(f"warning: {warning}", fg=typer.colors.YELLOW, err=True)
    if report.error:
        _err(report.error, 2)


@feeds_app.command("serve")
def feeds_serve(
    directory: Annotated[Path, typer.Argument(help="Directory of feed files.", exists=True)],
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8765,
) -> None:
    """Serve a directory of feed files over HTTP (ETag, 304, gzip): the demo's feed server."""
    from streams.commands import feedserver

    typer.echo(f"serving {directory} on http://{host}:{port}/ (Ctrl-C stops)", err=True)
    feedserver.run(directory, host, port)


def _progress_printer(interactive: bool) -> Any:
    last = [0.0]

    def show(done: int, total: int, summary: Any) -> None:
        now = time.monotonic()
        if not interactive and now - last[0] < 5 and done < total:
            return
        last[0] = now
        line = (
            f"feeds {done}/{total}  articles new {summary.articles['new']} "
            f"updated {summary.articles['updated']}  errors {sum(summary.errors.values())}"
        )
        if interactive:
            sys.stderr.write("\r" + line.ljust(78))
            if done >= total:
                sys.stderr.write("\n")
            sys.stderr.flush()
        else:
            logging.getLogger("newsflow.connector").info(line)

    return show


def connect_cmd(
    once: Annotated[
        bool, typer.Option("--once", help="Poll every due feed once, flush, summarise, exit.")
    ] = False,
    every_feed: Annotated[
        bool, typer.Option("--all", help="With --once: poll every enabled feed, due or not.")
    ] = False,
    feeds: FeedsOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Summary as JSON.")] = False,
    log_format: Annotated[str, typer.Option(help="text or json log lines.")] = "text",
) -> None:
    """Poll the feed list and produce articles to Kafka (long-running, or --once)."""
    from connectors.feed_state import SqliteFeedStateStore
    from connectors.logs import configure_logging
    from connectors.producer import ArticleProducer
    from connectors.rss.poller import Connector
    from streams import topics
    from streams.commands.bootstrap import ensure_topics

    settings = Settings()
    configure_logging(log_format)
    log = logging.getLogger("newsflow.connector")
    path = _feeds_path(settings, feeds)
    flist = _load(path)
    shard = _shard(settings)  # before touching Kafka: a bad replica setting fails alone
    try:
        ensure_topics(settings, log.info, (topics.RAW,))
    except Exception as exc:  # noqa: BLE001 - one clear line instead of a traceback
        _err(f"Kafka at {settings.kafka.bootstrap_servers} is not usable: {exc}")
    state_path = state_path_for(settings.connector.state_path, shard)
    store = SqliteFeedStateStore(state_path)
    # Only where ownership can have changed (several replicas now or at the last start): the
    # single connector's behaviour is untouched.
    sharded = _sharded(settings.connector.state_path, state_path, shard, log)
    saved = _drop_foreign_states(store, shard, flist) if sharded else None
    producer = ArticleProducer(settings)
    connector = Connector(
        settings.connector, flist, store, producer, feeds_path=path, select=_owned(shard, log)
    )
    connector.recover(settings)
    if saved is not None:
        _take_over(settings, connector, shard, saved, log)
        _replicas_marker(state_path).write_text(f"{shard.count}\n")
    elif store.fresh:  # state file new, lost or unusable: seen sets back from the raw topic
        _take_over(settings, connector, shard, set(), log)
    progress = _progress_printer(sys.stderr.isatty())
    try:
        if once:
            summary = asyncio.run(connector.run_once(every_feed=every_feed, progress=progress))
        else:
            summary = asyncio.run(
                _forever(
                    connector,
                    progress,
                    settings.connector.metrics_port,
                    settings.connector.metrics_host,
                )
            )
    finally:
        producer.close()
        store.close()
    if as_json:
        typer.echo(json.dumps(summary.as_dict(), ensure_ascii=False))
    else:
        d = summary.as_dict()
        typer.echo(
            f"polled {d['polled']}/{d['feeds_total']} feeds in {d['seconds']}s: "
            + ", ".join(f"{k} {v}" for k, v in sorted(d["results"].items()))
        )
        typer.echo(
            "articles: " + (", ".join(f"{k} {v}" for k, v in sorted(d["articles"].items())) or "0")
        )
        if d["dropped"]:
            typer.echo("items dropped: " + ", ".join(f"{k} {v}" for k, v in d["dropped"].items()))
        for feed_id, error in d["failing_feeds"].items():
            typer.echo(f"failing: {feed_id}: {error}")
    if summary.delivery_failures:
        raise typer.Exit(3)


def _shard(settings: Settings) -> Shard:
    """This connector's replica (connector.replicas / connector.replica / the host name)."""
    import socket

    conf = settings.connector
    try:
        return resolve(conf.replicas, conf.replica, socket.gethostname())
    except ShardingError as exc:
        _err(str(exc))
        raise  # unreachable: _err exits


def _owned(shard: Shard, log: logging.Logger) -> Any:
    """The feed selection of ``shard``, saying at start and on every reload what it owns."""

    def select(flist: FeedList) -> FeedList:
        mine = shard.select(flist)
        log.info("%s", shard.describe(len(mine.feeds), len(flist.feeds)))
        return mine

    return select


def _replicas_marker(state_path: Path) -> Path:
    """Beside a replica's state file: the replica count it last ran with."""
    return state_path.with_name(state_path.name + ".replicas")


def _sharded(base: Path, state_path: Path, shard: Shard, log: logging.Logger) -> bool:
    """Whether feeds can have changed owner for this replica: several replicas now, or at its
    last start. Replica 0 also removes the state files of replicas beyond the count (on one
    machine: after scaling down, their feeds are taken over by the remaining replicas; kept,
    a stale file would be trusted when the count grows again)."""
    marker = _replicas_marker(state_path)
    try:
        previous = int(marker.read_text().strip())
    except (OSError, ValueError):
        previous = 1
    retired = []
    if shard.index == 0:
        ends = {base.suffix + end for end in ("", "-wal", "-shm", ".replicas")}
        for path in sorted(base.parent.glob(f"{base.stem}.replica-*")):
            tail = path.name.removeprefix(f"{base.stem}.replica-")
            number = tail[: len(tail) - len(tail.lstrip("0123456789"))]
            if number and int(number) >= shard.count and tail[len(number) :] in ends:
                path.unlink(missing_ok=True)
                retired.append(path.name)
        if retired:
            log.info("replica %s: removed the state files of retired replicas: %s", shard, retired)
    return shard.count > 1 or previous > 1 or bool(retired)


def _drop_foreign_states(store: Any, shard: Shard, flist: FeedList) -> set[str]:
    """Forget the saved state of listed feeds another replica owns now (the replica count
    changed): this replica's state file holds only its own feeds. Returns the ids of the
    feeds whose state is saved here."""
    saved = store.load_all()
    foreign = [f.id for f in flist.feeds if f.id in saved and not shard.owns(f.id)]
    for feed_id in foreign:
        store.delete(feed_id)
    if foreign:
        logging.getLogger("newsflow.connector").info(
            "replica %s: dropped the state of %d feed(s) now owned by other replicas",
            shard,
            len(foreign),
        )
    return set(saved) - set(foreign)


def _take_over(
    settings: Settings, connector: Any, shard: Shard, saved: set[str], log: logging.Logger
) -> None:
    """Feeds this replica owns but has no state for (new to it: the replica count changed, or
    the feed is new): their seen sets from the raw topic, so they are not produced again."""
    from connectors.handoff import adopt

    # Disabled feeds are never polled, so never saved: not a reason to read the topic each start.
    missing = {f.id for f in connector.feeds.feeds if f.enabled and f.id not in saved}
    if not missing:
        return
    started = time.monotonic()
    taken = adopt(settings, connector.producer.topic, connector.states, missing)
    log.info(
        "replica %s: %d feed(s) without state here; %d of them taken over from the raw topic "
        "(%d record(s) read back in %.1f s)",
        shard,
        len(missing),
        len(taken),
        sum(taken.values()),
        time.monotonic() - started,
    )


async def _forever(connector: Any, progress: Any, port: int, host: str = "127.0.0.1") -> Any:
    from streams.ops import start_ops_server

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    # /metrics, /health/live, /health/ready on NEWSFLOW_CONNECTOR__METRICS_HOST (loopback unless
    # Prometheus scrapes it from another host, as in docker-compose.yml).
    runner = await start_ops_server(connector.health, host, port) if port else None
    logging.getLogger("newsflow.connector").info(
        "connector started at %s", datetime.now(UTC).isoformat()
    )
    try:
        return await connector.run_forever(stop, progress)
    finally:
        if runner is not None:
            await runner.cleanup()
