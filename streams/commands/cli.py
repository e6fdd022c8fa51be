"""The `newsflow` command: one entry point for every task (infra, bootstrap, demo, schema).

Settings are built here once and passed down.
"""

from __future__ import annotations

import json
import signal
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from streams import topics
from streams.commands.feeds import connect_cmd, feeds_app
from streams.infra.errors import InfraError
from streams.settings import Settings

app = typer.Typer(
    help="newsflow: news feeds -> Kafka -> enrichment -> Elasticsearch.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
infra_app = typer.Typer(
    help="The embedded local stack: real Kafka + Elasticsearch on loopback.", no_args_is_help=True
)
app.add_typer(infra_app, name="infra")
app.add_typer(feeds_app, name="feeds")
app.command("connect")(connect_cmd)


def _say(message: str) -> None:
    typer.echo(message, err=True)


def _fail(exc: Exception) -> None:
    typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
    raise typer.Exit(1)


def _failed(what: str, exc: Exception) -> None:
    """One clear line instead of a traceback for an unexpected error of a command."""
    _fail(RuntimeError(f"{what} failed: {type(exc).__name__}: {exc}"))


StackOpt = Annotated[
    str | None,
    typer.Option(
        "--stack",
        help="Which local stack (default: NEWSFLOW_INFRA__STACK or `default`); another name "
        "keeps its own data, logs and pid files under <home>/run-<stack>.",
    ),
]


def _stack_settings(
    stack: str | None, brokers: int | None = None, secure: bool | None = None
) -> Settings:
    """Settings whose ``infra`` is the chosen stack: command-line options over the
    environment over what the stack recorded at its last `up` over the defaults."""
    from pydantic import ValidationError

    from streams.infra import stack as stacks
    from streams.settings import InfraSettings

    settings = Settings()
    given = settings.infra.model_dump(include=settings.infra.model_fields_set)
    for key, value in (("stack", stack), ("brokers", brokers), ("secure", secure)):
        if value is not None:
            given[key] = value
    try:
        infra = stacks.resolve(InfraSettings.model_validate(given))
    except (ValidationError, InfraError) as exc:
        _fail(exc)
        raise  # unreachable: _fail exits
    return settings.model_copy(update={"infra": infra})


@infra_app.command("up")
def infra_up(
    stack: StackOpt = None,
    brokers: Annotated[
        int | None,
        typer.Option(
            "--brokers",
            min=1,
            max=5,
            help="Kafka brokers (KRaft, each also a controller; default NEWSFLOW_INFRA__BROKERS "
            "or 1). Broker i listens on kafka_port+10*i.",
        ),
    ] = None,
    secure: Annotated[
        bool | None,
        typer.Option(
            "--secure/--no-secure",
            help="Security on: Kafka SASL_SSL (SCRAM-SHA-512), Elasticsearch HTTPS with users; "
            "generated passwords (default NEWSFLOW_INFRA__SECURE or off).",
        ),
    ] = None,
) -> None:
    """Download (once), start and wait for Kafka and Elasticsearch."""
    from streams.infra import stack as stacks

    settings = _stack_settings(stack, brokers, secure)
    started = time.monotonic()
    try:
        stacks.up(settings.infra, _say)
    except InfraError as exc:
        _fail(exc)
    typer.echo(f"local stack up in {time.monotonic() - started:.1f}s")
    _print_status(settings)
    if settings.infra.stack != "default" or settings.infra.secure:
        flag = "" if settings.infra.stack == "default" else f" --stack {settings.infra.stack}"
        typer.echo(f'clients of this stack: eval "$(newsflow infra env{flag})"')


@infra_app.command("down")
def infra_down(stack: StackOpt = None) -> None:
    """Stop exactly the processes `infra up` started (by pid): every broker and Elasticsearch."""
    from streams.infra import stack as stacks

    try:
        stacks.down(_stack_settings(stack).infra, _say)
    except InfraError as exc:
        _fail(exc)


@infra_app.command("status")
def infra_status(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    stack: StackOpt = None,
) -> None:
    """Show what runs where (each broker on its own line); exit 1 if a service is not ready."""
    settings = _stack_settings(stack)
    if not _print_status(settings, as_json):
        raise typer.Exit(1)


def _print_status(settings: Settings, as_json: bool = False) -> bool:
    from streams.infra import elastic
    from streams.infra import stack as stacks

    rows = stacks.status(settings.infra)
    modules_file = elastic.run_dir(settings.infra) / "modules.json"
    modules = json.loads(modules_file.read_text()) if modules_file.is_file() else None
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "stack": settings.infra.stack,
                    "services": [
                        {
                            "name": r.name,
                            "running": r.running,
                            "ready": r.ready,
                            "pid": r.pid,
                            "address": r.address,
                            "log": str(r.log),
                        }
                        for r in rows
                    ],
                    "elasticsearch": modules,
                },
                indent=2,
            )
        )
    else:
        for r in rows:
            state = "ready" if r.ready else ("starting/unhealthy" if r.running else "stopped")
            pid = f"pid {r.pid}" if r.running else "-"
            typer.echo(f"{r.name:<14} {state:<18} {pid:<12} {r.address:<24} log {r.log}")
        if modules:
            typer.echo(
                f"elasticsearch {modules['version'][0]} modules: {', '.join(modules['modules'])}"
            )
    return all(r.ready for r in rows)


