"""The rule files, proven with the real tool: `promtool check rules`, and `promtool test rules` with a
firing and a quiet case for every alert of every group, and an expected value for every recording rule.

Each alert kind has a scenario below: input series that make it fire and series that keep it quiet. An
alert without a scenario fails the test, so a new alert cannot land untested.
"""

from __future__ import annotations

import shutil
import subprocess

import pytest
import yaml
from conftest import ROOT, expected_alerts

from dashkit.pipeline import build

PROMTOOL = shutil.which("promtool")
pytestmark = pytest.mark.skipif(
    PROMTOOL is None,
    reason="promtool is not on PATH (apt-get install -y --no-install-recommends prometheus); rule files not proven",
)
EVAL = "30m"  # past every `for:` (at most 15m) and the 5m rate windows


def counter(per_minute: float, samples: int = 40) -> str:
    return f"0+{per_minute}x{samples}"


def histogram(job: str, le_values: dict[str, float]) -> list[dict]:
    return [
        {"series": f'http_request_duration_seconds_bucket{{job="{job}", le="{le}"}}', "values": counter(v)}
        for le, v in le_values.items()
    ]


# alert name -> (firing series, quiet series, labels the alert carries besides severity and service,
#                the expected rendered description), per job. {job} is filled in.
def scenarios(job: str, jobs: list[str]) -> dict:
    requests_fire = [
        {"series": f'http_requests_total{{job="{job}", status="500"}}', "values": counter(15)},
        {"series": f'http_requests_total{{job="{job}", status="200"}}', "values": counter(45)},
    ]
    requests_quiet = [
        {"series": f'http_requests_total{{job="{job}", status="500"}}', "values": counter(0)},
        {"series": f'http_requests_total{{job="{job}", status="200"}}', "values": counter(60)},
    ]
    # slow for every service, the LLM Orchestrator's own 10 s / 20 s levels included (values/services/llm-orchestrator.yaml)
    slow = histogram(job, {"0.5": 0, "1": 0, "2.5": 0, "30": 0, "60": 60, "+Inf": 60})
    fast = histogram(job, {"0.5": 60, "1": 60, "2.5": 60, "5": 60, "+Inf": 60})
    instance = {"job": job, "instance": "i-1"}
    return {
        "ServiceDown": (
            [{"series": f'up{{job="{job}", instance="i-1"}}', "values": "0x40"}],
            [{"series": f'up{{job="{job}", instance="i-1"}}', "values": "1x40"}],
            instance,
            f"i-1 of {job} has failed every scrape for 1 minute.",
        ),
        # every group is loaded at once, so every other service keeps its target in both cases
        "TargetMissing": (
            [{"series": f'up{{job="{other}", instance="i-1"}}', "values": "1x40"} for other in jobs if other != job],
            [{"series": f'up{{job="{other}", instance="i-1"}}', "values": "1x40"} for other in jobs],
            {"job": job},
            f"Prometheus has no target for {job}: service discovery lost it, so neither ServiceDown nor any panel can see it.",
        ),
        "HighErrorRate": (
            requests_fire,
            requests_quiet,
            {"job": job},
            f"{job} answered 25% of requests with a 5xx status over 5 minutes.",
        ),
        "ElevatedErrorRate": (
            requests_fire,
            requests_quiet,
            {"job": job},
            f"{job} answered 25% of requests with a 5xx status over 5 minutes.",
        ),
        "HighLatency": (slow, fast, {"job": job}, f"95% of {job} requests took up to 58.5s over 5 minutes."),
        "ElevatedLatency": (slow, fast, {"job": job}, f"95% of {job} requests took up to 58.5s over 5 minutes."),
        "HighCpuUsage": (
            [{"series": f'process_cpu_seconds_total{{job="{job}", instance="i-1"}}', "values": counter(57)}],
            [{"series": f'process_cpu_seconds_total{{job="{job}", instance="i-1"}}', "values": counter(6)}],
            instance,
            f"i-1 of {job} uses 95% of a core.",
        ),
        "HighMemoryUsage": (
            [
                {"series": f'process_resident_memory_bytes{{job="{job}", instance="i-1"}}', "values": "95x40"},
                {"series": f'process_memory_limit_bytes{{job="{job}", instance="i-1"}}', "values": "100x40"},
            ],
            [
                {"series": f'process_resident_memory_bytes{{job="{job}", instance="i-1"}}', "values": "50x40"},
                {"series": f'process_memory_limit_bytes{{job="{job}", instance="i-1"}}', "values": "100x40"},
            ],
            instance,
            f"i-1 of {job} uses 95% of its memory limit.",
        ),
        "CacheHitRateLow": (
            [
                {
                    "series": f'airtable_gateway_cache_hits_total{{job="{job}", cache_type="records"}}',
                    "values": counter(30),
                },
                {
                    "series": f'airtable_gateway_cache_misses_total{{job="{job}", cache_type="records"}}',
                    "values": counter(30),
                },
            ],
            [
                {
                    "series": f'airtable_gateway_cache_hits_total{{job="{job}", cache_type="records"}}',
                    "values": counter(57),
                },
                {
                    "series": f'airtable_gateway_cache_misses_total{{job="{job}", cache_type="records"}}',
                    "values": counter(3),
                },
            ],
            {"job": job},
            f"The cache hit rate of {job} is 50% over 5 minutes.",
        ),
        "AirtableRequestQueueBacklog": (
            [{"series": f'airtable_gateway_request_queue_depth{{job="{job}"}}', "values": "150x40"}],
            [{"series": f'airtable_gateway_request_queue_depth{{job="{job}"}}', "values": "5x40"}],
            {"job": job},
            f"150 requests wait in the {job} queue.",
        ),
        "McpMessageQueueBacklog": (
            [{"series": f'mcp_server_message_queue_depth{{job="{job}"}}', "values": "150x40"}],
            [{"series": f'mcp_server_message_queue_depth{{job="{job}"}}', "values": "5x40"}],
            {"job": job},
            f"150 messages wait in the {job} queue.",
        ),
        "FileQueueBacklog": (
            [{"series": f'automation_services_file_queue_depth{{job="{job}"}}', "values": "150x40"}],
            [{"series": f'automation_services_file_queue_depth{{job="{job}"}}', "values": "5x40"}],
            {"job": job},
            f"150 files wait in the {job} processing queue.",
        ),
        # the first failover creates the series, already at 1 (a client exports a labelled counter from its first increment)
        "PlatformFailover": (
            [{"series": 'failover_events_total{job="chaos", component="postgres"}', "values": "_x20 1x20"}],
            [{"series": 'failover_events_total{job="chaos", component="postgres"}', "values": "0x40"}],
            {"component": "postgres"},
            "postgres failed over about 1 time(s) in the last 15 minutes.",
        ),
    }


