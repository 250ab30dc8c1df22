"""The build cache (dashkit/cache.py, dashkit/incremental.py) never changes what a build writes or says.

The property: after any sequence of edits to a copy of the project (a service file, the catalog, the
defaults, a panel template; valid or broken), a build with the warm cache and a build with --no-cache
write byte-identical trees and docs, exit alike and print the same lines. Then the cases the property
draws rarely: a corrupt cache, a broken file whose good version is cached, an out/ changed by hand.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parent.parent
SERVICES = sorted(p.name for p in (ROOT / "values" / "services").glob("*.yaml"))
CACHED, PLAIN = "out-cached", "out-plain"


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    """The project's sources, compiled once: each example copies it with its bytecode."""
    base = tmp_path_factory.mktemp("cache") / "base"
    for name in ("values", "templates", "schemas", "dashkit", "docs"):
        shutil.copytree(ROOT / name, base / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy2(ROOT / "build.py", base / "build.py")
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(base / "dashkit")], check=True)
    return base


def run_build(root: Path, out: str, *flags: str) -> tuple[int, str, str]:
    done = subprocess.run(
        [sys.executable, "build.py", "--out", out, *flags], cwd=root, capture_output=True, text=True, timeout=120
    )
    # The output folder's name, and how many processes made it (a build without the cache has a helper,
    # dashkit/helper.py), are the differences the two builds are allowed in what they print.
    stdout = re.sub(r", built in \d+ processes", "", done.stdout)
    return done.returncode, stdout.replace(out, "OUT"), done.stderr.replace(out, "OUT")


def tree(folder: Path) -> dict[str, bytes] | None:
    if not folder.exists():
        return None
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def docs(root: Path) -> dict[str, bytes]:
    return {name: (root / "docs" / name).read_bytes() for name in ("metrics.md", "runbooks.md")}


def both_builds(root: Path) -> tuple:
    """(exit, stdout, stderr, out/, docs) of a build with the cache, then the same of one without it."""
    cached = (*run_build(root, CACHED), tree(root / CACHED), docs(root))
    plain = (*run_build(root, PLAIN, "--no-cache"), tree(root / PLAIN), docs(root))
    return cached, plain


# --- edits ----------------------------------------------------------------------------------------
# Each takes the project and a number that picks what it changes; the original files are under base/.
def _service(root: Path, n: int) -> Path:
    files = sorted((root / "values" / "services").glob("*.yaml"))
    return files[n % len(files)] if files else root / "values" / "services" / SERVICES[0]


def _replace_nth(path: Path, pattern: str, replace, n: int) -> None:
    """Apply replace(match) to the (n mod count)-th match of pattern (multiline), if there is one."""
    if not path.exists():
        return
    text = path.read_text(encoding="utf-8")
    found = list(re.finditer(pattern, text, flags=re.MULTILINE))
    if found:
        m = found[n % len(found)]
        path.write_text(text[: m.start()] + replace(m) + text[m.end() :], encoding="utf-8")


