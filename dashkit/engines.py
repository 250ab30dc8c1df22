"""Template engines, chosen by extension: go-jsonnet for `.jsonnet`, Jinja (sandboxed) for `.json.j2`.

Jsonnet is where structure is: a template returns data, so its output is well-formed by construction,
and every built-in template is Jsonnet. Jinja writes text: it is for a panel type that is mostly text
(a user's Markdown panel), and what it writes is parsed and checked as JSON.

Values reach a template only as data: Jsonnet gets them as top-level arguments (JSON, read as data,
never as source), Jinja through `tojson`. User text is never spliced into template source, so `{{`,
`{%` or `|||` in a title stays text.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import orjson

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
ENGINES = {".json.j2": "jinja", ".jsonnet": "jsonnet"}


def panel_templates(panel_dir: Path) -> dict[str, Path]:
    """Panel type -> template file. Files starting with '_' are shared helpers, not panel types."""
    found = {}
    for path in sorted(panel_dir.iterdir()):
        if path.name.startswith("_"):
            continue
        for ext in ENGINES:
            if path.name.endswith(ext):
                found[path.name[: -len(ext)]] = path
    return found


class TemplateError(Exception):
    pass


class Templates:
    """Compiles each template once and renders data through it."""

    def __init__(self, templates_dir: Path = TEMPLATES, helper=None):
        self.dir = templates_dir
        self.helper = helper  # a second process that evaluates a share of a large batch (dashkit/helper.py)
        self.panels = panel_templates(templates_dir / "panels")
        self._jinja_env = None
        self._compiled: dict[Path, object] = {}
        self._memo: dict[tuple, object] = {}

    # --- engines ---------------------------------------------------------------------------------
    def _jinja(self, path: Path):
        if path not in self._compiled:
            if self._jinja_env is None:
                from jinja2 import FileSystemBytecodeCache, FileSystemLoader, StrictUndefined
                from jinja2.sandbox import ImmutableSandboxedEnvironment

                env = ImmutableSandboxedEnvironment(
                    loader=FileSystemLoader(str(self.dir)),
                    bytecode_cache=_bytecode_cache(self.dir, FileSystemBytecodeCache),
                    undefined=StrictUndefined,  # a missing variable is an error, never ""
                    autoescape=False,
                    keep_trailing_newline=True,
                )
                env.filters["tojson"] = _tojson  # orjson: the filter runs ~3,000 times a build
                self._jinja_env = env
            rel = path.relative_to(self.dir).as_posix()
            self._compiled[path] = self._jinja_env.get_template(rel)
        return self._compiled[path]

    def render_file(self, path: Path, **data) -> object:
        """Render one template with data; return the parsed JSON value.

        Templates are pure functions of their data, so equal data renders once: the shared rows appear
        on every service dashboard with identical data ($job stays a Grafana variable)."""
        key = (path, orjson.dumps(data, option=orjson.OPT_SORT_KEYS))
        if key not in self._memo:
            self._memo[key] = orjson.loads(self._render_text(path, data))
        # The same object for equal data: callers copy before they change the top level, and never
        # change what is nested, so a fleet of cloned services shares one rendering of each panel.
        return self._memo[key]

    def render_batch(self, jobs: list[tuple[Path, dict]]) -> list:
        """render_file(path, **data) for every (path, data): each job's value, or the TemplateError it raised.

        Equal jobs render once, and every Jsonnet job not rendered yet goes into ONE go-jsonnet evaluation,
        whatever its template: a separate evaluation costs ~0.75 ms, so the panels of a build are one
        evaluation, not one each. If that evaluation fails, each template's jobs are tried together, and a
        template that still fails renders job by job, so an error names the job that caused it."""
        keys = [(path, orjson.dumps(data, option=orjson.OPT_SORT_KEYS)) for path, data in jobs]
        pending = {
            key: tuple(data)
            for key, (path, data) in zip(keys, jobs, strict=True)
            if path.name.endswith(".jsonnet") and key not in self._memo
        }
        if len(pending) > 1:
            self._memo.update(self._evaluate_together(pending))
        results, failed = [], {}
        for key, (path, data) in zip(keys, jobs, strict=True):
            if key not in self._memo and key not in failed:
                try:
                    self.render_file(path, **data)
                except TemplateError as err:
                    failed[key] = err
            results.append(failed[key] if key in failed else self._memo[key])
        return results

    def _evaluate_together(self, jobs: dict[tuple[Path, bytes], tuple]) -> dict:
        """Jsonnet jobs, (template, JSON of its arguments) -> argument names, in one evaluation: their values
        by job. If it fails, each template's jobs are tried on their own; {} for those that still fail."""
        calls: dict[tuple, int] = {}  # (template, argument names) -> index of its call in the wrapper
        items = []
        for (path, data), names in jobs.items():
            index = calls.setdefault((path, names), len(calls))
            items.append(b"[%d,%s]" % (index, data))
        lambdas = ",\n".join(
            f"function(a) {_import(self.dir, path)}({', '.join(f'{n}=a.{n}' for n in names)})" for path, names in calls
        )
        wrapper = f"local calls = [\n{lambdas}\n];\nfunction(items) [calls[i[0]](i[1]) for i in std.parseJson(items)]\n"
        try:
            return dict(zip(jobs, self._evaluate_items(wrapper, items), strict=True))
        except RuntimeError:
            if len(calls) == 1:
                return {}
            groups: dict[tuple, dict] = {}
            for (path, data), names in jobs.items():
                groups.setdefault((path, names), {})[path, data] = names
            return {
                k: v for group in groups.values() if len(group) > 1 for k, v in self._evaluate_together(group).items()
            }

    def _evaluate_items(self, wrapper: str, items: list[bytes]) -> list:
        """The wrapper's values for items (JSON texts), in order. With a helper, every HELPER_SHARE-th item is
        evaluated there while this process evaluates the rest: each item's value depends on that item alone,
        so the values are the same either way. A share the helper cannot give is evaluated here."""
        if self.helper is None or self.helper.failed or len(items) < SPLIT_FROM:
            return self._evaluate(wrapper, items=_array(items))
        to_helper = [HELPER_SHARE[i % len(HELPER_SHARE)] == "h" for i in range(len(items))]
        theirs = [item for item, there in zip(items, to_helper, strict=True) if there]
        mine = [item for item, there in zip(items, to_helper, strict=True) if not there]
        reply = self.helper.evaluate(
            str(self.dir / "<batch>"), wrapper, {"items": _array(theirs).decode("utf-8")}, [str(self.dir)]
        )
        try:
            own = iter(self._evaluate(wrapper, items=_array(mine)))
        except RuntimeError:
            reply()  # taken all the same: the helper's replies come in order
            raise
        text = reply()
        given = orjson.loads(text) if text is not None else None
        if not isinstance(given, list) or len(given) != len(theirs):
            given = self._evaluate(wrapper, items=_array(theirs))
        given = iter(given)
        return [next(given) if there else next(own) for there in to_helper]

    def _evaluate(self, wrapper: str, **arguments: bytes) -> object:
        """A wrapper snippet given JSON texts as string arguments, which it reads with std.parseJson: Go's
        JSON reader, several times faster than Jsonnet's parser (as tla_codes they took a third of the
        evaluation). Values stay data either way. Imports resolve inside the templates folder."""
        texts = {name: value.decode("utf-8") for name, value in arguments.items()}
        return orjson.loads(evaluate_text(str(self.dir / "<batch>"), wrapper, texts, [str(self.dir)]))

    def render_many(self, path: Path, key: str, items: list, **shared) -> list:
        """render_file(path, key=item, **shared) for every item; a Jsonnet template is evaluated once for
        all of them, `shared` passed once (1,000 dashboard frames and their defaults). On an error each
        item is rendered alone, so the error names the item that caused it."""
        if not path.name.endswith(".jsonnet") or len(items) < 2:
            return [self.render_file(path, **{key: item}, **shared) for item in items]
        arguments = ", ".join([f"{key}=item"] + [f"{name}=s.{name}" for name in sorted(shared)])
        wrapper = (
            f"local template = {_import(self.dir, path)};\n"
            f"function(items, shared) local s = std.parseJson(shared); [template({arguments}) for item in std.parseJson(items)]\n"
        )
        try:
            return self._evaluate(
                wrapper, items=orjson.dumps(items), shared=orjson.dumps(shared, option=orjson.OPT_SORT_KEYS)
            )
        except RuntimeError:
            return [self.render_file(path, **{key: item}, **shared) for item in items]

    def _render_text(self, path: Path, data: dict) -> str:
        rel = path.relative_to(self.dir.parent).as_posix()  # as the user sees it: templates/...
        if path.name.endswith(".json.j2"):  # text: parsed here, so a broken one names its output line
            from jinja2 import TemplateError as JinjaError

            try:
                text = self._jinja(path).render(**data)
            except (JinjaError, TypeError) as err:
                line = getattr(err, "lineno", None) or _template_line(err, path)
                raise TemplateError(f"{rel}{':' + str(line) if line else ''}: {err}") from err
            try:
                json.loads(text)
            except json.JSONDecodeError as err:
                raise TemplateError(f"{rel} produced invalid JSON at output line {err.lineno}: {err.msg}") from err
            return text
        import _gojsonnet

        if path not in self._compiled:
            self._compiled[path] = path.read_text(encoding="utf-8")
        try:
            text = _gojsonnet.evaluate_snippet(
                str(path),
                self._compiled[path],
                tla_codes={k: json.dumps(v) for k, v in data.items()},  # JSON is Jsonnet: data, not source
                jpathdir=[str(self.dir)],
            )
        except RuntimeError as err:
            raise TemplateError(f"{rel}: {str(err).strip().splitlines()[0]}") from err
        return text


