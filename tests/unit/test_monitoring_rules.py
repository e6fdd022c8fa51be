"""The Prometheus alerting rules (deploy/monitoring/alerts.yml) and the scrape configuration.

With promtool (Debian package ``prometheus``): ``promtool check rules`` on the rules,
``promtool test rules`` on their unit tests (alerts.test.yml: each alert fires on its input
series and stays silent on another), ``promtool check config`` on prometheus.yml, and a mutated
copy of the rules to show that the unit tests catch a broken rule. Outside CI a missing promtool
skips those tests with the reason; with CI=true it fails them.

Without promtool: every alert has ``for``, a severity and the annotations, is tested both ways,
and its PromQL uses only metrics of the catalogue below (names, label names, known label values).
The catalogue is checked against the metrics the code registers (streams.metrics,
connectors.metrics), so a renamed metric breaks this test, not a dashboard in production.
The PromQL reader here is shared with tests/unit/test_grafana_dashboard.py.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args

import pytest
import yaml

from streams.schema import ExtractionStatus
from streams.sinks.elastic import REFUSALS
from streams.stages.extract import FeedResult, HostClass
from tests.conftest import require_tool

ROOT = Path(__file__).resolve().parents[2]
MONITORING = ROOT / "deploy" / "monitoring"
RULES = MONITORING / "alerts.yml"
RULE_TESTS = MONITORING / "alerts.test.yml"
PROMETHEUS_CONFIG = MONITORING / "prometheus.yml"
SEVERITIES = {"critical", "warning", "info"}
SCRAPE_JOBS = {
    "prometheus",
    "newsflow-extract",
    "newsflow-enrich",
    "newsflow-index",
    "newsflow-connector",
}


# --- the metric catalogue --------------------------------------------------------------------


@dataclass(frozen=True)
class Metric:
    kind: str  # counter | gauge | histogram
    labels: frozenset[str]


def _m(kind: str, *labels: str) -> Metric:
    return Metric(kind, frozenset(labels))


CATALOGUE: dict[str, Metric] = {
    "newsflow_articles_total": _m("counter", "stage", "outcome"),
    "newsflow_dead_letters_total": _m("counter", "stage", "error"),
    "newsflow_retries_total": _m("counter", "stage", "reason"),
    "newsflow_batch_seconds": _m("histogram", "stage"),
    "newsflow_feed_polls_total": _m("counter", "feed", "result", "error"),
    "newsflow_feed_status": _m("gauge", "feed", "status"),
    "newsflow_feed_last_success_timestamp_seconds": _m("gauge", "feed"),
    "newsflow_feed_last_new_item_timestamp_seconds": _m("gauge", "feed"),
    "newsflow_feed_consecutive_failures": _m("gauge", "feed"),
    "newsflow_feed_mean_new_gap_seconds": _m("gauge", "feed"),
    "newsflow_feed_fetch_bytes_total": _m("counter", "feed"),
    "newsflow_feed_fetch_seconds": _m("histogram", "result"),
    "newsflow_feed_items_dropped_total": _m("counter", "reason"),
    "newsflow_consumer_lag": _m("gauge", "stage", "topic", "partition"),
    "newsflow_stage_last_progress_timestamp_seconds": _m("gauge", "stage"),
    "newsflow_end_to_end_seconds": _m("histogram"),
    "newsflow_enrich_seconds": _m("histogram", "component", "language"),
    "newsflow_bulk_seconds": _m("histogram"),
    "newsflow_bulk_items_total": _m("counter", "outcome"),
    "newsflow_elastic_writes_refused": _m("gauge", "stage", "reason"),
    "newsflow_ready": _m("gauge", "process"),
    "newsflow_extract_pages_total": _m("counter", "outcome", "host_class"),
    "newsflow_extract_feed_pages_total": _m("counter", "feed", "result"),
    "newsflow_extract_fetch_seconds": _m("histogram", "host_class"),
    "newsflow_extract_text_seconds": _m("histogram"),
    "newsflow_extract_hosts_in_backoff": _m("gauge"),
    "newsflow_auth_failures_total": _m("counter", "dependency", "reason"),
    "newsflow_kafka_brokers": _m("gauge"),
    "newsflow_kafka_under_replicated_partitions": _m("gauge", "topic"),
    "newsflow_kafka_offline_partitions": _m("gauge", "topic"),
    "newsflow_connector_records_held": _m("gauge"),
}
# Labels Prometheus adds to every scraped series: the target's, and `exported_stage` where a
# metric's own `stage` label collides with the jobs' target label `stage`.
TARGET_LABELS = frozenset({"job", "instance", "stage", "exported_stage"})
UP = Metric("gauge", frozenset())
STAGES = {"connector", "extract", "enrich", "index"}
# Known values of enumerated labels: (metric or None for every metric, label) -> values.
LABEL_VALUES: dict[tuple[str | None, str], set[str]] = {
    (None, "stage"): STAGES,
    (None, "exported_stage"): STAGES | {"dead-letters"},  # the index worker's DLQ indexer
    (None, "job"): SCRAPE_JOBS,
    (None, "process"): STAGES,
    (None, "status"): {"ok", "not-modified", "failing", "stale", "dead", "pending"},
    (None, "component"): {"language", "entities"},
    (None, "result"): {"new", "no_new", "not_modified", "unchanged_body", "error"},
    ("newsflow_articles_total", "outcome"): {
        "new",
        "updated",
        "extracted",
        "enriched",
        "indexed",
        "dead_lettered",
    },
    # The extract stage's label values come from the code's own Literal types.
    ("newsflow_extract_pages_total", "outcome"): set(get_args(ExtractionStatus)),
    (None, "host_class"): set(get_args(HostClass)),
    ("newsflow_extract_feed_pages_total", "result"): set(get_args(FeedResult)),
    ("newsflow_bulk_items_total", "outcome"): {"indexed", "retried", "rejected"},
    ("newsflow_elastic_writes_refused", "reason"): set(REFUSALS),
    ("newsflow_auth_failures_total", "dependency"): {"kafka", "elasticsearch"},
    ("newsflow_auth_failures_total", "reason"): {"authentication", "authorization"},
}
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")


def series_metric(name: str) -> tuple[str, Metric] | None:
    """The catalogue entry of a series name (histograms: ``_bucket``/``_sum``/``_count``)."""
    if name == "up":
        return name, UP
    if name in CATALOGUE and CATALOGUE[name].kind != "histogram":
        return name, CATALOGUE[name]
    for suffix in HISTOGRAM_SUFFIXES:
        base = name.removesuffix(suffix)
        if base != name and CATALOGUE.get(base, _m("x")).kind == "histogram":
            labels = CATALOGUE[base].labels | ({"le"} if suffix == "_bucket" else set())
            return base, Metric("histogram", frozenset(labels))
    return None


# --- a small PromQL reader -------------------------------------------------------------------

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<comment>\#[^\n]*)
  | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)
  | (?P<range>\[[^\]]*\])
  | (?P<duration>\d+(?:ms|[smhdwy])(?:\d+(?:ms|[smhdwy]))*\b)
  | (?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|0x[0-9a-fA-F]+)
  | (?P<ident>[A-Za-z_:][A-Za-z0-9_:]*)
  | (?P<var>\$\{?\w+\}?)
  | (?P<punct>=~|!~|!=|==|<=|>=|[-+*/%^<>=(){},])
    """,
    re.VERBOSE,
)
_KEYWORDS = {"and", "or", "unless", "bool", "offset", "inf", "nan", "atan2"}
# Aggregations may be followed by `by (...)`/`without (...)` before their `(`.
_AGGREGATIONS = {
    "sum",
    "min",
    "max",
    "avg",
    "group",
    "stddev",
    "stdvar",
    "count",
    "count_values",
    "bottomk",
    "topk",
    "quantile",
}
_MODIFIERS = {"by", "without", "on", "ignoring", "group_left", "group_right"}
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h"}