def rename_panel(root: Path, n: int) -> None:
    _replace_nth(_service(root, n), r"^        title: (.*)$", lambda m: f"        title: {m[1]} v{n}", n // 7)


def add_panel(root: Path, n: int) -> None:
    panel = (
        f"      - type: stat\n        title: Added {n}\n        description: A panel added by the cache test.\n"
        '        expr: sum(up{job="$job"})\n        unit: short\n'
    )
    _replace_nth(_service(root, n), r"^    panels:\n", lambda m: m[0] + panel, n // 7)


def change_threshold(root: Path, n: int) -> None:
    new = [f"{{warning: 0.0{n % 9 + 1}, critical: 0.{n % 9 + 1}}}", "error_ratio", "success_ratio", "p95_latency"]
    _replace_nth(_service(root, n), r"^        thresholds: .*$", lambda m: f"        thresholds: {new[n % 4]}", n // 7)


def override_levels(root: Path, n: int) -> None:
    """A service's own levels: they reach its alerts, the runbooks and the overview's series."""
    line = f"thresholds:\n  p95_latency: {{warning: {n % 5 + 1}, critical: {n % 5 + 6}}}\n"
    _replace_nth(_service(root, n), r"^port: .*\n", lambda m: m[0] + line, 0)


def retitle_service(root: Path, n: int) -> None:
    _replace_nth(_service(root, n), r"^title: (.*)$", lambda m: f"title: {m[1]} {n}", 0)


def break_service(root: Path, n: int) -> None:
    path = _service(root, n)
    kind = n % 4
    if kind == 0:
        _replace_nth(path, r"^rows:", lambda m: "bogus_key: 1\nrows:", 0)  # unknown key
    elif kind == 1:
        _replace_nth(path, r'\{job="\$job"\}', lambda m: '{job="$job"', n // 4)  # PromQL that does not parse
    elif kind == 2:
        _replace_nth(path, r"^port: .*$", lambda m: "port: 8000", 0)  # api-gateway's port
    else:
        _replace_nth(path, r"(sum|rate)\((\w+)\{", lambda m: f"{m[1]}({m[2]}x{{", n // 4)  # unknown metric


def add_service(root: Path, n: int) -> None:
    source = _service(root, n)
    if source.exists():
        text = re.sub(r"^service: .*$", f"service: zz-copy-{n}", source.read_text(encoding="utf-8"), flags=re.M)
        text = re.sub(r"^port: .*$", f"port: {30000 + n}", text, flags=re.M)
        (root / "values" / "services" / f"zz-copy-{n}.yaml").write_text(text, encoding="utf-8")


def remove_service(root: Path, n: int) -> None:
    _service(root, n).unlink(missing_ok=True)


def edit_catalog(root: Path, n: int) -> None:
    path = root / "values" / "metrics.yaml"
    if n % 3:
        _replace_nth(path, r"^    help: (.*)$", lambda m: f"    help: {m[1]} ({n})", n // 3)
    else:
        _replace_nth(path, r"^  (\w+):\n    type:", lambda m: f"  {m[1]}_renamed:\n    type:", n // 3)


def edit_defaults(root: Path, n: int) -> None:
    path = root / "values" / "defaults.yaml"
    if n % 3:
        _replace_nth(
            path, r"^  error_ratio: \{.*\}", lambda m: f"  error_ratio: {{warning: 0.0{n % 9 + 1}, critical: 0.5}}", 0
        )
    else:
        _replace_nth(path, r"^thresholds:", lambda m: "unknown_setting: 1\nthresholds:", 0)


def edit_template(root: Path, n: int) -> None:
    path = root / "templates" / "panels" / "stat.jsonnet"
    kind = n % 3
    if kind == 0:
        _replace_nth(path, r"graphMode: '\w+'", lambda m: "graphMode: 'none'", 0)
    elif kind == 1:
        _replace_nth(path, r"^// ", lambda m: f"// (edited {n}) ", 0)
    else:
        _replace_nth(path, r"^\}\s*$", lambda m: "", 0)  # a Jsonnet syntax error


def restore(root: Path, n: int, base: Path) -> None:
    """One edited or removed file back as it was; or an added service removed."""
    changed = [
        rel
        for rel in sorted(
            {p.relative_to(root).as_posix() for p in (root / "values").rglob("*.yaml")}
            | {p.relative_to(base).as_posix() for p in (base / "values").rglob("*.yaml")}
            | {"templates/panels/stat.jsonnet"}
        )
        if not (root / rel).exists()
        or not (base / rel).exists()
        or (root / rel).read_bytes() != (base / rel).read_bytes()
    ]
    if changed:
        rel = changed[n % len(changed)]
        if (base / rel).exists():
            shutil.copy2(base / rel, root / rel)
        else:
            (root / rel).unlink()


EDITS = [
    rename_panel,
    add_panel,
    change_threshold,
    override_levels,
    retitle_service,
    break_service,
    add_service,
    remove_service,
    edit_catalog,
    edit_defaults,
    edit_template,
    restore,
    restore,  # twice as likely: most sequences then return to builds that pass
]


@settings(
    max_examples=int(os.environ.get("CACHE_EXAMPLES", "20")),
    deadline=None,
    derandomize=True,  # the same sequences on every run: a failure is reproducible, the time is bounded
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(st.lists(st.tuples(st.sampled_from(EDITS), st.integers(0, 999)), min_size=1, max_size=5))
def test_a_warm_cache_builds_what_a_build_without_it_builds(base, tmp_path, edits):
    root = tmp_path / f"project-{os.urandom(4).hex()}"
    shutil.copytree(base, root)
    try:
        cached, plain = both_builds(root)  # a cold cache
        assert cached == plain
        assert cached[0] == 0, cached[2]
        for edit, n in edits:
            if edit is restore:
                restore(root, n, base)
            else:
                edit(root, n)
            cached, plain = both_builds(root)
            event(f"{edit.__name__}: exit {plain[0]}")
            assert cached[:3] == plain[:3], f"after {edit.__name__}({n})"
            assert cached[3] == plain[3], f"out/ differs after {edit.__name__}({n})"
            assert cached[4] == plain[4], f"docs differ after {edit.__name__}({n})"
    finally:
        shutil.rmtree(root, ignore_errors=True)


# --- what the property draws rarely ---------------------------------------------------------------
@pytest.fixture
def copy(base, tmp_path) -> Path:
    root = tmp_path / "project"
    shutil.copytree(base, root)
    return root


def inodes(folder: Path) -> dict[str, int]:
    return {p.relative_to(folder).as_posix(): p.stat().st_ino for p in folder.rglob("*.json")}


def test_a_rebuild_carries_unchanged_files_over_and_rewrites_the_edited_one(copy):
    assert run_build(copy, CACHED)[0] == 0
    before = inodes(copy / CACHED)
    add_panel(copy, 0)
    assert run_build(copy, CACHED)[0] == 0
    after = inodes(copy / CACHED)
    changed = {rel for rel in before if before[rel] != after[rel]}
    assert changed == {f"dashboards/pyairtable/services/{SERVICES[0].removesuffix('.yaml')}.json"}
    assert tree(copy / CACHED) == (run_build(copy, PLAIN, "--no-cache"), tree(copy / PLAIN))[1]


def test_corrupt_and_truncated_cache_entries_are_ignored(copy):
    assert run_build(copy, CACHED)[0] == 0
    entries = sorted(p for p in (copy / ".cache" / "build").rglob("*") if p.is_file())
    assert entries
    for i, entry in enumerate(entries):
        data = entry.read_bytes()
        entry.write_bytes(data[: len(data) // 2] if i % 2 else data[:-1] + bytes([data[-1] ^ 0xFF]))
    change_threshold(copy, 3)
    cached, plain = both_builds(copy)
    assert cached == plain and cached[0] == 0, cached[2]


def test_a_broken_file_fails_even_with_its_good_version_cached(copy):
    assert run_build(copy, CACHED)[0] == 0
    good = tree(copy / CACHED)
    path = _service(copy, 1)
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("http_requests_total", "http_request_total", 1), encoding="utf-8")
    code, out, err = run_build(copy, CACHED)
    assert code == 1 and out == ""
    assert re.match(rf"values/services/{path.name}:\d+: .*unknown metric 'http_request_total'", err), err
    assert err.splitlines()[-1] == "build failed: 1 problem(s); OUT left unchanged"
    assert tree(copy / CACHED) == good
    path.write_text(text, encoding="utf-8")  # the good version again: from the cache
    assert run_build(copy, CACHED)[0] == 0 and tree(copy / CACHED) == good


def test_a_file_changed_in_out_by_hand_is_written_again(copy):
    assert run_build(copy, CACHED)[0] == 0
    good = tree(copy / CACHED)
    edited = copy / CACHED / "dashboards" / "pyairtable" / "services" / SERVICES[0].replace(".yaml", ".json")
    edited.write_text("{}\n", encoding="utf-8")  # in place, as an editor may: same inode, another size
    assert run_build(copy, CACHED)[0] == 0
    assert tree(copy / CACHED) == good


def test_an_outgrown_cache_is_pruned_to_what_builds_read(copy):
    assert run_build(copy, CACHED)[0] == 0
    cache = copy / ".cache" / "build"
    in_use = {p.relative_to(cache) for p in cache.rglob("*") if p.is_file()}
    for kind in ("blob", "parsed", "doc"):
        for i in range(300):  # what earlier versions of the files left: no build reads them any more
            (cache / kind / f"{i:064x}").write_bytes(b"old")
    (cache / "blob" / ".new-123-0-abc").write_bytes(b"a killed build's")
    change_threshold(copy, 1)
    assert run_build(copy, CACHED)[0] == 0
    left = {p.relative_to(cache) for p in cache.rglob("*") if p.is_file()}
    old = {f"{i:064x}" for i in range(300)} | {".new-123-0-abc"}
    assert not {p for p in left if p.name in old}
    assert len(left - in_use) < 20, "only the entries the edit made are new"
    before = inodes(copy / CACHED)
    assert run_build(copy, CACHED)[0] == 0 and inodes(copy / CACHED) == before, "still warm"


def test_a_service_named_like_the_platform_group_builds_as_without_the_cache(copy):
    """Its rule group would be named like the platform's, which only the rule files as a whole show."""
    assert run_build(copy, CACHED)[0] == 0
    source = _service(copy, 0).read_text(encoding="utf-8")
    text = re.sub(r"^service: .*$", "service: platform", source, flags=re.M)
    (copy / "values" / "services" / "platform.yaml").write_text(re.sub(r"^port: .*$", "port: 39999", text, flags=re.M))
    cached, plain = both_builds(copy)
    assert cached == plain


def test_a_file_out_changes_under_the_write_is_written_in_full(copy, monkeypatch):
    """The write stage finds a file it was to carry over replaced (as by another build): the build writes
    the whole tree from its own texts instead."""
    import dashkit.write
    from dashkit.pipeline import build_and_write

    out = copy / CACHED
    assert run_build(copy, CACHED)[0] == 0
    change_threshold(copy, 2)

    def no_link(*args, **kwargs):
        raise FileNotFoundError(2, "replaced meanwhile")

    monkeypatch.setattr(dashkit.write.os, "link", no_link)
    build_and_write(copy, out)
    monkeypatch.undo()
    assert run_build(copy, PLAIN, "--no-cache")[0] == 0
    assert tree(out) == tree(copy / PLAIN)


def test_details_gone_from_the_cache_are_made_again_and_the_files_are_the_same(copy):
    """A rebuild that joins the rule files anew reads every service's details from the cache; where they are
    gone (removed by hand, a disk error), the services they belong to are built again in a second round,
    and the files are those of a build without the cache."""
    assert run_build(copy, CACHED)[0] == 0
    blobs = sorted(p for p in (copy / ".cache" / "build" / "blob").rglob("*") if p.is_file())
    assert blobs
    for blob in blobs:
        blob.unlink()
    override_levels(copy, 1)  # the service's alerts change: both rule files are joined again
    cached, plain = both_builds(copy)
    assert cached == plain and cached[0] == 0, cached[2]


def test_a_file_edited_during_a_build_leaves_nothing_in_the_cache_for_its_old_text_edit_simulated(copy, monkeypatch):
    """A service file saved while a build runs (an editor, `git checkout`): the build took its key from the
    text it first read, and may make the part from the text it reads later. Kept under the first text's key,
    that part would come back when the file holds that text again: a broken file would build, with the
    output of a good one. (The edit is simulated at the one instant it matters: just after the keys.)"""
    from dashkit import incremental
    from dashkit.pipeline import build_and_write

    service = _service(copy, 0)
    good = service.read_text(encoding="utf-8")
    break_service(copy, 0)  # an unknown key
    broken = service.read_text(encoding="utf-8")
    taken = incremental.service_keys

    def keys_then_edit(*args):
        keys = taken(*args)
        service.write_text(good, encoding="utf-8")  # saved just after the build took its keys
        return keys

    monkeypatch.setattr(incremental, "service_keys", keys_then_edit)
    build_and_write(copy, copy / CACHED, cache=True)  # it read the good text, so it builds
    monkeypatch.setattr(incremental, "service_keys", taken)
    service.write_text(broken, encoding="utf-8")  # undone: the broken text again
    cached, plain = both_builds(copy)
    assert plain[0] == 1 and "bogus_key" in plain[2], plain[2]
    assert cached[:3] == plain[:3]  # exit status and words (out/ keeps the files of the build during the edit)


# A build during which a file is saved, in a process of its own: the edit lands just after the build took its
# keys, the one instant it matters (an editor or `git checkout` can save at any instant).
DURING = """
import json, shutil, sys
from pathlib import Path
root = Path.cwd()
sys.path.insert(0, str(root))
from dashkit import incremental
from dashkit.pipeline import build_and_write
taken = incremental.service_keys
def keys_then_edit(*args):
    keys = taken(*args)
    edit()
    return keys
incremental.service_keys = keys_then_edit
"""


def during_a_build(root: Path, script: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", DURING + textwrap.dedent(script)], cwd=root, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr


def test_a_schema_saved_during_a_build_leaves_nothing_checked_against_it_edit_simulated(copy):
    """The values schema loosened while a build ran, then restored: no file checked against the loose one is
    taken from the cache as checked against the strict one."""
    assert run_build(copy, CACHED)[0] == 0
    break_service(copy, 0)  # an unknown key
    during_a_build(
        copy,
        """
        schema = root / "schemas" / "values.schema.json"
        strict = schema.read_text()
        def edit():
            loose = json.loads(strict)
            loose["definitions"]["service"]["properties"]["bogus_key"] = {}
            schema.write_text(json.dumps(loose))
        try:
            build_and_write(root, root / "out-cached", cache=True)
        except Exception as failed:  # checked against the schema it read first, the strict one
            print(type(failed).__name__)
        schema.write_text(strict)
        """,
    )
    cached, plain = both_builds(copy)
    assert plain[0] == 1 and "bogus_key" in plain[2], plain[2]
    assert cached[:3] == plain[:3]


def test_a_build_interrupted_after_a_file_was_saved_keeps_nothing_of_it_edit_simulated(copy):
    """The rules saved while a build ran, the build then stopped by Ctrl-C at the write: what it kept of the
    saved text must not come back once the rules hold their first text again."""
    rules = copy / "values" / "rules.yaml"
    first = rules.read_text(encoding="utf-8")
    saved = first.replace("[5m]", "[6m]")
    assert saved != first
    rules.write_text(saved, encoding="utf-8")
    assert run_build(copy, CACHED)[0] == 0  # so that the build below makes everything, its top too
    rules.write_text(first, encoding="utf-8")
    during_a_build(
        copy,
        f"""
        def edit():
            (root / "values" / "rules.yaml").write_text({saved!r})
        def interrupted(*args, **kwargs):
            raise KeyboardInterrupt
        incremental.write_output = interrupted
        try:
            build_and_write(root, root / "out-cached", cache=True)
        except KeyboardInterrupt:
            pass
        """,
    )
    rules.write_text(first, encoding="utf-8")  # the text the keys were taken from
    assert run_build(copy, CACHED)[0] == 0  # every service built: the top is made, but an entry is not replaced
    rename_panel(copy, 1)  # one service built again, the top taken from the cache under the same key
    cached, plain = both_builds(copy)
    assert cached[0] == 0, cached[2]
    assert cached == plain


def test_a_template_created_during_a_build_is_not_taken_for_there_edit_simulated(copy):
    """A panel type whose template is created while a build runs, and removed afterwards: the cache does not
    remember a build that found it."""
    assert run_build(copy, CACHED)[0] == 0
    service = _service(copy, 1)
    text = service.read_text(encoding="utf-8")
    assert "type: stat\n" in text
    service.write_text(text.replace("type: stat\n", "type: stat2\n", 1), encoding="utf-8")
    during_a_build(
        copy,
        """
        def edit():
            shutil.copy(root / "templates/panels/stat.jsonnet", root / "templates/panels/stat2.jsonnet")
        build_and_write(root, root / "out-cached", cache=True)
        """,
    )
    (copy / "templates" / "panels" / "stat2.jsonnet").unlink()
    cached, plain = both_builds(copy)
    assert plain[0] == 1 and "stat2" in plain[2], plain[2]
    assert cached[:3] == plain[:3]


def test_files_an_editor_keeps_beside_the_values_change_nothing(copy):
    """A service file and the defaults open in editors: emacs links `.#name` to nothing while a buffer has
    unsaved changes, vim keeps `.name.swp`. The build neither fails on them (the link was taken for a broken
    service file) nor turns its cache off (a link is no input it can key), and writes what it writes without
    them."""
    assert run_build(copy, PLAIN, "--no-cache")[0] == 0
    service = _service(copy, 0)
    for folder, name in ((service.parent, service.name), (copy / "values", "defaults.yaml")):
        (folder / f".#{name}").symlink_to("someone@host.4242:1700000000")
        (folder / f".{name}.swp").write_bytes(b"b0VIM 9.0")
    assert run_build(copy, CACHED)[0] == 0
    before = inodes(copy / CACHED)
    assert run_build(copy, CACHED)[0] == 0
    assert inodes(copy / CACHED) == before  # every file carried over: the cache was used
    assert tree(copy / CACHED) == tree(copy / PLAIN)
