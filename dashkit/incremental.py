"""Incremental builds: a rebuild after editing one service file redoes what that file affects, and takes
the rest from the build cache (dashkit/cache.py) and from out/ itself.

A build is cut into parts, each kept under the key of everything it is made from:

- a service: its file's bytes and inputs_key (the code, templates, schemas, the other values files, the
  Python, packages and promtool that run). Its head: its dashboard's hash (the file itself stays in out/
  and is hard-linked into the next tree), its port, what the overview reads of it (title, the levels its
  file changes), and the hashes of its details, kept as blobs: its panels (the panels that show each
  metric, the catalog metrics they show) and its alerts (its rule group in both formats, runbook rows);
- the top: inputs_key and what the overview reads of every service. Kept: the overview's hash, the
  platform's rule group, the recording-rule and provisioning files, the catalog.

Heads live in out/'s index (what each file of out/ holds, by inode, size and time): a part is of use only
while its dashboard is in out/ as written. What is not there is built by the real stages (pipeline.stages:
load, render, assemble, rules, check, promtool) on those service files alone, with the overview as alerts
link to it taken from the cache (its titles and ids depend on the inputs alone); the top is built again
when what it reads of the services changed. Then the whole-tree steps run over every part: the checks
across services (ports, metrics on no panel, rule group names), the two alert files joined from the
groups, the docs (kept under the key of their inputs), the write. Only a build without a problem keeps
anything. At the first problem, or anything the parts cannot decide, this returns None and the whole
build runs without the cache and reports: the cache never changes what a build says or writes.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
from functools import partial
from pathlib import Path
from typing import NamedTuple

from .cache import (
    Parsed,
    Store,
    code_key,
    data_digest,
    digest,
    inputs_key,
    note_folder,
    plain_bytes,
    store_for,
    unchanged_since,
)
from .spill import (
    SpillLost,
    discard_spilled,
    read_spilled_data,
    read_spilled_text,
    spill,
    spill_data,
    spill_folder,
    spill_texts,
    spill_yaml,
)
from .values_files import service_files
from .values_schema import schema_digest
from .workers import LARGE_FLEET, forked_map, processes, siblings_failed
from .write import FILE_MODE, Kept, Spilled, YamlPart, file_id, serialise_yaml, write_output

# Kinds of entries in the cache: the top's part, the overview as alerts link to it, details by their hash
# (read only when a file made from them changes), the generated docs and verdicts by the key of their
# inputs, and what out/ holds (its files, and the heads of the parts that made them: read every build).
TOP, LINKS, BLOB, DOC, OUT = "top", "links", "blob", "doc", "out"
# A part's details, in two blobs by what changes them together: its panels (the panels that show each
# metric, the catalog metrics they show) and its alerts (its rule group in both formats, its runbook rows).
BLOBS = {"panels": ("usage", "used"), "alerts": ("groups", "runbook")}
PLATFORM = "platform"  # the platform alerts' group: a service of that name would share the group's name
INDEX_FORMAT = 1  # out/'s index is the one entry not keyed by the code that wrote it: it says its format


class Written(NamedTuple):
    """What build.py says of a build (pipeline.Build has the same three)."""

    dashboard_count: int
    file_count: int
    panel_count: int
    processes: int = 1  # the processes that built the parts (a large fleet's on every core)


class Part(NamedTuple):
    """A service's or the top's result: its facts (head, with the hash of each detail), its details when
    this build made them, and its dashboard's text when this build made it."""

    head: dict
    detail: dict | None = None
    text: str | Spilled | None = None  # Spilled: written beside out/ by a share of a large build


