"""Sweep grids: ``--set PATH=V1,V2,...`` options parsed into axes, and their cartesian grid of points.

Each axis is a field path (as in a variant's ``set``) and the values it takes; a grid point is one value
per axis. Values are YAML scalars (numbers, true/false, null, strings); a list or mapping cannot be given
on the command line (the comma separates values), so such a change belongs in a variant of the file
(see ``--from-variant``). Points are named by the axes with more than one value, with the values as
typed: ``cap=5000000,hours=24``.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import yaml

from custodysim.errors import OptionError
from custodysim.scenario.yamlsource import NumbersLoader

MAX_POINTS = 200
"""The most grid points a sweep may run (a scenario may hold as many variants)."""


@dataclass(frozen=True)
class Axis:
    """One swept field path and the values it takes, as parsed and as typed."""

    path: str
    values: tuple[Any, ...]
    texts: tuple[str, ...]


@dataclass(frozen=True)
class GridPoint:
    """One point of the grid: its name and the value of every axis, by path."""

    name: str
    inputs: tuple[tuple[str, Any], ...]

    def overrides(self) -> dict[str, Any]:
        """Return the point's values as a variant's ``set`` (path to value)."""
        return dict(self.inputs)


def parse_axis(option: str) -> Axis:
    """Parse one ``PATH=V1,V2,...`` option.

    Raises:
        OptionError: no ``=``, an empty path or value list, an empty or repeated value, or a value that is
            not a YAML scalar; the message names the option and the value.
    """
    path, eq, listed = option.partition("=")
    path = path.strip()
    if not eq or not path:
        raise OptionError(f"--set {option!r}: expected PATH=V1,V2,... (e.g. wallets.hot.topup.cap=1000,5000)")
    texts = tuple(t.strip() for t in listed.split(","))
    if texts == ("",):
        raise OptionError(f"--set {path}: no values given; list them after '=' separated by commas "
                          f"({path}=V1,V2,...)")
    values: list[Any] = []
    for text in texts:
        if not text:
            raise OptionError(f"--set {path}: an empty value in {listed!r}; separate values by single commas")
        values.append(_scalar(path, text))
    seen: set[str] = set()
    for text, value in zip(texts, values, strict=True):
        key = repr(value)
        if key in seen:
            raise OptionError(f"--set {path}: the value {text!r} is given twice")
        seen.add(key)
    return Axis(path, tuple(values), texts)


def _scalar(path: str, text: str) -> Any:
    """Return ``text`` read as a YAML scalar, or raise an OptionError naming the path and the value."""
    try:
        value = yaml.load(text, Loader=NumbersLoader)  # a safe loader
    except yaml.YAMLError as exc:
        problem = getattr(exc, "problem", None) or "not valid YAML"
        raise OptionError(f"--set {path}: cannot read the value {text!r} ({problem}); give a number, "
                          "true/false, null or a plain string (quote a string that starts with a special "
                          "character)") from None
    if isinstance(value, (dict, list)):
        raise OptionError(f"--set {path}: the value {text!r} is a list or mapping; --set takes single values "
                          "(set a list or mapping in a variant of the file and sweep around it with "
                          "--from-variant)")
    if not isinstance(value, (int, float, str, bool)) and value is not None:
        raise OptionError(f"--set {path}: the value {text!r} reads as a {type(value).__name__}; give a number, "
                          "true/false, null or a plain string (quote it to keep it a string)")
    return value


def parse_axes(options: list[str], max_points: int = MAX_POINTS) -> list[Axis]:
    """Parse every ``--set`` option and check the grid they make.

    Raises:
        OptionError: no option, a path given twice, a malformed option, or more than ``max_points``
            grid points.
    """
    if not options:
        raise OptionError("give at least one --set PATH=V1,V2,... to sweep")
    axes = [parse_axis(o) for o in options]
    paths = [a.path for a in axes]
    for path in paths:
        if paths.count(path) > 1:
            raise OptionError(f"--set {path}: given twice; list all its values in one --set")
    size = 1
    for a in axes:
        size *= len(a.values)
    if size > max_points:
        sizes = " x ".join(str(len(a.values)) for a in axes)
        raise OptionError(f"the grid has {sizes} = {size:,} points, more than the {max_points} a sweep may run; "
                          "sweep fewer values, or split the sweep into several")
    return axes


def labels(paths: list[str]) -> dict[str, str]:
    """Return a short, unique label per path: its last part, or as many last parts as tell it apart."""
    out: dict[str, str] = {}
    for path in paths:
        parts = path.split(".")
        for k in range(1, len(parts) + 1):
            label = ".".join(parts[-k:])
            if sum(1 for other in paths if other == label or other.endswith("." + label)) == 1:
                break
        out[path] = label
    return out


def grid(axes: list[Axis]) -> list[GridPoint]:
    """Return the cartesian grid of the axes, the last axis varying fastest.

    A point is named by the axes with more than one value (``cap=100,hours=24``); when no axis has more
    than one value, by every axis.
    """
    named = swept(axes)
    short = labels([a.path for a in axes])
    points = []
    for combo in itertools.product(*(range(len(a.values)) for a in axes)):
        inputs = tuple((a.path, a.values[i]) for a, i in zip(axes, combo, strict=True))
        name = ",".join(f"{short[a.path]}={a.texts[i]}" for a, i in zip(axes, combo, strict=True) if a in named)
        points.append(GridPoint(name, inputs))
    return points


A = TypeVar("A", Axis, dict[str, Any])


def varying(axes: Sequence[A]) -> list[A]:
    """Return the axes that take more than one value (the ones worth a chart).

    Args:
        axes: :class:`Axis` objects, or the ``axes`` of sweep.json (each with its ``values``).
    """
    return [a for a in axes if len(a.values if isinstance(a, Axis) else a["values"]) > 1]


def swept(axes: Sequence[A]) -> list[A]:
    """Return the axes that name the grid points: those that take more than one value, or all if none does."""
    return varying(axes) or list(axes)


def point_figures(summary: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Return the figures of each grid point of a sweep (sweep.json's content), by name, in grid order."""
    variants = summary["variants"]
    return {p["name"]: variants[p["name"]] for p in summary["points"]}


def frontier_figures(summary: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Return the figures of a sweep's frontier by name: the baseline (the scenario as written), then each point.

    The baseline is a setting like any point: a point it beats on loss and waiting is not efficient.
    """
    baseline = summary["baseline"]
    return {baseline: summary["variants"][baseline], **point_figures(summary)}
