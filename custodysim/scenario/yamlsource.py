"""Safe YAML reading that remembers where every value came from.

PyYAML's safe loader already refuses tags that construct objects; on top of it this module refuses
duplicate keys (instead of the silent last-wins), non-string keys, alias expansions that would blow up
(the "billion laughs") and files of more values than any scenario needs (stopped while they are parsed),
and records the line of every mapping key and sequence item so that a validation error can point into
the file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from custodysim.errors import PathT, Problem

MAX_NODES = 200_000
"""Upper bound on values produced from one file, aliases expanded (bounds memory and time)."""
MAX_DEPTH = 64
MAX_SOURCE_NODES = 50_000
"""Upper bound on values written in one file, aliases not expanded (bounds parsing before any expansion)."""

_SCALAR_TAGS = {
    "tag:yaml.org,2002:str", "tag:yaml.org,2002:int", "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool", "tag:yaml.org,2002:null",
}
_MAP_TAG, _SEQ_TAG, _MERGE_TAG = "tag:yaml.org,2002:map", "tag:yaml.org,2002:seq", "tag:yaml.org,2002:merge"
_STR_TAG, _VALUE_TAG = "tag:yaml.org,2002:str", "tag:yaml.org,2002:value"
_KINDS = {"int": "number", "float": "number", "bool": "true/false value", "null": "null", "timestamp": "date"}


def _is_text(node: yaml.Node) -> bool:
    """Whether ``node`` is text: a string, or a plain '=' (which YAML 1.1 tags as a 'value')."""
    return isinstance(node, yaml.ScalarNode) and node.tag in (_STR_TAG, _VALUE_TAG)


class NumbersLoader(yaml.SafeLoader):
    """PyYAML's safe loader that also reads ``1e6`` and ``-2E-3`` as numbers, as YAML 1.2 does.

    YAML 1.1 wants a dot in a float's mantissa, so PyYAML reads ``1e6`` as text; the schema takes numbers
    only where numbers belong (never text, never true/false), so the loader must give it one.
    """

    yaml_implicit_resolvers = {  # noqa: RUF012 (PyYAML's class-level table, copied so that SafeLoader's stays as it is)
        key: list(value) for key, value in yaml.SafeLoader.yaml_implicit_resolvers.items()}


NumbersLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float", re.compile(r"^[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+$"), list("-+0123456789"))


class _Loader(NumbersLoader):
    """The numbers loader, stopped as soon as the file holds more than MAX_SOURCE_NODES values."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.composed = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        if not self.check_event(yaml.AliasEvent):  # an alias reuses a node: counted when expanded
            self.composed += 1
            if self.composed > MAX_SOURCE_NODES:
                raise _TooMany(self.peek_event().start_mark.line + 1)  # type: ignore[no-untyped-call]
        return super().compose_node(parent, index)


def _describe(node: yaml.Node) -> str:
    """Name a non-text key for a message: ``the number 1``, ``a list``."""
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    kind = _KINDS.get(node.tag.rsplit(":", 1)[-1], "tagged value")
    return f"the {kind} {node.value!r}"


_NUMERIC_TAGS = ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float")
_MAX_GROUPS = 8
"""Most groups of three digits a cut number is looked back over (1,000,000,000,000,000,000 has 6)."""
_SEPARATED = re.compile(r"[+-]?\d+(?:,\d{3})+(?:\.\d+)?")


def _entry_cut(entries: list[tuple[yaml.Node, yaml.Node]], position: int) -> tuple[yaml.Node, yaml.Node] | None:
    """Return the entry whose number the key at ``position`` is the end of, cut off by a thousands separator.

    Inside ``{price_usd: 65,000}`` the comma separates entries: YAML reads ``price_usd: 65`` and a key
    ``000`` without a value (``1,000,000`` gives two such keys). None: the key is no such end.
    """
    key_node = entries[position][0]
    if not (isinstance(key_node, yaml.ScalarNode) and key_node.tag in _NUMERIC_TAGS):
        return None
    for key, value in (entries[j] for j in range(position - 1, max(position - _MAX_GROUPS, 0) - 1, -1)):
        if _is_text(key):
            numeric = isinstance(value, yaml.ScalarNode) and value.tag in _NUMERIC_TAGS and value.style is None
            cut = _separated(value) if numeric else None
            inside = cut is not None and value.start_mark.index < key_node.start_mark.index < cut.end()
            return (key, value) if inside else None
        if not (isinstance(key, yaml.ScalarNode) and key.tag in _NUMERIC_TAGS and value.tag.endswith(":null")):
            return None  # not a group of the number
    return None


def _separated(value: yaml.Node) -> re.Match[str] | None:
    """Return the number with thousands separators written from ``value`` on, if the file holds one there."""
    buffer = value.start_mark.buffer
    return _SEPARATED.match(buffer, value.start_mark.index) if isinstance(buffer, str) else None