def build_and_write_incremental(root: Path, out: Path, label: str, store: Store | None = None) -> Written | None:
    """Build and write with the cache (store: .cache/build/ unless given); None when the whole build must run
    (see the module's doc). Raises WriteFailed, or write.OutChanged when out/ changed under the build (the
    caller writes in full)."""
    store = store if store is not None else store_for(root)
    seen: dict = {}  # every input file and folder read for the keys -> its identity then
    schema = schema_digest()  # the values schema every check of this build uses, its forked shares' too
    code = code_key(root, seen)
    code = code and digest(code, schema)
    inputs = inputs_key(root, code, seen) if code is not None else None
    parsed = Parsed(store, code)
    keys, readings = service_keys(root, inputs, parsed, seen) if inputs is not None else (None, None)
    if keys is None:
        return None
    real_out = Path(os.path.realpath(out))
    out_key = digest("out", os.fspath(real_out))
    try:
        return _built_and_written(root, out, real_out, out_key, label, store, seen, inputs, parsed, keys, readings)
    finally:
        # An input saved while the build ran (an editor, `git checkout`) may have been read twice, for the keys
        # and by the stages: whatever this build kept under keys of its inputs goes, however it ended (the parts'
        # and files' entries, and the parsed files', name their own contents). Only a build whose inputs stayed
        # as they were indexes out/.
        if (OUT, out_key) not in store.written and not unchanged_since(seen):
            store.withdraw({TOP, LINKS, DOC})


def _built_and_written(
    root: Path,
    out: Path,
    real_out: Path,
    out_key: str,
    label: str,
    store: Store,
    seen: dict,
    inputs: str,
    parsed: Parsed,
    keys: dict[str, str],
    readings: set[str],
) -> Written | None:
    last = store.get(OUT, out_key)  # what the last build wrote there: its files, its parts' heads
    last = last if isinstance(last, dict) and last.get("format") == INDEX_FORMAT else {}
    index, known = last.get("files", {}), last.get("heads", {})
    cached = {}
    for rel, key in keys.items():
        head = known.get(key)
        if head is not None and keepable(real_out, head, index):
            cached[rel] = head
    with contextlib.ExitStack() as stack:
        # The shares of a large build write their dashboards beside out/ as they make them (write.Spilled).
        parallel = len(keys) - len(cached) >= PARALLEL_FROM and processes() > 1
        spilled = stack.enter_context(spill_folder(real_out)) if parallel else None
        try:
            for _ in range(2):  # a second round builds the parts whose details turned out to be missing
                built = parts_of(root, keys, cached, inputs, store, parsed, real_out, index, spilled)
                if built is None:
                    return None
                parts, top, used = built
                details = Details(store, parts, top)
                try:
                    if not whole_tree_clean(store, inputs, parts, top, details):
                        return None
                    files, identities = out_files(inputs, parts, top, details, real_out, index, spilled)
                    if spilled is not None:
                        discard_spilled(spilled, GROUPS)  # joined (and in a disk cache): the room is the write's
                    docs = generated_docs(root, store, inputs, parts, top, details)
                    break
                except MissingDetails as missing:
                    cached = {rel: head for rel, head in cached.items() if rel not in missing.rels}
            else:
                return None
        except SpillLost:  # a file written beside out/ could not be read back: the whole build runs
            return None
        if not unchanged_since(seen):  # every input is read by now: a tree of two versions is never written
            return None
        written = write_output(out, files, docs, root, label=label)
    panels = sum(head["panel_count"] for head in [*(part.head for part in parts.values()), top.head])
    if not unchanged_since(seen):  # saved during the write: out/ is one version, but not the keys' (above)
        return Written(len(parts) + 1, len(files), panels, used)
    heads = {keys[rel]: part.head for rel, part in parts.items()}
    keep = {TOP: sorted(store.used.get(TOP, ())), LINKS: [inputs], DOC: sorted(store.used.get(DOC, ()))}
    files_index = {rel: [identities[rel], list(written[rel])] for rel in written}
    entry = {"format": INDEX_FORMAT, "files": files_index, "heads": heads, "keep": keep}
    store.put(OUT, out_key, entry, replace=True)
    prune(store, root, parsed, readings, list(heads.values()))
    return Written(len(heads) + 1, len(files), panels, used)