@dataclass(frozen=True)
class Selector:
    name: str
    matchers: tuple[tuple[str, str, str], ...]  # (label, op, value)


@dataclass(frozen=True)
class Parsed:
    selectors: tuple[Selector, ...]
    grouping: frozenset[str]  # labels named in by/without/on/ignoring/group_*


def with_grafana_defaults(expr: str) -> str:
    """The expression with Grafana's interval variables replaced by plain durations."""
    for var, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(var, value)
    return expr


def _tokens(expr: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    while pos < len(expr):
        m = _TOKEN.match(expr, pos)
        if m is None:
            raise ValueError(f"cannot read PromQL at {expr[pos : pos + 20]!r} in {expr!r}")
        kind = m.lastgroup or ""
        if kind not in ("ws", "comment"):
            out.append((kind, m.group()))
        pos = m.end()
    return out


def _unquote(token: str) -> str:
    body = token[1:-1]
    return body if token[0] == "`" else re.sub(r"\\(.)", r"\1", body)


def parse_promql(expr: str) -> Parsed:
    """Vector selectors (metric name and label matchers) and grouping labels of ``expr``.

    Not a full parser: enough to say which series and labels an expression reads. Function and
    aggregation names are recognised by the ``(`` that follows them.
    """
    toks = _tokens(with_grafana_defaults(expr))
    selectors: list[Selector] = []
    grouping: set[str] = set()
    i = 0

    def matchers_from(start: int) -> tuple[list[tuple[str, str, str]], int]:
        found = []
        j = start + 1  # after "{"
        while toks[j] != ("punct", "}"):
            if toks[j] == ("punct", ","):
                j += 1
                continue
            label, op, value = toks[j], toks[j + 1], toks[j + 2]
            if label[0] not in ("ident", "string") or op[0] != "punct" or value[0] != "string":
                raise ValueError(f"bad label matcher near {label[1]!r} in {expr!r}")
            name = _unquote(label[1]) if label[0] == "string" else label[1]
            found.append((name, op[1], _unquote(value[1])))
            j += 3
        return found, j + 1

    while i < len(toks):
        kind, text = toks[i]
        nxt = toks[i + 1] if i + 1 < len(toks) else ("", "")
        if kind == "ident" and text.lower() in _MODIFIERS:
            i += 1
            if nxt == ("punct", "("):
                i += 1
                while toks[i] != ("punct", ")"):
                    if toks[i][0] == "ident":
                        grouping.add(toks[i][1])
                    i += 1
                i += 1
            continue
        if kind == "ident" and nxt == ("punct", "("):  # a function or an aggregation
            i += 1
            continue
        if kind == "ident" and (text.lower() in _KEYWORDS or text in _AGGREGATIONS):
            i += 1
            continue
        if kind == "ident":
            found: list[tuple[str, str, str]] = []
            i += 1
            if nxt == ("punct", "{"):
                found, i = matchers_from(i)
            selectors.append(Selector(text, tuple(found)))
            continue
        if (kind, text) == ("punct", "{"):  # a selector by matchers only
            found, i = matchers_from(i)
            names = [v for label, op, v in found if label == "__name__" and op == "="]
            selectors.append(Selector(names[0] if names else "", tuple(found)))
            continue
        i += 1
    return Parsed(tuple(selectors), frozenset(grouping))


def _allowed_values(metric: str, label: str) -> set[str] | None:
    return LABEL_VALUES.get((metric, label), LABEL_VALUES.get((None, label)))


def catalogue_problems(expr: str) -> list[str]:
    """What in ``expr`` is not in the catalogue: unknown series, labels or label values."""
    problems: list[str] = []
    parsed = parse_promql(expr)
    if not parsed.selectors:
        problems.append("reads no series")
    all_labels = set(TARGET_LABELS) | {"le"}
    for metric in CATALOGUE.values():
        all_labels |= metric.labels
    for selector in parsed.selectors:
        entry = series_metric(selector.name)
        if entry is None:
            problems.append(f"unknown metric {selector.name!r}")
            continue
        base, metric = entry
        for label, op, value in selector.matchers:
            if label == "__name__":
                continue
            if label not in metric.labels | TARGET_LABELS:
                problems.append(f"{selector.name} has no label {label!r}")
                continue
            allowed = _allowed_values(base, label)
            if allowed is None or value == "":
                continue
            if op in ("=", "!="):
                values = [value]
            elif re.fullmatch(r"[\w.-]+(\|[\w.-]+)*", value):
                values = value.split("|")
            else:
                continue  # a real regular expression: not checked
            for v in values:
                if v not in allowed:
                    problems.append(f"{selector.name}{{{label}}}: unknown value {v!r}")
    for label in sorted(parsed.grouping - all_labels):
        problems.append(f"grouping by unknown label {label!r}")
    return problems


def test_promql_reader_finds_series_labels_and_grouping() -> None:
    parsed = parse_promql(
        "sum by (stage, error) ("
        '  rate(newsflow_dead_letters_total{stage=~"enrich|index"}[$__rate_interval])'
        ") / on (stage) group_left () sum by (stage) ("
        "  label_replace(rate(newsflow_articles_total[15m]),"
        '  "stage", "$1", "exported_stage", "(.+)")'
        ") > 0.01 and up offset 5m"
        " or histogram_quantile(0.95, sum by (le) (rate(newsflow_bulk_seconds_bucket[5m])))"
    )
    assert [s.name for s in parsed.selectors] == [
        "newsflow_dead_letters_total",
        "newsflow_articles_total",
        "up",
        "newsflow_bulk_seconds_bucket",
    ]
    assert parsed.selectors[0].matchers == (("stage", "=~", "enrich|index"),)
    assert parsed.grouping == {"stage", "error", "le"}
    assert parse_promql('{__name__="up", job="x"}').selectors[0].name == "up"


@pytest.mark.parametrize(
    ("expr", "problem"),
    [
        ("newsflow_article_total", "unknown metric 'newsflow_article_total'"),
        ("newsflow_bulk_seconds", "unknown metric 'newsflow_bulk_seconds'"),  # a histogram
        ("newsflow_ready_bucket", "unknown metric 'newsflow_ready_bucket'"),
        ('newsflow_feed_status{stat="ok"}', "has no label 'stat'"),
        ('newsflow_feed_status{status="gone"}', "unknown value 'gone'"),
        ('newsflow_bulk_items_total{outcome=~"indexed|enriched"}', "unknown value 'enriched'"),
        ("sum by (feeds) (newsflow_feed_status)", "unknown label 'feeds'"),
        ("vector(1)", "reads no series"),
    ],
)
def test_catalogue_check_reports_what_is_wrong(expr: str, problem: str) -> None:
    problems = catalogue_problems(expr)
    assert any(problem in p for p in problems), problems


def test_catalogue_check_accepts_histogram_series_and_target_labels() -> None:
    assert not catalogue_problems(
        "histogram_quantile(0.5, sum by (le, component, language) ("
        '  rate(newsflow_enrich_seconds_bucket{job="newsflow-enrich"}[5m])'
        "))"
        " + newsflow_enrich_seconds_count + newsflow_enrich_seconds_sum"
        ' + up{job=~"newsflow-.+", instance="connector:9465"}'
    )


def test_catalogue_matches_the_registered_metrics() -> None:
    """Every catalogue metric is registered by the code with this type and these labels."""
    from prometheus_client.metrics import MetricWrapperBase

    import connectors.metrics
    import streams.metrics

    registered: dict[str, Metric] = {}
    for module in (streams.metrics, connectors.metrics):
        for value in vars(module).values():
            if isinstance(value, MetricWrapperBase):
                name = value._name + ("_total" if value._type == "counter" else "")
                registered[name] = Metric(str(value._type), frozenset(value._labelnames))
    missing = {name: metric for name, metric in CATALOGUE.items() if name not in registered}
    assert not missing, f"catalogue metrics the code does not register: {sorted(missing)}"
    for name, metric in CATALOGUE.items():
        assert registered[name] == metric, f"{name}: code has {registered[name]}"


# --- the rules without promtool --------------------------------------------------------------


def _load(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def alert_rules() -> list[dict[str, Any]]:
    return [rule for group in _load(RULES)["groups"] for rule in group["rules"] if "alert" in rule]


def test_every_alert_has_for_severity_and_what_to_do() -> None:
    rules = alert_rules()
    names = [rule["alert"] for rule in rules]
    assert len(names) == len(set(names)), "duplicate alert names"
    for rule in rules:
        name = rule["alert"]
        assert name.startswith("Newsflow"), name
        assert re.fullmatch(r"\d+[smh]", str(rule.get("for", ""))), f"{name}: no `for`"
        assert rule.get("labels", {}).get("severity") in SEVERITIES, name
        annotations = rule.get("annotations", {})
        assert set(annotations) >= {"summary", "description"}, name
        assert len(annotations["description"]) > 80, f"{name}: say what to do"


def test_the_alerts_asked_for_exist() -> None:
    names = {rule["alert"] for rule in alert_rules()}
    assert names >= {
        "NewsflowStageStalled",
        "NewsflowDeadLetterRatio",
        "NewsflowFeedStale",
        "NewsflowFeedErrorRatio",
        "NewsflowBulkItemsRejected",
        "NewsflowElasticsearchThrottling",
        "NewsflowConnectorDown",
        "NewsflowWorkerDown",
        "NewsflowFeedDead",
        "NewsflowExtractFeedFailing",
        "NewsflowExtractHostsThrottling",
    }
    exprs = {rule["alert"]: rule["expr"] for rule in alert_rules()}
    assert 'up{job="newsflow-connector"} == 0' in exprs["NewsflowConnectorDown"]
    assert 'newsflow_bulk_items_total{outcome="rejected"}' in exprs["NewsflowBulkItemsRejected"]
    assert (
        "172800" in exprs["NewsflowFeedStale"]
        and "4 * newsflow_feed_mean_new_gap_seconds" in (exprs["NewsflowFeedStale"])
    )
    assert "[1h]" in exprs["NewsflowFeedErrorRatio"]
    jump = exprs["NewsflowExtractFeedFailing"]
    assert "[30m]" in jump and "[1d] offset 30m" in jump and "> 0.5" in jump and "< 0.1" in jump


@pytest.mark.parametrize("rule", alert_rules(), ids=lambda r: r["alert"])
def test_alert_expressions_use_only_catalogue_metrics(rule: dict[str, Any]) -> None:
    assert not catalogue_problems(rule["expr"])


def test_every_alert_is_unit_tested_both_ways() -> None:
    fires: set[str] = set()
    silent: set[str] = set()
    for case in _load(RULE_TESTS)["tests"]:
        for check in case.get("alert_rule_test", []):
            (fires if check.get("exp_alerts") else silent).add(check["alertname"])
    names = {rule["alert"] for rule in alert_rules()}
    assert names - fires == set(), "alerts never shown to fire"
    assert names - silent == set(), "alerts never shown to stay silent"
    assert (fires | silent) <= names, "tests of alerts that do not exist"


def test_rule_test_input_series_are_catalogue_metrics() -> None:
    for case in _load(RULE_TESTS)["tests"]:
        for series in case["input_series"]:
            problems = catalogue_problems(series["series"])
            assert not problems, (case["name"], series["series"], problems)
            parsed = parse_promql(series["series"])
            labels = {label for label, _op, _v in parsed.selectors[0].matchers}
            # Scraped series carry their target labels; the tests should look like them.
            assert {"job", "instance"} <= labels, series["series"]


def test_prometheus_config_loads_the_rules_and_keeps_its_jobs() -> None:
    config = _load(PROMETHEUS_CONFIG)
    assert {job["job_name"] for job in config["scrape_configs"]} == SCRAPE_JOBS
    assert config["rule_files"] == [RULES.name]  # relative: next to prometheus.yml
    assert (PROMETHEUS_CONFIG.parent / config["rule_files"][0]).is_file()


def test_compose_mounts_the_rules_next_to_the_config() -> None:
    prometheus = _load(ROOT / "docker-compose.yml")["services"]["prometheus"]
    mounts = {}
    for volume in prometheus["volumes"]:
        source, _, target = volume.partition(":")
        mounts[source] = target.split(":")[0]
    config_in_container = mounts["./deploy/monitoring/prometheus.yml"]
    assert f"--config.file={config_in_container}" in prometheus["command"]
    rules_in_container = mounts["./deploy/monitoring/alerts.yml"]
    assert Path(rules_in_container).parent == Path(config_in_container).parent
    assert Path(rules_in_container).name == _load(PROMETHEUS_CONFIG)["rule_files"][0]


# --- promtool --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def promtool() -> str:
    return require_tool("promtool")


def run(promtool: str, *args: str, cwd: Path = MONITORING) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool, *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )


def test_promtool_check_rules(promtool: str) -> None:
    result = run(promtool, "check", "rules", RULES.name)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(alert_rules())} rules found" in result.stdout


