"""Safe YAML loading that remembers the line of every key and item, and rejects duplicate keys.

Limits, each reported as one line: nesting at most MAX_DEPTH deep (libyaml's composer recurses in C and
crashes the interpreter on a deep enough document), aliases may add at most MAX_ALIAS_VALUES values (a
"billion laughs" document expands exponentially), integers fit in 64 bits, numbers are finite.

YAML 1.1 policy: PyYAML implements YAML 1.1, which silently turns `010` into 8, `12:30` into 750,
`yes`/`off` into booleans and `2024-01-01` into a date. Where a plain (unquoted) scalar would be read
differently by YAML 1.2, the build refuses it and says how to write it: the number plainly, or the text
quoted. Dates and binary scalars are refused: no values field holds one.
"""

from __future__ import annotations

import math
import re

import yaml

from .problems import Problem, Source, Where, excerpt

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
MAX_DEPTH = 64
MAX_ALIAS_VALUES = 100_000
STR, INT, FLOAT, BOOL, NULL = (f"tag:yaml.org,2002:{t}" for t in ("str", "int", "float", "bool", "null"))
MERGE, VALUE = "tag:yaml.org,2002:merge", "tag:yaml.org,2002:value"
SCALAR_TAGS = {STR, INT, FLOAT, BOOL, NULL, MERGE, VALUE}
# Plain scalars that YAML 1.2's core schema reads the same way PyYAML's YAML 1.1 does.
CORE_INT = re.compile(r"[-+]?[0-9]+|0x[0-9a-fA-F]+")
CORE_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?|[-+]?\.(inf|Inf|INF)|\.(nan|NaN|NAN)")
CORE_BOOL = re.compile(r"true|True|TRUE|false|False|FALSE")
OCTAL_LIKE = re.compile(r"[-+]?0[0-9]+")  # 1.1 reads 010 as octal 8; 1.2 (and people) as 10


class _TooLarge(Exception):
    def __init__(self, problem: Problem):
        self.problem = problem


def load_yaml(text: str, file: str) -> tuple[object, Source, list[Problem]]:
    """Parse one document. Returns (data, source, problems); data is None when unparsable.

    Most documents are parsed once, their nesting checked as they are built; one with anchors or merge
    keys, long enough to crash the composer, or that the single pass cannot judge as counting would (an
    error, a part it does not enter), is first counted from libyaml's events, as it always was."""
    if not (_may_alias(text) or _may_crash_composer(text)):
        try:
            return _load(text, file, _Limits(None))
        except _Unusual:
            pass
    lines: dict[tuple, int] = {(): 1}
    try:
        limits = _Limits(_count_nodes(text, file) + MAX_ALIAS_VALUES)
    except _TooLarge as err:
        return None, Source(file, lines), [err.problem]
    return _load(text, file, limits)


def _load(text: str, file: str, limits: _Limits) -> tuple[object, Source, list[Problem]]:
    lines: dict[tuple, int] = {(): 1}
    problems: list[Problem] = []
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return {}, Source(file, lines), problems
        data = _build(loader, node, (), lines, problems, file, limits)
    except _TooLarge as err:
        return None, Source(file, lines), [err.problem]
    except yaml.YAMLError as err:
        if not limits.counted:
            raise _Unusual from err  # nesting too deep before the error is reported instead
        problems.append(_yaml_error(err, file))
        return None, Source(file, lines), problems
    finally:
        loader.dispose()
    return data, Source(file, lines), problems


def _yaml_error(err: yaml.YAMLError, file: str) -> Problem:
    if isinstance(err, yaml.MarkedYAMLError):
        mark = err.problem_mark or err.context_mark
        line = mark.line + 1 if mark else 1
        what = err.problem or err.context or "invalid YAML"
        return Problem(Where(file, line, ()), f"YAML syntax error: {what}")
    # a tag PyYAML refuses to construct safely, and the like
    return Problem(
        Where(file, 1, ()), f"YAML error: {excerpt(str(err).splitlines()[0] if str(err) else type(err).__name__, 120)}"
    )


