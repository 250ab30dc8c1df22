"""The values contract: a document checked against schemas/values.schema.json, each error one message in
the user's terms (unknown keys with a suggestion, missing keys, a short excerpt of a wrong value)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from .interrupts import interrupts_held
from .problems import Problem, Source, excerpt
from .suggest import did_you_mean

SCHEMA_FILE = Path(__file__).resolve().parent.parent / "schemas" / "values.schema.json"
_validators: dict[str, object] = {}
_schema: dict | None = None
_schema_digest: str | None = None


def _load() -> None:
    """The schema, read once a process (a forked share checks against its parent's)."""
    global _schema, _schema_digest
    if _schema is None:
        data = SCHEMA_FILE.read_bytes()
        _schema = json.loads(data.decode("utf-8"))
        _schema_digest = hashlib.sha256(data).hexdigest()


def schema_digest() -> str:
    """The SHA-256 of the schema text this process checks values files against (read now if not yet): a
    result kept under it names the very schema it was checked against, even if the file is saved meanwhile."""
    _load()
    return _schema_digest


def _schema_for(kind: str):
    if kind not in _validators:
        _load()
        doc = {"$ref": f"#/definitions/{kind}", "definitions": _schema["definitions"]}
        _validators[kind] = jsonschema().Draft7Validator(doc)
    return _validators[kind]


def jsonschema():
    """jsonschema_rs, imported on first use: a build whose values files were read ahead in another process
    (dashkit/helper.py) does not import it before it checks the dashboards. Ctrl-C is held meanwhile: it
    imports `decimal` from Rust, where a KeyboardInterrupt becomes a panic instead of a quiet exit 130."""
    with interrupts_held():
        import jsonschema_rs
    return jsonschema_rs


def _subschema(path) -> dict:
    """Follow a jsonschema-rs schema_path back to the schema object it names."""
    node: object = {"definitions": _schema["definitions"]}
    for part in path:
        if isinstance(node, dict) and "$ref" in node and part not in node:
            node = _schema["definitions"][node["$ref"].rsplit("/", 1)[1]]
        node = node[part] if isinstance(node, dict) else node[int(part)]
    if isinstance(node, dict) and "$ref" in node:
        node = _schema["definitions"][node["$ref"].rsplit("/", 1)[1]]
    return node


def schema_problems(data, kind: str, src: Source) -> list[Problem]:
    """Every way `data` breaks the schema's definition `kind`, at the line of the key concerned."""
    problems = []
    for err in _schema_for(kind).iter_errors(data):
        path = tuple(err.instance_path)
        if type(err.kind).__name__ == "AdditionalProperties":
            allowed = _subschema(list(err.schema_path)[:-1]).get("properties", {})
            problems += [
                Problem(src.at(*path, key), f"unknown key '{key}'{did_you_mean(key, allowed)}")
                for key in err.kind.unexpected
            ]
            continue
        problems.append(Problem(src.at(*path), _message(err, data, path)))
    return problems


def _message(err, data, path: tuple) -> str:
    kind_name = type(err.kind).__name__
    if kind_name == "Required":
        return f"missing required key '{err.kind.property}'"
    if kind_name == "Not":
        return "use either 'expr' or 'targets', not both"
    if kind_name == "Enum":
        options = err.kind.options if hasattr(err.kind, "options") else _subschema(err.schema_path)["enum"]
        return f"{quote(_at(data, path))} is not one of {', '.join(map(str, options))}{did_you_mean(_at(data, path), options)}"
    if kind_name == "Pattern":
        desc = _subschema(list(err.schema_path)[:-1]).get("description")
        return f"{quote(_at(data, path))} is not allowed here" + (f": {desc}" if desc else "")
    if kind_name == "OneOfNotValid" and list(err.schema_path)[-2:-1] == ["thresholds"]:
        return "thresholds must be a preset name or {warning, critical, direction}"
    if kind_name == "OneOfNotValid" and {"metric", "values"} <= set(
        _subschema(list(err.schema_path)[:-1]).get("properties", {})
    ):
        return "a variable needs 'metric' (label values from Mimir) or 'values' (fixed choices), one of the two"
    return _short_message(err.message, _at(data, path))


def quote(value) -> str:
    """A value as JSON, cut to a short excerpt: a message never repeats a whole document back."""
    return excerpt(json.dumps(value, ensure_ascii=False), 60)


def _short_message(message: str, value) -> str:
    """jsonschema-rs starts its messages with the whole offending value; keep only an excerpt of it."""
    for written in (
        json.dumps(value, ensure_ascii=False),
        json.dumps(value, ensure_ascii=False, separators=(",", ":")),
        json.dumps(value),
    ):
        if message.startswith(written) and len(written) > 60:
            return quote(value) + message[len(written) :]
    return excerpt(message, 300)


def _at(data, path):
    for part in path:
        data = data[part]
    return data
