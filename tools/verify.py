#!/usr/bin/env python3
"""Verify the dashboards against the real platform: catalog drift from services' /metrics endpoints
(--metrics-url), and every panel, variable and rule against a Prometheus or Mimir (--prometheus-url).

Usage: python tools/verify.py [--metrics-url URL [URL ...] [--job NAME [NAME ...]]]
       [--prometheus-url URL [--tenant ID] [--bearer-token-env NAME | --basic-auth-env USER_VAR PASS_VAR]
        [--insecure-skip-verify] [--ca-file FILE] [--range 6h] [--end TIME] [--max-queries N] [--concurrency N]
        [--allow-empty FILE]] [--report-md FILE] [--report-json FILE] [--timeout S]      (nox -s verify -- ARGS)

--job: one name for every URL, or one per URL in order; without it the service is recognised from the
catalog metrics it exports. Exit 0: every panel shows data and nothing drifts; 1: drift, an empty panel not
allowed, or a query error; 2: a server or endpoint unusable, a usage, configuration or build error (one line).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
import time
from pathlib import Path

from dashkit.load import load
from dashkit.pipeline import BuildFailed, build
from dashkit.remote import Remote, RemoteError, tls_context
from dashkit.verify import EndpointError, as_json, fetch, markdown, service_metrics, verify
from dashkit.verify_panels import load_allow_empty
from dashkit.verify_run import duration, instant, planned_calls, verify_server

ROOT = Path(__file__).resolve().parent.parent
SERVER_ONLY = ("tenant", "bearer_token_env", "basic_auth_env", "ca_file", "range", "end", "allow_empty")


class Usage(Exception):
    """A usage or configuration error: str() is the one line to print (exit 2)."""


def arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--metrics-url", nargs="+", metavar="URL", help="a service's /metrics")
    parser.add_argument("--job", nargs="+", metavar="NAME", help="the service: one for all URLs, or one per URL")
    server = parser.add_argument_group("a Prometheus or Mimir server")
    server.add_argument("--prometheus-url", metavar="URL", help="API base, e.g. https://mimir.example/prometheus")
    server.add_argument("--tenant", metavar="ID", help="sent as X-Scope-OrgID (Mimir's tenant)")
    auth = server.add_mutually_exclusive_group()
    auth.add_argument("--bearer-token-env", metavar="NAME", help="env var holding a bearer token")
    auth.add_argument("--basic-auth-env", nargs=2, metavar=("USER_VAR", "PASS_VAR"), help="env vars: user, password")
    server.add_argument("--insecure-skip-verify", action="store_true", help="do not verify the TLS certificate")
    server.add_argument("--ca-file", metavar="FILE", help="CA bundle to verify the server's certificate with")
    server.add_argument("--range", metavar="DURATION", help="time range ending at --end (the dashboards' default)")
    server.add_argument("--end", metavar="TIME", help="end of the range: unix seconds or RFC 3339 (default: now)")
    server.add_argument("--max-queries", type=int, default=2000, metavar="N", help="API calls allowed (2000)")
    server.add_argument("--concurrency", type=int, default=4, metavar="N", help="calls in flight at most (4)")
    server.add_argument("--allow-empty", type=Path, metavar="FILE", help="YAML: panels allowed empty, with a reason")
    parser.add_argument("--report-md", type=Path, metavar="FILE", help="write a Markdown report")
    parser.add_argument("--report-json", type=Path, metavar="FILE", help="write a JSON report")
    parser.add_argument("--timeout", type=float, default=10.0, metavar="S", help="seconds per request (10)")
    args = parser.parse_args(argv)
    if not args.metrics_url and not args.prometheus_url:
        parser.error("give --metrics-url, --prometheus-url or both")
    if args.job and not args.metrics_url:
        parser.error("--job goes with --metrics-url")
    if args.job and len(args.job) not in (1, len(args.metrics_url)):
        parser.error(f"--job: give one name, or one per URL ({len(args.metrics_url)})")
    given = [name for name in SERVER_ONLY if getattr(args, name)] + ["insecure_skip_verify"] * args.insecure_skip_verify
    if given and not args.prometheus_url:
        parser.error(f"--{given[0].replace('_', '-')} goes with --prometheus-url")
    if args.prometheus_url and not args.prometheus_url.startswith(("http://", "https://")):
        parser.error("--prometheus-url: an http:// or https:// URL, e.g. https://mimir.example/prometheus")
    if args.timeout <= 0 or args.max_queries < 1 or args.concurrency < 1:
        parser.error("--timeout, --max-queries and --concurrency must be more than 0")
    return args


def secret(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise Usage(
            f"environment variable {name} is {'empty' if value == '' else 'not set'} (named on the command line)"
        )
    return value


def headers(args) -> dict[str, str]:
    """The tenant and auth headers. Secrets come from the environment only, so they are in no shell history,
    process list or report."""
    out = {"X-Scope-OrgID": args.tenant} if args.tenant else {}
    if args.bearer_token_env:
        out["Authorization"] = "Bearer " + secret(args.bearer_token_env)
    elif args.basic_auth_env:
        user, password = (secret(name) for name in args.basic_auth_env)
        out["Authorization"] = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
    return out


def check_endpoints(args, catalog, where) -> list:
    """--metrics-url: each endpoint's drift. EndpointError propagates (one line, exit 2)."""
    services = service_metrics(catalog)
    jobs = (args.job * len(args.metrics_url) if len(args.job) == 1 else args.job) if args.job else []
    for job in dict.fromkeys(jobs):
        if job not in services:
            raise Usage(f"--job {job}: not a service of the catalog ({', '.join(services)})")
    endpoints = []
    for i, url in enumerate(args.metrics_url):
        endpoints.append(verify(url, fetch(url, args.timeout), catalog, where, jobs[i] if jobs else None))
    for e in endpoints:
        lines = e.lines()
        print(f"{e.url}: {e.service or 'service unknown'}: {'no drift' if not lines else f'{len(lines)} finding(s)'}")
        for line in lines:
            print(f"  {line}")
        for note in e.notes:
            print(f"  note: {note}")
    return endpoints