# An anchor (`&name`) or a merge key (`<<`) written anywhere; text that only looks like one costs the count.
_ANCHOR_OR_MERGE = re.compile(r"&[^\s\[\]{},]|<<")
# libyaml's composer recurses in C, ~340 bytes of stack a level (8 MiB crashed at ~23,000 levels). Every
# collection starts with one of these characters, so their number bounds the nesting.
_COLLECTION_STARTS = "[{-:?"
COMPOSER_SAFE = 4_000


def _may_alias(text: str) -> bool:
    """Only aliases and merges build more values than a document writes: only they need its node count."""
    return _ANCHOR_OR_MERGE.search(text) is not None


def _may_crash_composer(text: str) -> bool:
    return sum(map(text.count, _COLLECTION_STARTS)) > COMPOSER_SAFE


class _Unusual(Exception):
    """The single pass met what only the event count judges exactly: nesting past MAX_DEPTH (reported at
    the first such collection written), a merge key, an error, or a part it did not enter."""


class _Limits:
    """What _build enforces as it goes. Counted, every value built spends one of a budget (the nodes
    written plus MAX_ALIAS_VALUES), so aliases cannot expand the document without bound. Uncounted, the
    document has no anchors: _build meets its nodes once each in the order written, a key path's length
    is the nesting depth, and anything else sends the document back to be counted."""

    def __init__(self, budget: int | None):
        self.budget = budget
        self.counted = budget is not None

    def enter(self, node, path: tuple, file: str) -> None:
        """One value built; for a collection, one level deeper."""
        if self.counted:
            _spend(self, node, file)
        elif len(path) >= MAX_DEPTH and not isinstance(node, yaml.ScalarNode):
            raise _Unusual

    def skip(self) -> None:
        """A collection refused without entering it, or a merge key: its nodes were not met one by one."""
        if not self.counted:
            raise _Unusual


def _count_nodes(text: str, file: str) -> int:
    """Nodes written in the document, from libyaml's event stream (a state machine, no recursion): refuses
    nesting past MAX_DEPTH before the recursive composer sees it. A syntax error is left to the real parse."""
    depth = count = 0
    try:
        for event in yaml.parse(text, Loader=_Loader):
            if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
                depth += 1
                if depth > MAX_DEPTH:
                    line = event.start_mark.line + 1
                    raise _TooLarge(Problem(Where(file, line, ()), f"YAML nested more than {MAX_DEPTH} levels deep"))
            elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
                depth -= 1
            count += isinstance(
                event, (yaml.ScalarEvent, yaml.AliasEvent, yaml.MappingStartEvent, yaml.SequenceStartEvent)
            )
    except yaml.YAMLError:
        pass
    return count


PLAIN_TAGS = {"tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"}


def _spend(limits: _Limits, node, file: str, n: int = 1) -> None:
    limits.budget -= n
    if limits.budget < 0:
        raise _TooLarge(
            Problem(
                Where(file, node.start_mark.line + 1, ()),
                f"aliases expand this document by more than {MAX_ALIAS_VALUES:,} values (an alias bomb?)",
            )
        )


def _merged_size(node, memo: dict) -> int:
    """How many pairs a mapping holds once its `<<` merges are flattened (PyYAML builds those lists eagerly,
    so a doubling chain of merges must be measured before it is flattened)."""
    if id(node) in memo:
        return memo[id(node)]
    memo[id(node)] = 0  # a merge cycle counts as nothing rather than recursing forever
    size = 0
    for key, value in node.value:
        if key.tag == MERGE:
            parts = value.value if isinstance(value, yaml.SequenceNode) else [value]
            size += sum(_merged_size(p, memo) for p in parts if isinstance(p, yaml.MappingNode))
        else:
            size += 1
    memo[id(node)] = size
    return size