@pytest.fixture(scope="module")
def rule_dir(tmp_path_factory):
    """The two ruler files of out/rules/, as recording.rules.yaml and alerts.rules.yaml."""
    result = build(ROOT)
    folder = tmp_path_factory.mktemp("rules")
    for name, rel in (("recording", result.tree.recording_rules), ("alerts", result.tree.ruler_alerts)):
        (folder / f"{name}.rules.yaml").write_text(result.files[rel], encoding="utf-8")
    return folder


def test_promtool_check_rules_passes(rule_dir):
    result = subprocess.run(
        [PROMTOOL, "check", "rules", *sorted(str(p) for p in rule_dir.glob("*.rules.yaml"))],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    for path in rule_dir.glob("*.rules.yaml"):  # every rule of every file, counted from the files themselves
        rules = sum(len(g["rules"]) for g in yaml.safe_load(path.read_text())["groups"])
        assert f"SUCCESS: {rules} rules found" in result.stdout


def alert_tests(rule_dir) -> tuple[list[dict], int]:
    groups = yaml.safe_load((rule_dir / "alerts.rules.yaml").read_text())["groups"]
    prefix = (
        yaml.safe_load((ROOT / "values" / "defaults.yaml").read_text())["uid_prefix"] + "-"
    )  # groups: <uid_prefix>-<service>
    tests, alerts = [], 0
    services = [g["name"].removeprefix(prefix) for g in groups if g["name"] != prefix + "platform"]
    for group in groups:
        service = group["name"].removeprefix(prefix)
        job = service if service != "platform" else "chaos"
        known = scenarios(job, services)
        for rule in group["rules"]:
            alerts += 1
            name = rule["alert"]
            assert name in known, f"alert {name} has no promtool scenario in {__file__}"
            fire, quiet, labels, description = known[name]
            expected = {"severity": rule["labels"]["severity"], "service": service, **labels}
            annotations = dict(rule["annotations"], description=description)
            tests.append(
                {
                    "interval": "1m",
                    "input_series": fire,
                    "alert_rule_test": [
                        {
                            "eval_time": EVAL,
                            "alertname": name,
                            "exp_alerts": [{"exp_labels": expected, "exp_annotations": annotations}],
                        }
                    ],
                }
            )
            tests.append(
                {
                    "interval": "1m",
                    "input_series": quiet,
                    "alert_rule_test": [{"eval_time": EVAL, "alertname": name, "exp_alerts": []}],
                }
            )
    return tests, alerts


def recording_tests(records: set[str]) -> tuple[list[dict], list[str]]:
    """Input series and the value of every recording rule in `records`; the expectations of rules the values no
    longer have (a removed service's) are left out."""
    job = "api-gateway"
    series = [
        {"series": f'http_requests_total{{job="{job}", status="500"}}', "values": counter(15)},
        {"series": f'http_requests_total{{job="{job}", status="200"}}', "values": counter(45)},
        {"series": f'process_cpu_seconds_total{{job="{job}", instance="i-1"}}', "values": counter(30)},
        {"series": f'process_resident_memory_bytes{{job="{job}", instance="i-1"}}', "values": "64x40"},
        {"series": f'process_memory_limit_bytes{{job="{job}", instance="i-1"}}', "values": "256x40"},
        # kube-state-metrics' container limit wins over the process's own gauge (job:memory_limit_bytes:max)
        {
            "series": f'kube_pod_container_resource_limits{{job="kube-state-metrics", container="{job}", pod="p-1", resource="memory", unit="byte"}}',
            "values": "512x40",
        },
        *histogram(job, {"0.5": 60, "1": 60, "+Inf": 60}),
        {
            "series": f'platform_services_db_query_duration_seconds_bucket{{job="{job}", query="select", le="1"}}',
            "values": counter(30),
        },
        {
            "series": f'llm_orchestrator_mcp_call_duration_seconds_bucket{{job="{job}", tool="get_record", le="1"}}',
            "values": counter(15),
        },
        {"series": f'airtable_gateway_api_calls_total{{job="{job}", operation="get_record"}}', "values": counter(60)},
        {
            "series": f'airtable_gateway_api_errors_total{{job="{job}", operation="get_record", error_type="5xx"}}',
            "values": counter(15),
        },
        {
            "series": f'llm_orchestrator_mcp_calls_total{{job="{job}", tool="get_record", status="error"}}',
            "values": counter(30),
        },
        {
            "series": f'automation_services_webhook_requests_total{{job="{job}", source="github", status="success"}}',
            "values": counter(45),
        },
        {
            "series": f'automation_services_scheduled_task_executions_total{{job="{job}", schedule_type="cron", status="success"}}',
            "values": counter(60),
        },
        {
            "series": f'automation_services_workflow_duration_seconds_bucket{{job="{job}", workflow_type="data_sync", le="10"}}',
            "values": counter(30),
        },
    ]
    # Every observation in the first bucket (0, 0.5]: histogram_quantile interpolates to 0.5 * q.
    expected = {
        'job_endpoint_status:http_requests:rate5m{status="500"}': ({"job": job, "status": "500"}, 0.25),
        "job:http_requests:rate5m": ({"job": job}, 1.0),
        "job_operation:airtable_gateway_api_calls:rate5m": ({"job": job, "operation": "get_record"}, 1.0),
        "job_operation_error_type:airtable_gateway_api_errors:rate5m": (
            {"job": job, "operation": "get_record", "error_type": "5xx"},
            0.25,
        ),
        "job_tool_status:llm_orchestrator_mcp_calls:rate5m": (
            {"job": job, "tool": "get_record", "status": "error"},
            0.5,
        ),
        "job_source_status:automation_services_webhook_requests:rate5m": (
            {"job": job, "source": "github", "status": "success"},
            0.75,
        ),
        "job_schedule_type_status:automation_services_scheduled_task_executions:rate5m": (
            {"job": job, "schedule_type": "cron", "status": "success"},
            1.0,
        ),
        'job_workflow_type_le:automation_services_workflow_duration_seconds_bucket:rate5m{le="10"}': (
            {"job": job, "workflow_type": "data_sync", "le": "10"},
            0.5,
        ),
        "job:http_request_errors_per_requests:ratio_rate5m": ({"job": job}, 0.25),
        'job_endpoint_le:http_request_duration_seconds_bucket:rate5m{le="0.5"}': ({"job": job, "le": "0.5"}, 1.0),
        'job_le:http_request_duration_seconds_bucket:rate5m{le="0.5"}': ({"job": job, "le": "0.5"}, 1.0),
        'job_query_le:platform_services_db_query_duration_seconds_bucket:rate5m{le="1"}': (
            {"job": job, "query": "select", "le": "1"},
            0.5,
        ),
        'job_tool_le:llm_orchestrator_mcp_call_duration_seconds_bucket:rate5m{le="1"}': (
            {"job": job, "tool": "get_record", "le": "1"},
            0.25,
        ),
        "job:http_request_duration_seconds:p50_rate5m": ({"job": job}, 0.5 * 0.50),
        "job:http_request_duration_seconds:p95_rate5m": ({"job": job}, 0.5 * 0.95),
        "job:http_request_duration_seconds:p99_rate5m": ({"job": job}, 0.5 * 0.99),
        "instance:process_cpu_seconds:rate5m": ({"job": job, "instance": "i-1"}, 0.5),
        "job:memory_limit_bytes:max": ({"job": job}, 512),
        "instance:process_resident_memory_bytes:ratio": ({"job": job, "instance": "i-1"}, 0.125),
    }
    expected = {expr: want for expr, want in expected.items() if expr.split("{")[0] in records}
    cases = [
        {
            "expr": expr,
            "eval_time": EVAL,
            "exp_samples": [{"labels": _labels(expr.split("{")[0], labels), "value": value}],
        }
        for expr, (labels, value) in expected.items()
    ]
    # An idle service (counters exist, no requests): its error ratio and latency are no sample ("No traffic"), never NaN.
    idle = {
        "interval": "1m",
        "input_series": [
            {"series": 'http_requests_total{job="idle", status="200"}', "values": "5x40"},
            *histogram("idle", {"0.5": 0, "+Inf": 0}),
        ],
        "promql_expr_test": [
            {"expr": 'job:http_request_duration_seconds:p95_rate5m{job="idle"}', "eval_time": EVAL, "exp_samples": []},
            {
                "expr": 'job:http_requests:rate5m{job="idle"}',
                "eval_time": EVAL,
                "exp_samples": [{"labels": 'job:http_requests:rate5m{job="idle"}', "value": 0}],
            },
            {
                "expr": 'job:http_request_errors_per_requests:ratio_rate5m{job="idle"}',
                "eval_time": EVAL,
                "exp_samples": [],
            },
        ],
    }
    return [{"interval": "1m", "input_series": series, "promql_expr_test": cases}, idle], sorted(
        k.split("{")[0] for k in expected
    )


def _labels(name: str, labels: dict) -> str:
    return name + "{" + ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"


def test_every_alert_fires_and_stays_quiet_and_every_recording_rule_computes(rule_dir):
    tests, alerts = alert_tests(rule_dir)
    assert alerts == expected_alerts() and len(tests) == 2 * alerts
    rules = yaml.safe_load((rule_dir / "recording.rules.yaml").read_text())["groups"][0]["rules"]
    recorded, covered = recording_tests({r["record"] for r in rules})
    assert covered == sorted(r["record"] for r in rules), "every recording rule has an expected value"
    spec = {
        "rule_files": [str(rule_dir / "recording.rules.yaml"), str(rule_dir / "alerts.rules.yaml")],
        "evaluation_interval": "1m",
        "tests": tests + recorded,
    }
    test_file = rule_dir / "alerts.test.yaml"
    test_file.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    result = subprocess.run([PROMTOOL, "test", "rules", str(test_file)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, (result.stdout + result.stderr)[-6000:]
    assert "SUCCESS" in result.stdout


def test_memory_limit_comes_from_the_container_first_and_the_process_outside_kubernetes(rule_dir):
    """job:memory_limit_bytes:max: kube-state-metrics, else cAdvisor (whose 0 means no limit), else the
    process_memory_limit_bytes a service outside Kubernetes exports; a job with none of them has no limit."""
    limit = "job:memory_limit_bytes:max"
    series = [
        {
            "series": 'kube_pod_container_resource_limits{job="kube-state-metrics", container="a", resource="memory", unit="byte"}',
            "values": "100x40",
        },
        {"series": 'container_spec_memory_limit_bytes{job="kubelet", container="a", pod="a-1"}', "values": "200x40"},
        {"series": 'container_spec_memory_limit_bytes{job="kubelet", container="b", pod="b-1"}', "values": "0x40"},
        {"series": 'process_memory_limit_bytes{job="b", instance="b:1"}', "values": "300x40"},
        {"series": 'container_spec_memory_limit_bytes{job="kubelet", container="c", pod="c-1"}', "values": "400x40"},
        {"series": 'process_resident_memory_bytes{job="d", instance="d:1"}', "values": "50x40"},
    ]
    expected = [
        {"labels": f'{limit}{{job="{job}"}}', "value": value} for job, value in (("a", 100), ("b", 300), ("c", 400))
    ]
    spec = {
        "rule_files": [str(rule_dir / "recording.rules.yaml")],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": series,
                "promql_expr_test": [
                    {"expr": limit, "eval_time": EVAL, "exp_samples": expected},
                    {
                        "expr": 'instance:process_resident_memory_bytes:ratio{job="d"}',
                        "eval_time": EVAL,
                        "exp_samples": [],
                    },
                ],
            }
        ],
    }
    test_file = rule_dir / "memory-limit.test.yaml"
    test_file.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    result = subprocess.run([PROMTOOL, "test", "rules", str(test_file)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