# --- keys -----------------------------------------------------------------------------------------
def service_keys(
    root: Path, inputs: str, parsed: Parsed, seen: dict | None = None
) -> tuple[dict[str, str] | None, set[str]]:
    """(service file -> the key of its part, in the order of a whole build (by name); the keys of these
    files as parsed). None when one is not a plain file: the whole build says what is wrong with it."""
    keys, readings = {}, set()
    if seen is not None:
        note_folder(os.path.join(root, "values", "services"), seen)  # a service file added meanwhile
    for rel in sorted(service_files(root), key=lambda rel: rel[: -len(".yaml")]):
        data = plain_bytes(os.path.join(root, rel), seen)
        if data is None:
            return None, readings
        keys[rel] = digest(inputs, rel, data)
        readings.add(parsed.key("service", rel, data))
    return keys, readings


def top_key(inputs: str, heads: list[dict]) -> str:
    """The overview lists every service and colours each one's series at its own levels; the catalog's
    owners are the services present."""
    return digest(inputs, data_digest([(h["slug"], h["title"], h["levels"]) for h in heads]))


def keepable(out: Path, head: dict, index: dict) -> bool:
    """Whether a part's dashboard is in out/ as this cache last wrote it (so it can be hard-linked anew)."""
    return kept(out, head["path"], head["sha"], index) is not None


def kept(out: Path, rel: str, identity: str, index: dict) -> Kept | None:
    """The file of out/ holding `identity` (a dashboard's hash, a joined file's key), if it is still there as
    written; the write stage checks again under its lock."""
    entry = index.get(rel)
    if entry is None or entry[0] != identity:
        return None
    try:
        info = os.lstat(os.path.join(out, rel))
    except OSError:
        return None
    if file_id(info) != tuple(entry[1]) or not stat.S_ISREG(info.st_mode) or stat.S_IMODE(info.st_mode) != FILE_MODE:
        return None
    return Kept(tuple(entry[1]))


def sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# --- building what is missing ---------------------------------------------------------------------
def parts_of(
    root: Path,
    keys: dict[str, str],
    cached: dict[str, dict],
    inputs: str,
    store: Store,
    parsed: Parsed,
    out: Path,
    index: dict,
    spilled: str | None = None,
) -> tuple[dict[str, Part], Part, int] | None:
    """Every service's part, and the top's: from the cache, or built now (and kept); and how many processes
    built them. None on any problem.

    The services missing are built without the overview when the cache knows it as alerts link to it
    (its titles and ids depend on the inputs alone); the top is built when the services' facts changed.
    With nothing cached, the stages run as in a whole build, on the same files (promtool's verdict on
    them is the same entry of .cache/promtool). With `spilled` (a folder beside out/), services built on
    every core have their dashboard and rule groups there (write.Spilled, spilled_batch), not in memory."""
    fresh, top, used = {}, None, 1
    missing = [rel for rel in keys if rel not in cached]
    if missing:
        built = build_missing(root, missing, cached, parsed, store.get(LINKS, inputs) if cached else None, spilled)
        if built is None:
            return None
        fresh, top, links, used = built
        for part in fresh.values():
            for blob, names in BLOBS.items():
                value = [part.detail[name] for name in names]
                if blob == "alerts" and store.lasting:  # a spilled batch's file is this build's alone
                    value[names.index("groups")] = group_texts(value[names.index("groups")])
                store.put(BLOB, part.head[blob], value)
        if links is not None:
            store.put(LINKS, inputs, links)
    parts = {rel: fresh[rel] if rel in fresh else Part(cached[rel]) for rel in keys}
    key = top_key(inputs, [part.head for part in parts.values()])
    if top is None:
        entry = store.get(TOP, key)
        if entry is not None and keepable(out, entry, index):
            return parts, Part({k: v for k, v in entry.items() if k != "detail"}, entry["detail"]), used
        built = build_parts(root, [], {rel: part.head for rel, part in parts.items()}, parsed, None)
        if built is None:
            return None
        _, top, links = built
        store.put(LINKS, inputs, links)
    store.put(TOP, key, {**top.head, "detail": top.detail})
    return parts, top, used


BATCH = 64  # services a process builds at a time: 1,000 services peak at 90 MiB (32: 87 MiB, 1.07x the time)
PARALLEL_FROM = LARGE_FLEET  # services to build; below this a second process costs more than it saves (measured)


