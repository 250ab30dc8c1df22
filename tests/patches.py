"""Small text patches over the project's current files, and where in a YAML file a line is.

The bad-input corpus (tests/corpus/<case>/patch.yaml) and the everyday-workflow tests use them, so that a
test states only the few lines it changes, never a copy of a values file that goes stale. The format is in
tests/corpus/README.md. Anchors are literal text; an edit that no longer applies fails with a message that
names the file and the text it looked for.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

OPS = ("replace", "pattern", "after", "remove", "content", "delete")


class PatchError(AssertionError):
    """A patch that no longer applies to the current files."""


def _line_of(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def _starting_line(lines: list[str], anchor: str, rel: str) -> int:
    """Index of the first line that starts with `anchor` (indentation included)."""
    for i, line in enumerate(lines):
        if line.startswith(anchor):
            return i
    raise PatchError(f"{rel}: no line starts with {anchor!r}")


def _block_end(lines: list[str], start: int) -> int:
    """One past the last line of the YAML block that begins at `start`: the lines below it indented deeper
    (a list item's `- ` counts as indentation), blank lines and comments inside the block included."""
    head = lines[start]
    indent = len(head) - len(head.lstrip(" "))
    if head.lstrip(" ").startswith("- "):
        indent += 1  # the keys of an item `- a: 1` sit two columns in; its next sibling `- ` does not
    end = start + 1
    while end < len(lines):
        line = lines[end]
        if line.strip() and (len(line) - len(line.lstrip(" "))) <= indent:
            break
        end += 1
    while end > start + 1 and not lines[end - 1].strip():
        end -= 1  # trailing blank lines belong to what follows
    return end


def apply_edit(text: str | None, edit: dict, rel: str) -> tuple[str | None, int]:
    """One edit. Returns the new text (None: the file is deleted) and the line it landed on."""
    ops = [op for op in OPS if op in edit]
    if len(ops) != 1:
        raise PatchError(f"{rel}: an edit needs exactly one of {', '.join(OPS)}, got {sorted(edit)}")
    op = ops[0]
    if op == "content":
        return edit["content"], 1
    if op == "delete":
        return None, 1
    if text is None:
        raise PatchError(f"{rel}: the file does not exist")
    if op == "replace":
        old, new = edit["replace"], edit["with"]
        at = text.find(old)
        if at < 0:
            raise PatchError(f"{rel}: {old!r} is not in the file")
        return text[:at] + new + text[at + len(old) :], _line_of(text, at)
    if op == "pattern":
        match = re.search(edit["pattern"], text, re.M)
        if match is None:
            raise PatchError(f"{rel}: nothing matches {edit['pattern']!r}")
        return text[: match.start()] + edit["with"] + text[match.end() :], _line_of(text, match.start())
    lines = text.split("\n")
    if op == "after":
        i = _starting_line(lines, edit["after"], rel)
        lines[i + 1 : i + 1] = edit["insert"].rstrip("\n").split("\n")
        return "\n".join(lines), i + 2
    i = _starting_line(lines, edit["remove"], rel)  # remove; it lands on the line above, in what held the block
    del lines[i : _block_end(lines, i)]
    return "\n".join(lines), max(i, 1)


def apply_patch(root: Path, patch: dict) -> dict[str, list[int]]:
    """Apply {file: edit or [edits]} under root, in order. Returns, per file, the line each edit landed on."""
    landed: dict[str, list[int]] = {}
    for rel, edits in patch.items():
        target = root / rel
        text = target.read_text(encoding="utf-8") if target.exists() else None
        for edit in edits if isinstance(edits, list) else [edits]:
            text, line = apply_edit(text, edit, rel)
            landed.setdefault(rel, []).append(line)
        if text is None:
            target.unlink()
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
    return landed


def load_patch(path: Path) -> dict:
    patch = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(patch, dict) and patch, f"{path}: a patch is a mapping of file -> edits"
    return patch


# ---- where a line is in a YAML document -------------------------------------------------------------


def yaml_lines(text: str) -> dict[tuple, tuple[int, int]]:
    """Every key path of a YAML document -> (line, last line) as a user reads them: a mapping entry's line
    is its key's, a list item's its first. Empty when the text is not YAML (a broken case)."""
    try:
        node = yaml.compose(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError:
        return {}
    found: dict[tuple, tuple[int, int]] = {}

    def walk(n, path: tuple, line: int) -> int:
        """Records n and everything under it; returns n's last line."""
        if isinstance(n, yaml.MappingNode) and not n.flow_style:
            last = max([walk(value, path + (key.value,), key.start_mark.line + 1) for key, value in n.value] or [line])
        elif isinstance(n, yaml.SequenceNode) and not n.flow_style:
            last = max([walk(item, path + (i,), item.start_mark.line + 1) for i, item in enumerate(n.value)] or [line])
        else:  # a scalar or a flow collection ends where its text does (a block scalar at the next line's start)
            end = n.end_mark
            last = end.line if end.column == 0 and end.line > n.start_mark.line else end.line + 1
            if isinstance(n, yaml.MappingNode):
                for key, value in n.value:
                    walk(value, path + (key.value,), key.start_mark.line + 1)
            elif isinstance(n, yaml.SequenceNode):
                for i, item in enumerate(n.value):
                    walk(item, path + (i,), item.start_mark.line + 1)
        found[path] = (line, max(line, last))
        return max(line, last)

    if node is not None:
        walk(node, (), 1)
    return found


def show_path(path: tuple) -> str:
    """('rows', 0, 'panels', 2, 'expr') -> 'rows[0].panels[2].expr', as the build writes paths."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(document)"


def parse_path(text: str) -> tuple:
    return tuple(int(p[1:-1]) if p.startswith("[") else p for p in re.findall(r"\[\d+\]|[^.\[\]]+", text))


def line_of_path(lines: dict[tuple, tuple[int, int]], path: tuple) -> int:
    """The line the build names for a path: its own, else its nearest written ancestor's."""
    while path not in lines and path:
        path = path[:-1]
    return lines.get(path, (1, 1))[0]


def path_at_line(lines: dict[tuple, tuple[int, int]], line: int) -> tuple:
    """The deepest key path written on that line (the key of `expr: ...` on it, say)."""
    on = [p for p, (first, _) in lines.items() if first == line]
    return max(on, key=len) if on else ()


def item_at_line(lines: dict[tuple, tuple[int, int]], line: int) -> tuple:
    """The innermost list item that spans that line, e.g. ('rows', 0, 'panels', 3)."""
    spans = [p for p, (first, last) in lines.items() if p and isinstance(p[-1], int) and first <= line <= last]
    return max(spans, key=len) if spans else ()


def insert_lines(path: Path, after: int, text: str) -> None:
    """Insert text as whole lines after line `after` (1-based) of a file."""
    lines = path.read_text(encoding="utf-8").split("\n")
    lines[after:after] = text.rstrip("\n").split("\n")
    path.write_text("\n".join(lines), encoding="utf-8")


def replace_in_line(path: Path, line: int, old: str, new: str) -> None:
    """Replace old with new in line `line` (1-based) of a file, and only there."""
    lines = path.read_text(encoding="utf-8").split("\n")
    assert old in lines[line - 1], f"{path.name}:{line}: {old!r} not in {lines[line - 1]!r}"
    lines[line - 1] = lines[line - 1].replace(old, new, 1)
    path.write_text("\n".join(lines), encoding="utf-8")


def replace_whole_line(path: Path, line: int, text: str) -> None:
    """Replace line `line` (1-based) of a file with text."""
    lines = path.read_text(encoding="utf-8").split("\n")
    lines[line - 1] = text
    path.write_text("\n".join(lines), encoding="utf-8")


def drop_lines(text: str, spans: list[tuple[int, int]]) -> str:
    """Text without the given (first, last) line spans, 1-based and inclusive; spans inside others count once."""
    lines = text.split("\n")
    keep = [True] * len(lines)
    for first, last in spans:
        for i in range(first - 1, last):
            keep[i] = False
    return "\n".join(line for line, k in zip(lines, keep, strict=True) if k)


def remove_panel(path: Path, row: str, title: str) -> bool:
    """Take the panel titled `title` out of the row titled `row` of a values file, if it is there."""
    text = path.read_text(encoding="utf-8")
    lines, doc = yaml_lines(text), yaml.safe_load(text)
    for i, r in enumerate(doc.get("rows") or []):
        for j, p in enumerate(r.get("panels") or []):
            if r.get("title") == row and p.get("title") == title:
                path.write_text(drop_lines(text, [lines[("rows", i, "panels", j)]]), encoding="utf-8")
                return True
    return False