@infra_app.command("logs")
def infra_logs(
    service: Annotated[
        str, typer.Argument(help="kafka, kafka-<n> (one of several brokers) or elasticsearch")
    ],
    lines: Annotated[int, typer.Option("-n", "--lines", help="How many lines.")] = 50,
    stack: StackOpt = None,
) -> None:
    """Print the last lines of a service's log."""
    from streams.infra import stack as stacks

    try:
        typer.echo(stacks.logs(_stack_settings(stack).infra, service, lines))
    except InfraError as exc:
        _fail(exc)


@infra_app.command("env")
def infra_env(stack: StackOpt = None) -> None:
    """Print `export NEWSFLOW_...=...` lines pointing newsflow at a stack (brokers, and the
    generated credentials and CA of a secure one): `eval "$(newsflow infra env --stack NAME)"`."""
    import shlex

    from streams.infra import secrets

    infra = _stack_settings(stack).infra
    try:
        env = secrets.client_env(infra)
    except InfraError as exc:
        _fail(exc)
    for key, value in env.items():
        typer.echo(f"export {key}={shlex.quote(value)}")


@infra_app.command("api-key")
def infra_api_key(
    stack: StackOpt = None,
    name: Annotated[str, typer.Option(help="Name of the key (shown by Elasticsearch).")] = (
        "newsflow"
    ),
    expiration: Annotated[
        str | None, typer.Option(help="Lifetime, an Elasticsearch duration (`30d`); none: never.")
    ] = None,
) -> None:
    """Create an Elasticsearch API key on a secure local stack, limited to newsflow's indices
    and templates; prints `export NEWSFLOW_ELASTIC__API_KEY=...` (the key is shown only once)."""
    import shlex

    from streams.infra import elastic

    settings = _stack_settings(stack)
    try:
        key = elastic.create_api_key(settings.infra, settings.elastic, name, expiration)
    except InfraError as exc:
        _fail(exc)
    except OSError as exc:  # unreachable, refused (urllib's HTTPError is an OSError)
        _failed("creating the API key", exc)
    _say(f"API key {key['id']} ({key['name']}) for {settings.elastic.index_prefix}-*")
    typer.echo(f"export NEWSFLOW_ELASTIC__API_KEY={shlex.quote(key['encoded'])}")


@app.command("bootstrap")
def bootstrap_cmd() -> None:
    """Create the Kafka topics and put the Elasticsearch template (idempotent)."""
    from streams.commands.bootstrap import bootstrap

    try:
        bootstrap(Settings(), _say)
    except Exception as exc:  # noqa: BLE001
        _failed("bootstrap", exc)