def build_missing(
    root: Path,
    missing: list[str],
    cached: dict[str, dict],
    parsed: Parsed,
    links: dict | None,
    spilled: str | None = None,
) -> tuple[dict[str, Part], Part | None, dict | None, int] | None:
    """build_parts for the services missing, and how many processes built them: many services are built on
    every core, in shares side by side.

    Each process then builds its share with the overview (alerts link to its panels, which depend on the
    inputs alone, so every share links alike), and the top is built afterwards from every service's facts."""
    share = min(processes(), len(missing) // (PARALLEL_FROM // 2))  # a share of 24 services at least
    if len(missing) < PARALLEL_FROM or share < 2:
        built = build_parts(root, missing, cached, parsed, links)
        return None if built is None else (*built, 1)
    chunks = [missing[i::share] for i in range(share)]
    # Shares of more than a batch each, spilled: every share in a process of its own, so that this one, which
    # builds the top and writes, holds none of their working memory. Otherwise it takes the first share: its
    # caches are then warm for the top (~40 ms sooner at 100 services).
    here = spilled is None or len(chunks[0]) <= BATCH
    results = forked_map(partial(_share_of, root, parsed, links, spilled), chunks, here=here)
    if results is None or any(result is None for result in results):
        return None
    fresh = {}
    for batches, _ in results:
        for batch in batches:
            if spilled is not None:
                path, batch = batch, read_spilled_data(batch)
                with contextlib.suppress(OSError):
                    os.unlink(path)  # read: its room on the disk is the write's
            for rel, (head, detail, text) in batch.items():
                fresh[rel] = Part(head, detail, text if spilled is None else Spilled(text))
    return fresh, None, results[0][1], share


def _share_of(
    root: Path, parsed: Parsed, links: dict | None, spilled: str | None, only: list[str]
) -> tuple[list, dict] | None:
    """One process's share of build_missing, as plain data: its parts a batch at a time, and the overview's
    links. Built a batch of services at a time, so what the stages hold of a batch is let go once its parts
    are made; with `spilled`, each batch is written there (spilled_batch) and named, so no process holds more
    than a batch until every share is done."""
    from .check import forget

    batches: list = []
    for start in range(0, len(only), BATCH):
        if siblings_failed():  # another share found a problem: the build runs in one process anyway
            return None
        if start:
            forget()
        built = build_parts(root, only[start : start + BATCH], {}, parsed, links)
        if built is None:
            return None
        parts, _, made = built
        links = links if links is not None else made  # later batches leave the overview out
        if spilled is None:
            batches.append({rel: tuple(part) for rel, part in parts.items()})
            continue
        try:
            batches.append(spilled_batch(spilled, f"{os.getpid()}-{start}", parts))
        except OSError:  # a full disk, say: the whole build runs and says so
            return None
    return batches, links


GROUPS = "groups-"  # the spilled batches' rule groups, by this prefix


def spilled_batch(folder: str, name: str, parts: dict[str, Part]) -> str:
    """A batch's parts written into the spill folder: each dashboard in a file of its own (write.Spilled), the
    batch's rule groups in one file (a part's groups then say where theirs are), the rest as plain data."""
    texts = [text for part in parts.values() for text in part.detail["groups"] or ()]
    places = iter(spill_texts(folder, f"{GROUPS}{name}", texts))
    batch = {}
    for rel, part in parts.items():
        groups = part.detail["groups"] and [next(places) for _ in part.detail["groups"]]
        batch[rel] = (part.head, {**part.detail, "groups": groups}, spill(folder, part.head["path"], part.text))
    return spill_data(folder, f"parts-{name}", batch)


def group_texts(groups: list | None) -> list[str] | None:
    """A part's rule groups (both formats) as text, read back where a spilled batch left them (spilled_batch)."""
    return groups and [group_text(text) for text in groups]


def group_text(group: str | list) -> str:
    """One rule group's text, read back where a spilled batch left it. Raises SpillLost."""
    return group if isinstance(group, str) else read_spilled_text(group)


def build_parts(
    root: Path, only: list[str], cached: dict[str, dict], parsed: Parsed, links: dict | None
) -> tuple[dict[str, Part], Part | None, dict | None] | None:
    """The real stages on the service files `only`, the other services' facts taken from the cache: their
    parts, and with the overview (built unless `links` stands in for it) the top's part and links."""
    from .pipeline import BuildFailed, stages
    from .specs import Elsewhere, Levels

    elsewhere = tuple(
        Elsewhere(h["slug"], h["title"], {name: Levels(*levels) for name, levels in h["levels"].items()})
        for h in cached.values()
    )
    try:
        staged = stages(root, only, elsewhere, overview=standing_in(links), parsed=parsed)
    except BuildFailed:
        return None
    if staged.problems or staged.rules is None:
        return None
    values, rules, tree = staged.values, staged.rules, staged.tree
    # Both rule files list the groups in the order of the alerts: services by name, then the platform.
    names = list(dict.fromkeys(rule.group for rule in rules.alerts))
    groups = {
        name: [str(part) for part in parts]
        for name, *parts in zip(
            names,
            staged.rule_docs[tree.ruler_alerts]["groups"],
            staged.rule_docs[tree.alert_rules]["groups"],
            strict=True,
        )
    }
    alerts: dict[str, list] = {}
    for rule in rules.alerts:
        alerts.setdefault(rule.group, []).append(rule)
    dashboards = {d.src.file: d for d in staged.dashboards}
    fresh = {}
    for spec in values.dashboards:
        if spec.kind == "service":
            facts = {
                "slug": spec.slug,
                "title": spec.title,
                "port": spec.port,
                "levels": {name: list(levels) for name, levels in spec.changed_levels.items()},
            }
            dash = dashboards[spec.src.file]
            fresh[spec.src.file] = made_part(staged, dash, groups.get(spec.job), alerts.get(spec.job, []), facts)
    if sorted(fresh) != sorted(only):  # a service file that is not its service's is a problem, reported above
        return None
    overview = next((d for d in staged.dashboards if d.kind == "overview"), None)
    if overview is None:
        return fresh, None, None
    top = made_part(staged, overview, groups.get(PLATFORM), alerts.get(PLATFORM, []), {})
    grouped = (tree.ruler_alerts, tree.alert_rules)
    top.head.update(
        files={path: staged.files[path] for path in staged.rule_docs if path not in grouped},
        shells={path: {k: [] if k == "groups" else v for k, v in staged.rule_docs[path].items()} for path in grouped},
        metrics=list(values.catalog),
    )
    top.detail.update(catalog=catalog_data(values.catalog), recorded=catalog_data(rules.recorded))
    return fresh, top, overview_links(overview)


def made_part(staged, dash, groups: list[str] | None, alerts: list, facts: dict) -> Part:
    """A part from what the stages made of one dashboard and its alerts' group (None: it has no alerts)."""
    from .check import through_recording_rules
    from .pipeline import panel_count
    from .reference import runbook_rows

    text = staged.files[staged.tree.in_out(dash.path)]
    usage = staged.usages[dash.path]
    used = sorted(through_recording_rules(usage, staged.catalog))
    detail = {"groups": groups, "usage": usage, "runbook": runbook_rows(alerts), "used": used}
    head = {
        **facts,
        "path": staged.tree.in_out(dash.path),
        "sha": sha(text),
        "panel_count": panel_count(dash.json),
        **{blob: data_digest([detail[name] for name in names]) for blob, names in BLOBS.items()},
    }
    return Part(head, detail, text)


def overview_links(overview) -> dict:
    """What alerts read of the overview (dashboard: overview): its place, uid, and panels' titles and ids."""
    from .panels import panels_of

    panels = [[p.get("title"), p.get("id"), p.get("type")] for p in panels_of(overview.json)]
    return {"path": overview.path, "file": overview.src.file, "uid": overview.json["uid"], "panels": panels}


def standing_in(links: dict | None):
    """The overview as far as alerts read it, from overview_links: the overview is then not built again."""
    if links is None:
        return None
    from .assemble import Assembled
    from .problems import Source

    panels = [{"title": title, "id": id_, "type": type_} for title, id_, type_ in links["panels"]]
    return Assembled(
        links["path"], {"uid": links["uid"], "panels": panels}, Source(links["file"], {(): 1}), kind="overview"
    )


def catalog_data(catalog: dict) -> dict:
    """A catalog (specs.MetricSpec by name) as plain data, for the cache."""
    return {name: [*metric[:6], list(metric.synthetic), *metric[7:]] for name, metric in catalog.items()}


def catalog_of(data: dict) -> dict:
    from .specs import MetricSpec, Synthetic

    return {
        name: MetricSpec(*fields[:6], Synthetic(*fields[6]), fields[7], tuple(fields[8]))
        for name, fields in data.items()
    }


class MissingDetails(Exception):
    def __init__(self, rels: list[str]):
        super().__init__(f"{len(rels)} part(s) without details")
        self.rels = rels


class Details:
    """The parts' details, read from the cache only when a joined file or a doc is made anew: most rebuilds
    read none."""

    def __init__(self, store: Store, parts: dict[str, Part], top: Part):
        self.store, self.parts, self.top = store, parts, top
        self.read: dict[str, object] = {}  # by hash: services often share a detail (the rows every one gets)

    def of(self, name: str) -> list:
        """One detail of every service in the order of the build, then the top's. Raises MissingDetails."""
        blob = next(blob for blob, names in BLOBS.items() if name in names)
        at = BLOBS[blob].index(name)
        found, missing = [], []
        for rel, part in self.parts.items():
            if part.detail is not None:
                found.append(part.detail[name])
                continue
            if part.head[blob] not in self.read:
                self.read[part.head[blob]] = self.store.get(BLOB, part.head[blob])
            kept = self.read[part.head[blob]]
            if not isinstance(kept, list) or len(kept) != len(BLOBS[blob]):
                missing.append(rel)
            else:
                found.append(kept[at])
        if missing:
            raise MissingDetails(missing)
        return [*found, self.top.detail[name]]


# --- the whole tree -------------------------------------------------------------------------------
def whole_tree_clean(store: Store, inputs: str, parts: dict[str, Part], top: Part, details: Details) -> bool:
    """The checks a whole build makes across services, on every part: any finding, and the whole build
    runs and reports it in its own words. Raises MissingDetails."""
    heads = [part.head for part in parts.values()]
    ports = [head["port"] for head in heads]
    if len(set(ports)) != len(ports):
        return False
    if any(head["slug"] == PLATFORM for head in heads):  # its rule group would be the platform's: promtool's to say
        return False
    # "in the catalog but on no panel": the verdict is kept under the key of what it reads
    key = digest(inputs, "used", data_digest(top.head["metrics"]), *[head["panels"] for head in [*heads, top.head]])
    if store.get(DOC, key) == "clean":
        return True
    used = set().union(*details.of("used"))
    if not all(name in used for name in top.head["metrics"]):
        return False
    store.put(DOC, key, "clean")
    return True


def out_files(
    inputs: str, parts: dict[str, Part], top: Part, details: Details, out: Path, index: dict, spilled: str | None
) -> tuple[dict, dict[str, str]]:
    """out/'s files (text, Kept: unchanged in out/, or Spilled: written beside it), and what each holds (for
    the next build's Kept). With `spilled`, the joined rule files are written there as they are joined."""
    files: dict = {}
    identities: dict[str, str] = {}

    def place(rel: str, identity: str, text) -> None:
        identities[rel] = identity
        files[rel] = kept(out, rel, identity, index) or (text() if callable(text) else text)

    for part in [*parts.values(), top]:
        place(part.head["path"], part.head["sha"], part.text)  # a cached part's dashboard is always kept
    for rel, text in top.head["files"].items():
        place(rel, sha(text), text)
    hashes = [part.head["alerts"] for part in [*parts.values(), top]]
    for i, (rel, shell) in enumerate(top.head["shells"].items()):  # the Prometheus alert file, Grafana's
        identity = digest(inputs, rel, data_digest(shell), *hashes)  # inputs: the code that joins them too
        place(rel, identity, lambda r=rel, s=shell, i=i: joined(r, s, details, i, spilled))
    return files, identities


def joined(rel: str, shell: dict, details: Details, i: int, spilled: str | None) -> str | Spilled:
    """A rule file from its groups, as serialise_yaml writes the whole document (written out when spilled)."""
    pairs = details.of("groups")

    def groups():
        return (YamlPart(group_text(pair[i])) for pair in pairs if pair is not None)

    if spilled is not None:
        with contextlib.suppress(OSError):  # else made here, and the write says what is wrong (a full disk, say)
            return Spilled(spill_yaml(spilled, rel, shell, "groups", groups()))
    return serialise_yaml({**shell, "groups": list(groups())})


def generated_docs(
    root: Path, store: Store, inputs: str, parts: dict[str, Part], top: Part, details: Details
) -> dict[Path, str]:
    """docs/metrics.md and docs/runbooks.md: kept under the key of what they are made from, else made."""
    from .pipeline import REFERENCE, RUNBOOKS

    heads = [part.head for part in parts.values()] + [top.head]  # services by name, then the top
    reference_key = digest(inputs, REFERENCE, *[head["panels"] for head in heads])
    reference = store.get(DOC, reference_key)
    if reference is None:
        from .check import merge_usage, through_recording_rules
        from .reference import metric_reference

        catalog = catalog_of(top.detail["catalog"])
        usages = details.of("usage")
        usage = merge_usage(usages[-1:] + usages[:-1])  # the overview's first, as a whole build checks it
        recorded = {**catalog, **catalog_of(top.detail["recorded"])}
        reference = metric_reference(catalog, through_recording_rules(usage, recorded)) + "\n"
        store.put(DOC, reference_key, reference)
    runbooks_key = digest(inputs, RUNBOOKS, *[head["alerts"] for head in heads])
    runbooks = store.get(DOC, runbooks_key)
    if runbooks is None:
        from .reference import runbooks_of

        runbooks = runbooks_of([tuple(row) for rows in details.of("runbook") for row in rows])
        store.put(DOC, runbooks_key, runbooks)
    return {root / REFERENCE: reference, root / RUNBOOKS: runbooks}


# --- pruning --------------------------------------------------------------------------------------
def prune(store: Store, root: Path, parsed: Parsed, readings: set[str], heads: list[dict]) -> None:
    """Entries no build reads any more are removed once they outnumber the live ones (a cache that only
    grew would keep every version of every file). Live: what the index of any output folder names (its
    parts' blobs, its top, links and docs) and the values files as they are now, parsed. Cheap to check:
    a listing per kind; a concurrent build that loses an entry only builds it again."""
    current = {BLOB: {head[blob] for head in heads for blob in BLOBS}, Parsed.KIND: readings}
    counts = {kind: len(store.entries(kind)) for kind in (BLOB, Parsed.KIND, TOP, LINKS, DOC)}
    if all(counts[kind] <= 2 * len(current.get(kind, store.used.get(kind, ()))) + SLACK for kind in counts):
        return
    live: dict[str, set[str]] = {kind: set() for kind in counts}
    for name in store.entries(OUT):
        index = store.get(OUT, name)
        if isinstance(index, dict) and index.get("format") == INDEX_FORMAT:
            for head in index.get("heads", {}).values():  # perhaps of another version of the code: .get
                live[BLOB].update(head.get(blob) for blob in BLOBS)
            for kind, keys in index.get("keep", {}).items():
                live.setdefault(kind, set()).update(keys)
    live[Parsed.KIND] = readings | {
        parsed.key(path.stem, f"values/{path.name}", data)
        for path in sorted((Path(root) / "values").glob("*.yaml"))
        if (data := plain_bytes(os.fspath(path))) is not None
    }
    for kind, keys in live.items():
        store.sweep(kind, keys)


SLACK = 64  # entries beyond twice the live ones before a sweep