def test_promtool_rule_unit_tests_pass(promtool: str) -> None:
    result = run(promtool, "test", "rules", RULE_TESTS.name)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_promtool_check_config(promtool: str) -> None:
    result = run(promtool, "check", "config", PROMETHEUS_CONFIG.name)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 rule files found" in result.stdout


# A mutation the unit tests must catch: (alert, the broken text, the test case that catches it).
MUTATIONS = [
    ("NewsflowConnectorDown", ("for: 2m", "for: 30m"), "connector and a worker down"),
    ("NewsflowFeedStale", ("172800", "345600"), "feed stale beyond its rhythm"),
    (
        "NewsflowDeadLetterRatio",  # without label_replace the DLQ indexer dilutes the ratio
        (
            'label_replace(rate(newsflow_articles_total[15m]), "stage", "$1", "exported_stage", '
            '"(.+)")',
            "rate(newsflow_articles_total[15m])",
        ),
        "dead-letter ratio",
    ),
    # Without the stand-in, a feed that never failed before has no baseline and never alerts.
    (
        "NewsflowExtractFeedFailing",
        ("0 * sum by (feed)", "sum by (feed)"),
        "feed extraction failure ratio jumps",
    ),
    # The minimum volume keeps a quiet feed's three failures from alerting.
    ("NewsflowExtractFeedFailing", (">= 5", ">= 1"), "feed extraction failure ratio jumps"),
    ("NewsflowExtractHostsThrottling", (">= 3", ">= 2"), "hosts in backoff now and then"),
    # A broker restart's minutes of under-replication must not page anyone.
    ("NewsflowUnderReplicatedPartitions", ("for: 10m", "for: 1m"), "under-replicated partitions"),
    # A process whose logins never fail must stay silent.
    ("NewsflowKafkaAuthFailure", ("> 0", ">= 0"), "kafka credentials rejected"),
]