SPLIT_FROM = 32  # items of a batch from which a share goes to the helper (7 dashboards' panels: ~140)
# Two items of every five to the helper: its go-jsonnet starts colder, and took ~1.5x as long for the same items.
HELPER_SHARE = "-h-h-"


def _array(items: list[bytes]) -> bytes:
    return b"[" + b",".join(items) + b"]"


def evaluate_text(name: str, source: str, tla_vars: dict[str, str], jpathdir: list[str]) -> str:
    """go-jsonnet on a snippet with string arguments: its output, JSON text. Raises RuntimeError."""
    import _gojsonnet

    return _gojsonnet.evaluate_snippet(name, source, tla_vars=tla_vars, jpathdir=jpathdir)


def warm_up_jsonnet() -> None:
    """Load go-jsonnet and run one trivial evaluation: its first evaluation in a process costs ~5 ms more
    than the next (the Go runtime's set-up). For a process that would otherwise wait (a build whose values
    files are read ahead); a process that loaded it forks no more (dashkit/workers.py)."""
    evaluate_text("<warm-up>", "{}", {}, [])


def _import(templates_dir: Path, path: Path) -> str:
    """A Jsonnet import of a template, by its path inside the templates folder (a JSON string is a Jsonnet one)."""
    return f"(import {json.dumps(path.relative_to(templates_dir).as_posix())})"


def _tojson(value) -> str:
    """Jinja's tojson, minus HTML escaping (the output is JSON, never HTML), via orjson for speed.
    An undefined variable raises Jinja's own error (with the template line), never a TypeError."""
    fail = getattr(value, "_fail_with_undefined_error", None)
    if fail is not None:
        fail()
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode("utf-8")


def _template_line(err: Exception, path: Path) -> int | None:
    """Jinja rewrites tracebacks to template lines; take the deepest frame in this template."""
    import traceback

    frames = [f for f in traceback.extract_tb(err.__traceback__) if f.filename and Path(f.filename).name == path.name]
    return frames[-1].lineno if frames else None


def _bytecode_cache(templates_dir: Path, cache_class):
    """Compiled templates are cached by Jinja keyed on their source checksum: compiling was a third of
    the build's time. The folder is keyed on this file too, because compiled code bakes in how filters
    are called. Without a writable cache folder the build simply compiles every time."""
    import hashlib

    engine = hashlib.sha1(Path(__file__).read_bytes()).hexdigest()[:12]
    folder = templates_dir.parent / ".cache" / "jinja" / engine
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return cache_class(str(folder)) if os.access(folder, os.W_OK) else None