@app.command("demo")
def demo_cmd(
    smoke: Annotated[
        bool, typer.Option("--smoke", help="Only the seed article, straight through (no workers).")
    ] = False,
    query: Annotated[str, typer.Option(help="--smoke: word to search for.")] = "سوريا",
) -> None:
    """Bundled feeds -> connector -> enrich -> index -> searches (what `make demo` runs)."""
    settings = Settings()
    if smoke:
        _smoke_demo(settings, query)
        return
    from streams.commands import feeds_demo

    try:
        _prepare_run(settings)
        result = feeds_demo.run_demo(settings, _say, Path(".newsflow"))
    except Exception as exc:  # noqa: BLE001
        _failed("demo", exc)
        return
    for line in feeds_demo.render(result):
        typer.echo(line)
    typer.echo(feeds_demo.NEXT_STEPS)
    seed_found = any(h["id"] == feeds_demo.SEED_ID for s in result["searches"] for h in s["hits"])
    if not result["ok"] or not seed_found:
        _fail(RuntimeError("the demo did not end with every article searchable"))


def _smoke_demo(settings: Settings, query: str) -> None:
    from streams.commands import demo

    try:
        result = demo.run(settings, _say, query=query)
    except Exception as exc:  # noqa: BLE001
        _failed("demo", exc)
        return
    typer.echo(
        f"search {result['query']!r} in alias {settings.elastic.alias}: {result['total']} hit(s)"
    )
    for hit in result["hits"]:
        typer.echo(f"  {hit['id']}  [{hit['language']['code']}]  {hit['title']}")
    typer.echo("entities of the seed article:")
    for kind, text in result["entities"]:
        typer.echo(f"  {kind:<4} {text}")
    if not any(h["id"] == result["article_id"] for h in result["hits"]):
        _fail(RuntimeError("the seed article was not found by the search"))
    typer.echo(
        "The local stack keeps running: `newsflow infra status`; stop it with "
        "`newsflow infra down` (or `make down`)."
    )


def _local_stack(settings: Settings) -> bool:
    """Do the settings point at the embedded local stack (so `run` may start it)?"""
    infra = settings.infra
    return settings.kafka.bootstrap_servers == f"{infra.host}:{infra.kafka_port}" and (
        settings.elastic.url.rstrip("/") == f"http://{infra.host}:{infra.es_port}"
    )


def _prepare_run(settings: Settings) -> None:
    from streams.commands import bootstrap
    from streams.infra import stack

    if _local_stack(settings):
        stack.up(settings.infra, _say)
    bootstrap.bootstrap(settings, _say)


@app.command("run")
def run_cmd(
    feeds: Annotated[
        Path | None, typer.Option("--feeds", "-f", help="Feed list, YAML or OPML.")
    ] = None,
    once: Annotated[
        bool,
        typer.Option("--once", help="Poll every feed once, wait until indexed, summarise, exit."),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="--once summary as JSON.")] = False,
    timeout_s: Annotated[
        float, typer.Option(help="--once: how long to wait for the workers.")
    ] = 600,
) -> None:
    """The whole pipeline: local stack (if configured), bootstrap, connector + workers."""
    from streams.commands import run

    settings = Settings()
    feeds_path = feeds or settings.connector.feeds_file
    if not feeds_path.exists():
        _fail(
            FileNotFoundError(
                f"feed list {feeds_path} not found (try --feeds "
                "deploy/feeds/demo.yaml or deploy/feeds/starter.yaml)"
            )
        )
    state_dir = Path(".newsflow")
    try:
        _prepare_run(settings)
    except Exception as exc:  # noqa: BLE001 - one clear line
        _failed("starting the stack", exc)
    if once:
        try:
            result = run.run_once(settings, feeds_path, state_dir, _say, timeout_s)
        except Exception as exc:  # noqa: BLE001
            _failed("run --once", exc)
            return
        if as_json:
            typer.echo(json.dumps(result, ensure_ascii=False))
        else:
            for line in run.render_summary(result):
                typer.echo(line)
        if not result["ok"]:
            raise typer.Exit(1)
        return
    pipe = run.Pipeline(settings, feeds_path, state_dir, _say)
    stopping = {"now": False}

    def stop(_sig: int, _frame: object) -> None:
        stopping["now"] = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    pipe.start_workers()
    pipe.connector(once=False).start()
    _say(
        f"running: connector (metrics :{settings.connector.metrics_port}), enrich worker "
        f"(:{settings.faust.web_port}), index worker (:{settings.faust.web_port + 1}); "
        f"logs in {state_dir / 'logs'}; Ctrl-C stops"
    )
    try:
        pipe.supervise(lambda: stopping["now"])
    finally:
        _say("\nstopping: connector, then workers")
        pipe.stop()


