"""A client for a remote Prometheus HTTP API (Prometheus itself, or Mimir's `/prometheus` API), standard library
only: the same `.query/.query_range/.label_values` as dashkit.live.prometheus.Prometheus, so the live check's
runner asks it unchanged, plus `.metadata()` and `.series()` for catalog drift.

What becomes what (every message is one line `URL: why`, with no secret in it):
- 400/422 with Prometheus's JSON error body: the query's own error, returned as the answer (that panel's error).
- 401/403/404, a refused or reset connection, TLS or DNS failure, a body that is not the API's JSON, a redirect:
  RemoteError at once (a wrong URL, tenant or token: every further call would fail the same way).
- 429, 5xx, a timeout: that call's error answer (a heavy query can time out on its own); MAX_FAILURES of them in
  a row mean the server is in trouble, and the client stops with RemoteError rather than keep asking.
- Past the query budget: an error answer with errorType "budget", nothing sent.
"""

from __future__ import annotations

import http.client
import json
import ssl
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

MAX_FAILURES = 5  # transport failures in a row before the run stops
MAX_BODY = 64 * 1024 * 1024  # bytes of one answer: a series call on a huge fleet must not eat the memory
CHUNK = 256 * 1024
QUERY_ERRORS = {400, 422}  # Prometheus answers a bad or too expensive query with these and a JSON body
FATAL = {401, 403, 404, 405}


class RemoteError(Exception):
    """The server cannot be used: str() is the one line to print."""


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect would carry the Authorization header to wherever it points: refuse it, and say where."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        raise RemoteError(f"{shown(req.full_url)}: redirected ({code}) to {shown(newurl)}: use that URL")


def shown(url: str) -> str:
    """The URL as messages may print it: no user:password@, no query string."""
    parts = urllib.parse.urlsplit(url)
    host = parts.netloc.rsplit("@", 1)[-1]
    return urllib.parse.urlunsplit((parts.scheme, host, parts.path, "", ""))


def tls_context(insecure: bool = False, ca_file: str | None = None) -> ssl.SSLContext:
    """Verification on, the system's CAs (plus ca_file); insecure turns verification off."""
    context = ssl.create_default_context(cafile=ca_file)
    if insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