def _build(loader, node, path, lines, problems, file, limits):
    lines[path] = node.start_mark.line + 1
    limits.enter(node, path, file)
    if isinstance(node, yaml.ScalarNode):
        return _scalar(loader, node, path, problems, file)
    if node.tag not in PLAIN_TAGS:
        # Collections are built here, not by PyYAML, so refuse their tags explicitly (e.g. !!python/...).
        limits.skip()
        problems.append(
            Problem(Where(file, lines[path], path), f"unsupported YAML: tag '{excerpt(node.tag, 80)}' is not allowed")
        )
        return None
    if isinstance(node, yaml.MappingNode):
        if any(key.tag == MERGE for key, _ in node.value):
            limits.skip()
            _spend(limits, node, file, _merged_size(node, {}))
        loader.flatten_mapping(node)  # resolves `<<` merge keys the way PyYAML does
        out = {}
        for key_node, value_node in node.value:
            key = _scalar(loader, key_node, path, problems, file) if isinstance(key_node, yaml.ScalarNode) else None
            if not isinstance(key, (str, int, float, bool)) or key is None:
                limits.skip()
                if isinstance(key_node, yaml.ScalarNode) and key is None and key_node.tag != NULL:
                    continue  # the key itself was refused, with its own message
                problems.append(
                    Problem(Where(file, key_node.start_mark.line + 1, path), "mapping keys must be plain text")
                )
                continue
            key = str(key) if not isinstance(key, str) else key
            child = path + (key,)
            if key in out:
                limits.skip()
                problems.append(
                    Problem(
                        Where(file, key_node.start_mark.line + 1, child),
                        f"duplicate key (first defined on line {lines[child]})",
                    )
                )
                continue
            lines[child] = key_node.start_mark.line + 1
            out[key] = _build(loader, value_node, child, lines, problems, file, limits)
            lines[child] = key_node.start_mark.line + 1  # the key's line, not its value's
        return out
    return [_build(loader, item, path + (i,), lines, problems, file, limits) for i, item in enumerate(node.value)]


def _scalar(loader, node, path, problems, file):
    """One scalar, refused (None, with a problem) where YAML 1.1 would change what was written."""
    if node.tag == STR:  # most scalars: PyYAML's constructor would return the text as it is
        return node.value
    where = Where(file, node.start_mark.line + 1, path)
    if node.tag not in SCALAR_TAGS:
        if node.tag.endswith(":timestamp"):  # no values field holds a date; text that looks like one is quoted
            problems.append(
                Problem(where, f"{excerpt(node.value)} is read by YAML as a date: quote it if text is meant")
            )
        else:
            problems.append(Problem(where, f"unsupported YAML: tag '{excerpt(node.tag, 80)}' is not allowed"))
        return None
    try:
        value = loader.construct_object(node, deep=True)
    except yaml.constructor.ConstructorError as err:
        problems.append(Problem(where, f"unsupported YAML: {excerpt(err.problem or 'cannot be read', 120)}"))
        return None
    message = _yaml11_problem(node, value)
    if message:
        problems.append(Problem(where, message))
        return None
    return value


def _yaml11_problem(node, value) -> str | None:
    text = node.value
    if isinstance(value, bool):
        if not node.style and not CORE_BOOL.fullmatch(text):
            return f"{excerpt(text)} is read by YAML 1.1 as {str(value).lower()}: write {str(value).lower()}, or quote '{excerpt(text)}' if text is meant"
        return None
    if isinstance(value, int):
        if not -(2**63) <= value < 2**64:
            return f"integer {excerpt(text)} does not fit in 64 bits"
        if (
            not node.style
            and node.tag == INT
            and (not CORE_INT.fullmatch(text) or (OCTAL_LIKE.fullmatch(text) and text.lstrip("+-") != "0"))
        ):
            return (
                f"{excerpt(text)} is read by YAML 1.1 as the number {value}: write the number without leading zeros, colons "
                f"or underscores, or quote '{excerpt(text)}' if text is meant"
            )
        return None
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return f"{excerpt(text)} is not a finite number"
        if not node.style and node.tag == FLOAT and not CORE_FLOAT.fullmatch(text):
            return (
                f"{excerpt(text)} is read by YAML 1.1 as the number {value:g}: write the number without colons or underscores, "
                f"or quote '{excerpt(text)}' if text is meant"
            )
    return None