@app.command("status")
def status_cmd(
    as_json: Annotated[bool, typer.Option("--json", help="Everything as one JSON object.")] = False,
    sample_s: Annotated[
        float, typer.Option(help="Seconds between the two throughput scrapes.")
    ] = 2,
) -> None:
    """Processes, topics and lag, stage throughput, dead letters, feeds by health (worst first)."""
    from streams.commands import status

    result = status.collect(Settings(), sample_s)
    if as_json:
        typer.echo(json.dumps(result, ensure_ascii=False, indent=2))
        return
    for line in status.render(result):
        typer.echo(line)


@app.command("enrich")
def enrich_cmd(
    source: Annotated[str, typer.Argument(help="JSON-lines file, or - for stdin")] = "-",
    batch_size: Annotated[int, typer.Option(help="Lines per batch.")] = 256,
) -> None:
    """Enrich JSON lines offline ({id?, title?, text?, language_hint?} -> language + entities)."""
    from streams.enrich.offline import dumps, enrich_lines, read_lines

    settings = Settings()
    try:
        stream = sys.stdin.buffer if source == "-" else open(source, "rb")  # noqa: SIM115
    except OSError as exc:
        _fail(exc)
        return
    done = errors = 0
    started = time.monotonic()
    with stream:
        for record in enrich_lines(read_lines(stream), batch_size, settings.enrich.max_chars):
            sys.stdout.write(dumps(record) + "\n")
            done += 1
            if "error" in record:
                errors += 1
                _say(f"line {record['line']}: {record['error']}")
            if done % 10000 == 0:
                sys.stdout.flush()
                _say(f"{done} lines, {done / (time.monotonic() - started):.0f}/s")
    _say(f"enriched {done - errors} lines, {errors} invalid, in {time.monotonic() - started:.1f}s")
    if errors:
        raise typer.Exit(2)


@app.command("extract")
def extract_cmd(
    source: Annotated[str, typer.Argument(help="HTML file, - for stdin, or an http(s) URL")] = "-",
    url: Annotated[
        str | None, typer.Option("--url", help="The page's URL (resolves relative links).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Metadata and status as JSON.")] = False,
    allow_private: Annotated[
        bool, typer.Option(help="Allow loopback/private addresses (local test servers).")
    ] = False,
) -> None:
    """One HTML page in, its main text (or JSON with metadata and status) out."""
    from streams.extract import extract

    headers: dict[str, str] | None = None
    if source.startswith(("http://", "https://")):
        import asyncio

        # The project's guarded fetcher (SSRF check after DNS, size caps, timeouts, redirects)
        # with the page-fetch limits; one page on demand, so no robots.txt/pacing here.
        from streams.net.fetch import Fetcher
        from streams.net.types import FetchLimits

        conf = Settings().page_fetch
        limits = FetchLimits(
            connect_timeout_s=conf.connect_timeout_s,
            read_timeout_s=conf.read_timeout_s,
            total_timeout_s=conf.total_timeout_s,
            max_compressed_bytes=conf.max_wire_bytes,
            max_body_bytes=conf.max_page_bytes,
            max_redirects=conf.max_redirects,
            retry_after_cap_s=conf.backoff_max_s,
        )

        async def _get() -> Any:
            accept = "text/html,application/xhtml+xml;q=0.9,*/*;q=0.5"
            async with Fetcher(user_agent=conf.user_agent, limits=limits, accept=accept) as f:
                return await f.fetch(source, None, allow_private=allow_private)

        fetched = asyncio.run(_get())
        if fetched.status != "ok":
            _fail(RuntimeError(f"fetch {fetched.error}: {fetched.error_message or ''}"))
        data: bytes = fetched.body or b""
        url = url or fetched.url
        headers = {"Content-Type": fetched.content_type} if fetched.content_type else None
    else:
        try:
            data = sys.stdin.buffer.read() if source == "-" else Path(source).read_bytes()
        except OSError as exc:
            _fail(exc)
            return
    result = extract(data, url, headers)
    if as_json:
        typer.echo(json.dumps(result.to_json(), ensure_ascii=False, indent=2))
    else:
        if result.status != "ok":
            _say(f"status: {result.status} ({result.reason or ''})")
        typer.echo(result.text)
    if result.status not in ("ok",) and not as_json:
        raise typer.Exit(3)