def _split_message(value: yaml.Node) -> str:
    cut = _separated(value)
    assert cut is not None
    written = cut.group()
    return (f"write {written.replace(',', '')} without separators: inside {{ }} a comma separates entries, so "
            f"{written!r} reads as {value.value} and a key {written[len(value.value) + 1:].split(',')[0]!r}")


@dataclass
class Document:
    """Plain data from a YAML file plus the line (1-based) of each path."""

    data: Any
    lines: dict[PathT, int] = field(default_factory=dict)

    def line_of(self, path: PathT) -> int | None:
        """Return the line of ``path`` or of its nearest ancestor that has one."""
        for cut in range(len(path), -1, -1):
            line = self.lines.get(path[:cut])
            if line is not None:
                return line
        return None


class _Builder:
    def __init__(self, loader: yaml.SafeLoader) -> None:
        self.loader = loader
        self.count = 0
        self.lines: dict[PathT, int] = {}
        self.problems: list[Problem] = []
        self._flattening: set[int] = set()
        self._merged: dict[int, int] = {}  # id of a flattened mapping node -> merged entries at its front
        self._built: set[int] = set()
        self._alias_at: PathT | None = None  # where the alias being expanded was used
        self._split: set[int] = set()  # ids of numbers reported as cut by a thousands separator

    def build(self, node: yaml.Node, path: PathT, depth: int) -> Any:
        if self._alias_at is None and id(node) in self._built and not isinstance(node, yaml.ScalarNode):
            self._alias_at = path
            try:
                return self._build(node, path, depth)
            finally:
                self._alias_at = None
        self._built.add(id(node))
        return self._build(node, path, depth)

    def _too_big(self, path: PathT, node: yaml.Node) -> _TooBig:
        """Point an expansion that got out of hand at the alias that started it, if any."""
        if not self._alias_at:
            return _TooBig(path, node.start_mark.line + 1)
        at = self._alias_at  # an alias's own line is lost: use its key's, or its list's
        return _TooBig(at, self.lines.get(at if isinstance(at[-1], str) else at[:-1]))

    def _build(self, node: yaml.Node, path: PathT, depth: int) -> Any:
        self.count += 1
        if self.count > MAX_NODES:
            raise self._too_big(path, node)
        if depth > MAX_DEPTH:
            big = self._too_big(path, node)
            raise _TooDeep(big.path, big.line)
        self.lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, (yaml.MappingNode, yaml.SequenceNode)) and node.tag not in (_MAP_TAG, _SEQ_TAG):
            return self._refuse(path, node, f"unsupported YAML tag {node.tag!r}")
        if isinstance(node, yaml.MappingNode):
            merged = self._flatten(node, path)  # "<<: *anchor" entries come first; explicit keys win
            out: dict[str, Any] = {}
            explicit_keys: set[str] = set()
            for position, (key_node, value_node) in enumerate(node.value):
                split = None if _is_text(key_node) else _entry_cut(node.value, position)
                if split is not None:
                    if id(split[1]) not in self._split:  # 1,000,000 is one mistake, not two
                        self._split.add(id(split[1]))
                        self._refuse((*path, split[0].value), split[1], _split_message(split[1]))
                    continue
                if not _is_text(key_node):
                    scalar = isinstance(key_node, yaml.ScalarNode)
                    quote = " (put it in quotes to use it as text)" if scalar else ""
                    self._refuse(path, key_node, f"keys must be plain text, not {_describe(key_node)}{quote}")
                    continue
                key = key_node.value
                key_path = (*path, key)
                if key in out and position >= merged and key in explicit_keys:
                    self._refuse(key_path, key_node, "duplicate key (each key may appear once)")
                    continue
                if position >= merged:
                    explicit_keys.add(key)
                self.lines[key_path] = key_node.start_mark.line + 1
                out[key] = self.build(value_node, key_path, depth + 1)
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*path, i), depth + 1) for i, item in enumerate(node.value)]
        if _is_text(node) or node.tag == _MERGE_TAG:
            return node.value  # '=' and '<<' outside a key are plain text
        if node.tag == "tag:yaml.org,2002:timestamp":
            return self._refuse(path, node, f"a date is not accepted here; put {node.value!r} in quotes "
                                "to use it as text")
        if node.tag not in _SCALAR_TAGS:
            return self._refuse(path, node, f"unsupported YAML tag {node.tag!r}")
        try:
            return self.loader.construct_object(node, deep=True)
        except (yaml.YAMLError, ValueError, OverflowError, KeyError, IndexError):  # e.g. !!bool maybe, !!int ''
            return self._refuse(path, node, f"{node.value!r} is not a valid {node.tag.rsplit(':', 1)[-1]}")

    def _refuse(self, path: PathT, node: yaml.Node, message: str) -> None:
        """Record a problem at ``node``'s line; its value is left out."""
        self.problems.append(Problem(path, message, node.start_mark.line + 1))

    def _flatten(self, node: yaml.MappingNode, path: PathT) -> int:
        """Resolve ``<<`` merge keys in place, like PyYAML's ``flatten_mapping``, but bounded.

        Merged entries come first and explicit keys after them (so explicit keys win); returns how many
        entries were merged, also when ``node`` (an alias) was flattened before. PyYAML copies merged
        entries before anything is built, so nested merges of one anchor can reach billions of entries
        from a few hundred bytes: every copied entry counts against MAX_NODES here.
        """
        if id(node) in self._merged:
            return self._merged[id(node)]
        if id(node) in self._flattening:
            self._refuse(path, node, "'<<' merges a mapping into itself")
            node.value = [(k, v) for k, v in node.value if k.tag != _MERGE_TAG]
            return 0
        self._flattening.add(id(node))
        merged: list[tuple[yaml.Node, yaml.Node]] = []
        explicit: list[tuple[yaml.Node, yaml.Node]] = []
        for key_node, value_node in node.value:
            if key_node.tag != _MERGE_TAG:
                explicit.append((key_node, value_node))
                continue
            # In a list of merged mappings the first wins, so it goes last (later entries overwrite).
            sequence = isinstance(value_node, yaml.SequenceNode)
            sources = reversed(value_node.value) if sequence else [value_node]
            for source in sources:
                if not isinstance(source, yaml.MappingNode):
                    self._refuse(path, source, "'<<' merges a mapping or a list of mappings, "
                                 f"not {_describe(source)}")
                    continue
                self._flatten(source, path)
                self.count += len(source.value)
                if self.count > MAX_NODES:
                    raise self._too_big(path, node)
                merged.extend(source.value)
        self._flattening.discard(id(node))
        if len(explicit) != len(node.value):
            node.value = merged + explicit
        self._merged[id(node)] = len(merged)
        return len(merged)