class Remote:
    def __init__(
        self,
        base_url: str,
        timeout: float = 10.0,
        headers: dict[str, str] | None = None,
        context: ssl.SSLContext | None = None,
        max_queries: int = 2000,
    ):
        self.base = base_url.rstrip("/")
        self.timeout = timeout
        self.headers = {"Accept": "application/json", "User-Agent": "dashkit-verify", **(headers or {})}
        self.secrets = [v for k, v in (headers or {}).items() if k.lower() == "authorization"]
        handlers = [_NoRedirect(), urllib.request.HTTPSHandler(context=context or tls_context())]
        self.opener = urllib.request.build_opener(*handlers)
        self.max_queries = max_queries
        self.used = 0  # calls sent
        self.refused = 0  # calls not sent: the budget was spent
        self.failures = 0  # transport failures in a row
        self.broken: RemoteError | None = None
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return shown(self.base)

    # --- the API ----------------------------------------------------------------------------------------
    def probe(self, at: int) -> None:
        """One `query=1` before anything else: is this a Prometheus API that lets us in? Anything but success,
        a timeout or a 5xx included, is RemoteError: there is no point in asking it hundreds of queries."""
        where = self.url + "/api/v1/query"
        with self.lock:
            self.used += 1
        try:
            answer = self._send("POST", "/api/v1/query", {"query": "1", "time": at})
        except _Transient as err:
            raise RemoteError(f"{where}: {self._clean(str(err))}") from None
        if answer.get("status") != "success":
            raise RemoteError(f"{where}: {self._clean(str(answer.get('error', answer)))}")

    def query(self, expr: str, at: int, stats: bool = False) -> dict:
        return self.call("POST", "/api/v1/query", {"query": expr, "time": at})

    def query_range(self, expr: str, start: int, end: int, step: int, stats: bool = False) -> dict:
        return self.call("POST", "/api/v1/query_range", {"query": expr, "start": start, "end": end, "step": step})

    def label_values(self, label: str, match: str, start: int, end: int) -> dict:
        path = f"/api/v1/label/{urllib.parse.quote(label)}/values"
        return self.call("GET", path, {"match[]": match, "start": start, "end": end})

    def metadata(self) -> dict:
        return self.call("GET", "/api/v1/metadata", {})

    def series(self, match: str, start: int, end: int) -> dict:
        return self.call("POST", "/api/v1/series", {"match[]": match, "start": start, "end": end})

    # --- one call ---------------------------------------------------------------------------------------
    def call(self, method: str, path: str, params: dict) -> dict:
        """The decoded answer (status success or error), or RemoteError when the server cannot be used."""
        with self.lock:
            if self.broken:
                raise self.broken
            if self.used >= self.max_queries:
                self.refused += 1
                return {"status": "error", "errorType": "budget", "error": f"not run: budget of {self.max_queries}"}
            self.used += 1
        where = self.url + path
        try:
            answer = self._send(method, path, params)
        except RemoteError as err:
            self._give_up(err)
            raise
        except _Transient as err:
            return self._failed(f"{where}: {self._clean(str(err))}")
        with self.lock:
            self.failures = 0
        return answer

    def _send(self, method: str, path: str, params: dict) -> dict:
        where = self.url + path
        data = urllib.parse.urlencode(params).encode()
        if method == "GET":
            request = urllib.request.Request(f"{self.base}{path}?{data.decode()}", headers=self.headers)
        else:
            headers = dict(self.headers, **{"Content-Type": "application/x-www-form-urlencoded"})
            request = urllib.request.Request(self.base + path, data=data, headers=headers, method="POST")
        deadline = time.monotonic() + self.timeout
        try:
            with self.opener.open(request, timeout=self.timeout) as response:
                body = _read(response, deadline)
        except urllib.error.HTTPError as err:
            return self._http_error(where, err, deadline)
        except urllib.error.URLError as err:
            if isinstance(err.reason, TimeoutError):
                raise _Transient(f"no answer within {self.timeout:g} s") from None
            raise RemoteError(f"{where}: {self._clean(_reason(err.reason))}") from None
        except TimeoutError:
            raise _Transient(f"no answer within {self.timeout:g} s") from None
        except (ConnectionError, ssl.SSLError) as err:  # refused, reset: the server is not there for us
            raise RemoteError(f"{where}: {self._clean(_reason(err))}") from None
        except http.client.HTTPException as err:  # not HTTP at all, or cut short
            raise RemoteError(f"{where}: not an HTTP answer ({type(err).__name__})") from None
        except OSError as err:  # a malformed answer, a socket error mid-read
            raise _Transient(_reason(err)) from None
        return self._decode(where, body)

    def _http_error(self, where: str, err: urllib.error.HTTPError, deadline: float) -> dict:
        try:
            body = _read(err, deadline)
        except (OSError, _Transient, http.client.HTTPException):
            body = b""
        try:
            decoded = json.loads(body)
        except ValueError:
            decoded = None
        if err.code in QUERY_ERRORS and isinstance(decoded, dict) and decoded.get("status") == "error":
            return decoded
        detail = decoded.get("error") if isinstance(decoded, dict) else body.decode("utf-8", "replace")
        text = f"HTTP {err.code} {err.reason}" + (f": {_first_line(detail)}" if detail and detail.strip() else "")
        if err.code == 404:  # the most common wrong URL: a path too many or too few
            text += " (the API base: a Prometheus's root URL, Mimir's with /prometheus)"
        if err.code in FATAL:
            raise RemoteError(f"{where}: {self._clean(text)}")
        raise _Transient(text)

    def _decode(self, where: str, body: bytes) -> dict:
        try:
            answer = json.loads(body)
        except ValueError:
            raise RemoteError(f"{where}: the answer is not JSON (is this the Prometheus API base URL?)") from None
        if not isinstance(answer, dict) or "status" not in answer:
            raise RemoteError(f"{where}: not a Prometheus API answer (is this the Prometheus API base URL?)")
        return answer

    def _failed(self, message: str) -> dict:
        with self.lock:
            self.failures += 1
            if self.failures >= MAX_FAILURES:
                self.broken = RemoteError(f"{message} ({MAX_FAILURES} calls in a row failed: stopped asking)")
                raise self.broken
        return {"status": "error", "errorType": "transport", "error": message}

    def _give_up(self, err: RemoteError) -> None:
        with self.lock:
            self.broken = self.broken or err

    def _clean(self, text: str) -> str:
        """Never print a secret, even if a server or a library echoes one back."""
        for secret in self.secrets:
            for part in (secret, secret.split(" ", 1)[-1]):
                text = text.replace(part, "***")
        return text


class _Transient(Exception):
    """One call failed (5xx, 429, a timeout): an error answer for that query, unless it keeps happening."""


def _read(response, deadline: float) -> bytes:
    """The whole body, within the call's time and MAX_BODY (a slow trickle must not outlast the timeout)."""
    chunks, size = [], 0
    while True:
        if time.monotonic() > deadline:
            raise TimeoutError
        chunk = response.read(CHUNK)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > MAX_BODY:
            raise _Transient(f"answer larger than {MAX_BODY // 2**20} MiB")
        chunks.append(chunk)


def _reason(reason) -> str:
    if isinstance(reason, ssl.SSLCertVerificationError):
        return f"TLS certificate not trusted ({reason.verify_message}): --ca-file FILE, or --insecure-skip-verify"
    return getattr(reason, "strerror", None) or getattr(reason, "reason", None) or str(reason) or type(reason).__name__


def _first_line(text: str, limit: int = 200) -> str:
    line = str(text).strip().splitlines()[0] if str(text).strip() else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"