@app.command("worker")
def worker_cmd(
    stage: Annotated[str, typer.Argument(help="a registered stage: enrich, index, ...")],
    loglevel: Annotated[str, typer.Option("--loglevel", "-l")] = "info",
) -> None:
    """Run one registered stage as a faust worker (scale out by starting more processes).

    The stages are listed in streams/stages/registry.py; `index` also runs the dead-letter
    indexer.
    """
    from streams import worker

    settings = Settings()
    if stage not in worker.STAGES:
        _fail(ValueError(f"unknown stage {stage!r}; choose one of {', '.join(worker.STAGES)}"))
    worker.run(settings, stage, loglevel)


@app.command("search")
def search_cmd(
    query: Annotated[str, typer.Argument(help="Words to find (any language).")] = "",
    lang: Annotated[str | None, typer.Option("--lang", help="ISO 639-1 code filter.")] = None,
    entity: Annotated[
        list[str] | None,
        typer.Option("--entity", help="Entity name in any language or spelling (repeatable)."),
    ] = None,
    since: Annotated[str | None, typer.Option(help="e.g. 12h, 7d, 2w or a date.")] = None,
    feed: Annotated[str | None, typer.Option(help="Feed id filter.")] = None,
    size: Annotated[int, typer.Option("-n", "--size", help="Hits to show.")] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="Raw response as JSON.")] = False,
) -> None:
    """Ranked hits with highlights and facet counts, from the read alias."""
    from streams.commands import search
    from streams.sinks.elastic import make_client

    settings = Settings()
    client = make_client(settings.elastic)
    try:
        resp = search.search(
            client,
            settings.elastic,
            query,
            size=size,
            lang=lang,
            entity=entity or (),
            since=since,
            feed=feed,
        )
    except ValueError as exc:
        _fail(exc)
        return
    except Exception as exc:  # noqa: BLE001
        _failed("search", exc)
        return
    finally:
        client.close()
    if as_json:
        typer.echo(json.dumps(resp, ensure_ascii=False, indent=2))
        return
    typer.echo(search.render(resp))


@app.command("reindex")
def reindex_cmd() -> None:
    """Rebuild every article index under the current template and swap the aliases atomically."""
    from streams.commands.reindex import reindex

    try:
        reindex(Settings(), _say)
    except Exception as exc:  # noqa: BLE001
        _failed("reindex", exc)


# The stages that have dead letters to replay, from the stage wiring (topics.STAGES).
REPLAYABLE = [name for name, wiring in topics.STAGES.items() if "dead_letter" in wiring]


@app.command("replay")
def replay_cmd(
    stage: Annotated[
        str,
        typer.Option(
            "--stage", help=f"The stage whose dead letters to re-feed: {', '.join(REPLAYABLE)}."
        ),
    ],
    limit: Annotated[int | None, typer.Option(help="Replay at most this many.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Count, change nothing.")] = False,
) -> None:
    """Re-feed a stage's dead letters into its input topic (after fixing the cause)."""
    from streams.commands.replay import replay

    try:
        replay(Settings(), stage, _say, limit=limit, dry_run=dry_run)
    except ValueError as exc:
        _fail(exc)


@app.command("schema")
def schema_cmd(
    record: Annotated[
        str, typer.Argument(help="Record type: raw-article, article (the public contract), ...")
    ] = "article",
    write: Annotated[
        bool, typer.Option("--write", help="Rewrite every committed schema file.")
    ] = False,
) -> None:
    """Print one record type's JSON Schema (or --write every committed file)."""
    from streams.schema import jsonschema

    if write:
        for written in jsonschema.write_all():
            typer.echo(f"wrote {written}")
    elif record not in jsonschema.RECORDS:
        _fail(ValueError(f"unknown record {record!r}; one of: {', '.join(jsonschema.RECORDS)}"))
    else:
        typer.echo(jsonschema.render(record), nl=False)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