def parsed(option: str, parse, text: str) -> int:
    try:
        return parse(text)
    except ValueError as err:
        raise Usage(f"{option}: {err}") from None


def check_server(args, result, where):
    """--prometheus-url: every panel, variable and rule, and drift. RemoteError propagates (exit 2)."""
    end = parsed("--end", instant, args.end) if args.end else int(time.time())
    # the dashboards' own default range (values/defaults.yaml time.from, now-6h)
    range_seconds = parsed("--range", duration, args.range or result.dashboards[0].json["time"]["from"][4:])
    allowed = {}
    if args.allow_empty:
        allowed, problems = load_allow_empty(args.allow_empty, [d.json for d in result.dashboards])
        if problems:
            raise Usage("\n".join(map(str, problems)))
    needed = planned_calls(result)
    if needed > args.max_queries:
        raise Usage(f"--max-queries {args.max_queries}: this tree needs {needed} API calls; nothing was sent")
    try:
        context = tls_context(args.insecure_skip_verify, args.ca_file)
    except (OSError, ValueError) as err:
        raise Usage(f"--ca-file {args.ca_file}: {getattr(err, 'strerror', None) or err}") from None
    remote = Remote(args.prometheus_url, args.timeout, headers(args), context, args.max_queries)
    verdict = verify_server(result, remote, end, range_seconds, args.concurrency, allowed, where, args.tenant)
    show(verdict)
    return verdict


def show(verdict) -> None:
    t, p = verdict.totals, verdict.totals["panels"]
    print(
        f"{verdict.head['prometheus_url']}: {verdict.head['start']} .. {verdict.head['end']}: panels {p['data']} data, "
        f"{p['empty']} empty, {p['allowed empty']} allowed empty, {p['error']} error, {p['not checked']} not checked "
        f"(LogQL/TraceQL); variables {t['variables']['data']} with values, {t['variables']['empty']} empty; "
        f"{t['drift']} drift finding(s); {t['queries_run']} queries of a budget of {t['budget']}"
    )
    for r in verdict.results:
        if r.status in ("empty", "error", "not run") or r.explained_by:
            why = "; ".join([r.detail] * bool(r.detail) + r.explained_by)
            status = "data, but it reads what drifts" if r.status == "data" else r.status
            print(f"  {r.dashboard} › {r.panel}: {status}" + (f" — {why}" if why else ""))
    for rule in verdict.rules:
        if rule["status"] == "error":
            print(f"  {rule['rule']}: error — {rule['message']}")
    # the same drift on every job (a client library's label names) is one line, with the jobs it is on
    for kind, lines_of in (
        ("drift", lambda d: d["lines"] if d["drift"] else []),
        ("note", lambda d: d.get("notes", [])),
    ):
        sources: dict[str, list[str]] = {}
        for d in verdict.drift:
            for line in lines_of(d):
                sources.setdefault(line, []).append(d.get("service") or d["source"])
        for line, where in sources.items():
            print(f"  {kind}: {line} on {', '.join(where)}")
    for note in verdict.notes:
        print(f"  note: {note}")


def write_reports(args, endpoints, verdict) -> None:
    md = (markdown(endpoints) + "\n" if endpoints else "") + (verdict.markdown() if verdict else "")
    if verdict:
        data = verdict.json() | ({"metrics_endpoints": as_json(endpoints)} if endpoints else {})
    else:
        data = as_json(endpoints)
    for path, text in ((args.report_md, md), (args.report_json, json.dumps(data, indent=2, sort_keys=True) + "\n")):
        if path is None:
            continue
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        except OSError as e:
            raise Usage(f"{path}: {e.strerror or e}") from None


def main(argv: list[str] | None = None) -> int:
    args = arguments(argv)
    try:
        result = build(ROOT)
    except BuildFailed as failed:
        print("\n".join(map(str, failed.problems)), file=sys.stderr)
        return 2
    src = load(ROOT)[0].catalog_src

    def where(*path) -> str:
        at = src.at(*path)
        return f"{at.file}:{at.line}"

    try:
        endpoints = check_endpoints(args, result.catalog, where) if args.metrics_url else []
        verdict = check_server(args, result, where) if args.prometheus_url else None
        write_reports(args, endpoints, verdict)
    except (Usage, EndpointError, RemoteError) as err:
        print(err, file=sys.stderr)
        return 2
    codes = [1 if any(e.drift for e in endpoints) else 0, verdict.code if verdict else 0]
    if verdict and verdict.code == 2:
        print(f"query budget of {args.max_queries} spent: {verdict.totals['queries_not_run']} not run", file=sys.stderr)
    return max(codes)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # Ctrl-C: nothing to clean up, no traceback
        sys.exit(130)
