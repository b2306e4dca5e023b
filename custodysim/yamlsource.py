"""Safe YAML reading that remembers where every value came from.

PyYAML's safe loader already refuses tags that construct objects; on top of it this module refuses
duplicate keys (instead of the silent last-wins), non-string keys and alias expansions that would blow
up (the "billion laughs"), and records the line of every mapping key and sequence item so that a
validation error can point into the file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from custodysim.errors import PathT, Problem

MAX_NODES = 200_000
"""Upper bound on values produced from one file, aliases expanded (bounds memory and time)."""
MAX_DEPTH = 64

_SCALAR_TAGS = {
    "tag:yaml.org,2002:str", "tag:yaml.org,2002:int", "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool", "tag:yaml.org,2002:null",
}


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

    def build(self, node: yaml.Node, path: PathT, depth: int) -> Any:
        self.count += 1
        if self.count > MAX_NODES:
            raise _TooBig(path, node)
        if depth > MAX_DEPTH:
            raise _TooDeep(path, node)
        self.lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            self.loader.flatten_mapping(node)
            out: dict[str, Any] = {}
            for key_node, value_node in node.value:
                if not isinstance(key_node, yaml.ScalarNode) or key_node.tag != "tag:yaml.org,2002:str":
                    self.problems.append(Problem(path, f"keys must be plain text, not {key_node.value!r}",
                                                 key_node.start_mark.line + 1))
                    continue
                key = key_node.value
                if key in out:
                    self.problems.append(Problem(path + (key,), "duplicate key (each key may appear once)",
                                                 key_node.start_mark.line + 1))
                    continue
                self.lines[path + (key,)] = key_node.start_mark.line + 1
                out[key] = self.build(value_node, path + (key,), depth + 1)
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, path + (i,), depth + 1) for i, item in enumerate(node.value)]
        if node.tag not in _SCALAR_TAGS:
            self.problems.append(Problem(path, f"unsupported YAML tag {node.tag!r}", node.start_mark.line + 1))
            return None
        return self.loader.construct_object(node, deep=True)


class _TooBig(Exception):
    def __init__(self, path: PathT, node: yaml.Node) -> None:
        self.path, self.line = path, node.start_mark.line + 1


class _TooDeep(_TooBig):
    pass


def parse_yaml(text: str) -> tuple[Document | None, list[Problem]]:
    """Parse ``text`` into a :class:`Document`, or return the problems that prevented it."""
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        reason = exc.problem or str(exc)
        return None, [Problem((), f"not valid YAML: {reason}", line)]
    except yaml.YAMLError as exc:
        return None, [Problem((), f"not valid YAML: {exc}")]
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
    if not isinstance(data, dict):
        return None, [Problem((), f"a scenario must be a mapping of fields, not {type(data).__name__}", 1)]
    return Document(data, builder.lines), []