@pytest.mark.parametrize(
    ("alert", "change", "case"), MUTATIONS, ids=[f"{m[0]}-{m[1][1]}" for m in MUTATIONS]
)
def test_promtool_unit_tests_catch_a_broken_rule(
    promtool: str, tmp_path: Path, alert: str, change: tuple[str, str], case: str
) -> None:
    groups = _load(RULES)
    (rule,) = [r for g in groups["groups"] for r in g["rules"] if r.get("alert") == alert]
    old, new = change
    key = "for" if old.startswith("for:") else "expr"
    text = f"for: {rule['for']}" if key == "for" else rule["expr"]
    assert old in text, f"{alert}: the mutation no longer applies"
    broken = text.replace(old, new)
    rule[key] = broken.removeprefix("for: ") if key == "for" else broken
    (tmp_path / RULES.name).write_text(yaml.safe_dump(groups, allow_unicode=True))
    tests = _load(RULE_TESTS)
    tests["tests"] = [t for t in tests["tests"] if t["name"] == case]
    assert tests["tests"], f"no test case named {case!r}"
    (tmp_path / RULE_TESTS.name).write_text(yaml.safe_dump(tests, allow_unicode=True))

    assert run(promtool, "check", "rules", RULES.name, cwd=tmp_path).returncode == 0
    result = run(promtool, "test", "rules", RULE_TESTS.name, cwd=tmp_path)
    assert result.returncode != 0, f"the unit tests did not notice the broken {alert}"
    assert f"alertname: {alert}" in result.stdout + result.stderr