class _TooBig(Exception):
    def __init__(self, path: PathT, line: int | None) -> None:
        self.path, self.line = path, line


class _TooDeep(_TooBig):
    pass


class _TooMany(Exception):
    def __init__(self, line: int) -> None:
        self.line = line


def parse_yaml(text: str) -> tuple[Document | None, list[Problem]]:
    """Parse ``text`` into a :class:`Document`, or return the problems that prevented it."""
    try:
        loader = _Loader(text)
    except yaml.reader.ReaderError as exc:  # a control character anywhere in the text
        char = f"U+{exc.character:04X}" if isinstance(exc.character, int) else repr(exc.character)
        return None, [Problem((), f"not valid YAML: character {char} is not allowed",
                              text.count("\n", 0, exc.position) + 1)]
    try:
        root = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        context = exc.context
        if context and exc.context_mark and mark is not None and exc.context_mark.line != mark.line:
            context += f" (line {exc.context_mark.line + 1})"  # where the bracket opened, the anchor first was, ...
        reason = ", ".join(filter(None, [context, exc.problem])) or str(exc)
        return None, [Problem((), f"not valid YAML: {reason}", line)]
    except yaml.YAMLError as exc:
        return None, [Problem((), f"not valid YAML: {exc}")]
    except RecursionError:
        return None, [Problem((), f"nesting far deeper than {MAX_DEPTH} levels", loader.get_mark().line + 1)]
    except _TooMany as exc:
        return None, [Problem((), f"the file holds more than {MAX_SOURCE_NODES} values; is this really a "
                              "scenario file?", exc.line)]
    finally:
        loader.dispose()
    if root is None:
        return None, [Problem((), "the file is empty")]
    builder = _Builder(loader)
    try:
        data = builder.build(root, (), 0)
    except _TooDeep as exc:
        return None, [Problem(exc.path, f"nesting deeper than {MAX_DEPTH} levels", exc.line)]
    except _TooBig as exc:
        return None, [Problem(exc.path, f"the file expands to more than {MAX_NODES} values "
                              "(aliases repeated too often?)", exc.line)]
    except (yaml.YAMLError, ValueError, OverflowError) as exc:
        return None, [Problem((), f"not valid YAML: {exc}")]
    if builder.problems:
        return None, builder.problems
    if data is None:  # a lone '---', '~' or 'null'
        return None, [Problem((), "the file is empty")]
    if not isinstance(data, dict):
        kind = {list: "a list", str: "text", bool: "a true/false value", int: "a number",
                float: "a number"}.get(type(data), type(data).__name__)
        return None, [Problem((), f"a scenario must be a mapping of fields, not {kind}", root.start_mark.line + 1)]
    return Document(data, builder.lines), []
