"""Safe YAML loading that remembers the line of every key and item, and rejects duplicate keys."""

from __future__ import annotations

import yaml

from .problems import Problem, Source, Where

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_yaml(text: str, file: str) -> tuple[object, Source, list[Problem]]:
    """Parse one document. Returns (data, source, problems); data is None when unparsable."""
    lines: dict[tuple, int] = {(): 1}
    problems: list[Problem] = []
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return {}, Source(file, lines), problems
        data = _build(loader, node, (), lines, problems, file)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        line = mark.line + 1 if mark else 1
        what = err.problem or err.context or "invalid YAML"
        problems.append(Problem(Where(file, line, ()), f"YAML syntax error: {what}"))
        return None, Source(file, lines), problems
    except yaml.YAMLError as err:  # a tag PyYAML refuses to construct safely, and the like
        problems.append(Problem(Where(file, 1, ()), f"YAML error: {err}"))
        return None, Source(file, lines), problems
    finally:
        loader.dispose()
    return data, Source(file, lines), problems


PLAIN_TAGS = {"tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"}


def _build(loader, node, path, lines, problems, file):
    lines[path] = node.start_mark.line + 1
    if not isinstance(node, yaml.ScalarNode) and node.tag not in PLAIN_TAGS:
        # Collections are built here, not by PyYAML, so refuse their tags explicitly (e.g. !!python/...).
        problems.append(Problem(Where(file, lines[path], path), f"unsupported YAML: tag '{node.tag}' is not allowed"))
        return None
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)  # resolves `<<` merge keys the way PyYAML does
        out = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if not isinstance(key, (str, int, float, bool)) or key is None:
                problems.append(Problem(Where(file, key_node.start_mark.line + 1, path), "mapping keys must be plain text"))
                continue
            key = str(key) if not isinstance(key, str) else key
            child = path + (key,)
            if key in out:
                problems.append(
                    Problem(
                        Where(file, key_node.start_mark.line + 1, child),
                        f"duplicate key (first defined on line {lines[child]})",
                    )
                )
                continue
            lines[child] = key_node.start_mark.line + 1
            out[key] = _build(loader, value_node, child, lines, problems, file)
            lines[child] = key_node.start_mark.line + 1  # the key's line, not its value's
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_build(loader, item, path + (i,), lines, problems, file) for i, item in enumerate(node.value)]
    try:
        return loader.construct_object(node, deep=True)
    except yaml.constructor.ConstructorError as err:
        problems.append(Problem(Where(file, lines[path], path), f"unsupported YAML: {err.problem}"))
        return None
