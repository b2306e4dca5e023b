"""Read a scenario file into validated specs: the baseline and one spec per variant.

Validation happens here, once, at the boundary; the rest of the package trusts the specs. Every problem
found is reported at once, each with its field path and YAML line.
"""

from __future__ import annotations

import copy
import hashlib
import json
import types
import typing
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from custodysim.errors import PathT, Problem, ScenarioError, format_path
from custodysim.scenario.distributions import FAMILIES
from custodysim.scenario.hints import did_you_mean, plain_number, unknown_parameter
from custodysim.scenario.references import check_references, scenario_warnings, unenforced_rules
from custodysim.scenario.schema import Scenario
from custodysim.scenario.yamlsource import Document, parse_yaml

MAX_FILE_BYTES = 5_000_000


@dataclass(frozen=True)
class LoadedScenario:
    """A validated scenario: the baseline spec, the variants' resolved specs, and where it came from."""

    source: str
    sha256: str
    baseline: Scenario
    variants: dict[str, Scenario]
    warnings: tuple[str, ...] = ()
    base_data: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    """The file's data without its variants: what derived variants (sweeps, attribution) override."""

    @property
    def name(self) -> str:
        """Return the scenario's name."""
        return self.baseline.name

    def specs(self, only: list[str] | None = None) -> dict[str, Scenario]:
        """Return the baseline and variants by name, in file order, optionally only the named ones.

        The baseline is always included: every comparison is against it.
        """
        everything = {self.baseline.baseline_name: self.baseline, **self.variants}
        if not only:
            return everything
        unknown = [n for n in only if n not in everything]
        if unknown:
            raise ScenarioError(self.source, [Problem(("variants",), _unknown_variant(n, everything))
                                              for n in unknown])
        return {n: s for n, s in everything.items() if n == self.baseline.baseline_name or n in only}


def _unknown_variant(name: str, known: dict[str, Scenario]) -> str:
    return f"no variant named {name!r}{did_you_mean(name, list(known))}; variants: {', '.join(known)}"


def load_scenario(path: str | Path) -> LoadedScenario:
    """Load and validate the scenario file at ``path``.

    Raises:
        ScenarioError: listing every problem, each with its field path and YAML line.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ScenarioError(path, [Problem((), "file not found")]) from None
    except IsADirectoryError:
        raise ScenarioError(path, [Problem((), "is a folder, not a scenario file")]) from None
    except OSError as exc:
        raise ScenarioError(path, [Problem((), f"cannot be read: {exc.strerror}")]) from None
    if len(raw) > MAX_FILE_BYTES:
        raise ScenarioError(path, [Problem((), f"larger than {MAX_FILE_BYTES // 1_000_000} MB; "
                                               "is this really a scenario file?")])
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        message = f"not UTF-8 text (byte {exc.start}); save it as UTF-8"
        raise ScenarioError(path, [Problem((), message, line)]) from None
    return load_scenario_text(text, source=str(path), sha256=hashlib.sha256(raw).hexdigest())


def load_scenario_text(text: str, source: str = "<scenario>", sha256: str | None = None) -> LoadedScenario:
    """Validate scenario YAML given as text (see :func:`load_scenario`)."""
    # "surrogatepass": text decoded with "surrogateescape" still gets a digest; the parser then refuses it
    sha = sha256 or hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
    doc, problems = parse_yaml(text)
    if doc is None:
        raise ScenarioError(source, problems)
    base_data = {k: v for k, v in doc.data.items() if k != "variants"}
    baseline, problems = _validate(doc.data, doc)
    if baseline is None:
        raise ScenarioError(source, problems)
    problems = [Problem(p, m, doc.line_of(p)) for p, m in check_references(baseline)]
    if problems:
        raise ScenarioError(source, problems)
    variants: dict[str, Scenario] = {}
    for name, variant in baseline.variants.items():
        if name == baseline.baseline_name:
            problems.append(Problem(("variants", name), f"{name!r} is the baseline's own name; rename the "
                                    "variant or set baseline_name", doc.line_of(("variants", name))))
            continue
        spec, variant_problems = _resolve_variant(name, variant.set, base_data, doc)
        problems += variant_problems
        if spec is not None:
            variants[name] = spec
    problems += _check_uncertainty(baseline.uncertainty, base_data, doc)
    if problems:
        raise ScenarioError(source, problems)
    warnings = (*scenario_warnings(baseline), *_variant_warnings(baseline, variants))
    return LoadedScenario(source, sha, baseline, variants, warnings, base_data)


def _variant_warnings(baseline: Scenario, variants: dict[str, Scenario]) -> Iterator[str]:
    """Yield a warning for each rule a variant adds that nobody enforces, at the ``set`` entry that adds it.

    The baseline's own such rules are warned of once, not again for every variant.
    """
    known = set(unenforced_rules(baseline))
    for name, spec in variants.items():
        for loc, message in unenforced_rules(spec):
            if (loc, message) not in known:
                matched = _matching_override(loc, baseline.variants[name].set)
                where = format_path(("variants", name, "set", *((matched,) if matched else ())))
                inner = "" if matched == ".".join(map(str, loc)) else f" {format_path(loc)}:"
                yield f"{where}:{inner} {message}"


def derive(loaded: LoadedScenario, variants: dict[str, dict[str, Any]]) -> LoadedScenario:
    """Return ``loaded`` with other variants: each name maps field paths to values, as a variant's ``set``.

    Sweeps and attribution build their grid points and control combinations this way. The baseline is
    unchanged; the result's ``sha256`` also covers the new variants, so their compiled models never mix
    with the file's own variants of the same name.

    Raises:
        ScenarioError: an override names no field, or gives a scenario that does not validate; each
            problem is reported at ``variants.NAME.set.PATH``.
    """
    problems: list[Problem] = []
    specs: dict[str, Scenario] = {}
    no_lines = Document({})
    for name, overrides in variants.items():
        if name == loaded.baseline.baseline_name:
            problems.append(Problem(("variants", name), f"{name!r} is the baseline's own name"))
            continue
        spec, variant_problems = _resolve_variant(name, overrides, loaded.base_data, no_lines)
        problems += variant_problems
        if spec is not None:
            specs[name] = spec
    if problems:
        raise ScenarioError(loaded.source, problems)
    digest = hashlib.sha256(json.dumps([loaded.sha256, variants], sort_keys=True, default=str).encode())
    return LoadedScenario(loaded.source, digest.hexdigest(), loaded.baseline, specs, loaded.warnings,
                          loaded.base_data)


def _check_uncertainty(uncertainty: dict[str, list[Any]], base: dict[str, Any], doc: Document) -> list[Problem]:
    """Check each uncertain input: its path names a field, and its low and high values each validate there.

    Each estimate is checked like a variant's ``set`` (the scenario it gives must validate); numbers must
    come low first. Problems are reported at ``uncertainty.PATH[0]`` (low) or ``[1]`` (high).
    """
    problems: list[Problem] = []
    for dotted, estimates in uncertainty.items():
        for i, value in enumerate(estimates):
            _, found = _resolve_variant(dotted, {dotted: value}, base, doc, at=("uncertainty",), suffix=(i,))
            problems += found
            if found:
                break  # the same bad path would be reported twice
        low, high = estimates
        numbers = all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in estimates)
        if numbers and low > high:
            where: PathT = ("uncertainty", dotted)
            problems.append(Problem(where, f"low {low} is above high {high}; give [low, high]", doc.line_of(where)))
    return problems


def _validate(data: dict[str, Any], doc: Document) -> tuple[Scenario | None, list[Problem]]:
    try:
        return Scenario.model_validate(data), []
    except ValidationError as exc:
        return None, [_problem_from_pydantic(err, doc, data) for err in exc.errors()]


def _problem_from_pydantic(err: Any, doc: Document, data: Any) -> Problem:
    raw_loc = tuple(err["loc"])
    loc = _document_path(raw_loc, data)
    kind = err["type"]
    message = err["msg"]
    text = err.get("input") if isinstance(err.get("input"), str) else None
    if kind == "extra_forbidden" and len(raw_loc) >= 2 and raw_loc[-2] in FAMILIES:
        message = unknown_parameter(str(raw_loc[-2]), str(loc[-1]))
    elif kind == "extra_forbidden":
        allowed = _allowed_keys(Scenario, loc[:-1])
        hint = did_you_mean(str(loc[-1]), allowed)
        message = f"unknown field {loc[-1]!r}{hint}"
        if allowed and not hint:
            message += f"; allowed here: {', '.join(sorted(allowed))}"
    elif text is not None and (kind in ("float_type", "int_type") or (
            kind == "model_attributes_type" and "dist" in _allowed_keys(Scenario, loc))):
        written = plain_number(text, loc, whole=kind == "int_type")
        if written is not None:
            message = written
        elif kind == "model_attributes_type":  # text where a distribution belongs
            message = "a distribution is a plain number (a fixed value) or a mapping with 'dist:'"
    elif kind == "missing":
        message = "required field is missing"
    elif kind == "union_tag_invalid" or kind == "union_tag_not_found":
        message = ("a distribution needs 'dist:' set to one of fixed, uniform, exponential, lognormal, "
                   "triangular (or give a plain number)")
    elif kind == "too_long" and err.get("ctx", {}).get("field_type") == "Tuple":  # a price_path step
        message = (f"a step is [day, price], 2 numbers, not {err['ctx']['actual_length']}; write each number "
                   "without separators (inside [ ] a comma separates items, so 50,000 reads as 50 and 0)")
    elif kind == "too_long":
        message += " (a custodysim limit that keeps a run within memory and time; see docs/errors.md)"
    elif message.startswith("Value error, "):
        message = message[len("Value error, "):]
    if loc[:1] == ("uncertainty",) and len(loc) == 2 and kind not in ("missing", "extra_forbidden"):
        message += " (an uncertain input is [low, high])"
    scalar_input = "input" in err and not isinstance(err["input"], (dict, list))
    if scalar_input and kind not in ("missing", "extra_forbidden"):
        if isinstance(err["input"], bool):  # YAML reads yes/no/on/off/true/false as one
            message += " (got a true/false value: YAML reads yes, no, on, off, true and false as one)"
        else:
            shown = repr(err["input"])
            message += f" (got {shown[:60]}{'...' if len(shown) > 60 else ''})"
    return Problem(loc, message, doc.line_of(loc))


def _document_path(loc: PathT, data: Any) -> PathT:
    """Drop pydantic's internal loc parts (union tags, 'function-after[...]') not found in the data."""
    out: list[str | int] = []
    node = data
    for part in loc:
        present = (isinstance(node, dict) and part in node) or (
            isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node))
        if present:
            node = node[part]
            out.append(part)
        elif isinstance(node, dict) and isinstance(part, str) and part not in _INTERNAL_PARTS and not (
            part.startswith(("function-", "tagged-union"))
        ):
            out.append(part)  # a missing or unknown key: still the user's name for the field
            node = None
    return tuple(out)


_INTERNAL_PARTS = {*FAMILIES, "[key]"}


def _allowed_keys(model: type[BaseModel], path: PathT) -> list[str]:
    """Return the field names accepted at ``path`` below ``model``."""
    candidates: list[Any] = [model]
    for part in path:
        nxt: list[Any] = []
        for cand in candidates:
            for option in _options(cand):
                if isinstance(option, type) and issubclass(option, BaseModel) and isinstance(part, str):
                    for name, f in option.model_fields.items():
                        if part in (name, f.alias):
                            nxt.append(f.annotation)
                else:
                    origin = typing.get_origin(option)
                    args = typing.get_args(option)
                    if origin is dict and isinstance(part, str):
                        nxt.append(args[1])
                    elif origin is list and isinstance(part, int):
                        nxt.append(args[0])
        candidates = nxt
    names: list[str] = []
    for cand in candidates:
        for option in _options(cand):
            if isinstance(option, type) and issubclass(option, BaseModel):
                names += [f.alias or n for n, f in option.model_fields.items()]
    return sorted(set(names))


def _options(annotation: Any) -> Iterator[Any]:
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        yield from _options(typing.get_args(annotation)[0])
    elif origin is typing.Union or origin is types.UnionType:
        for arg in typing.get_args(annotation):
            yield from _options(arg)
    else:
        yield annotation


def _resolve_variant(name: str, overrides: dict[str, Any], base: dict[str, Any], doc: Document,
                     at: PathT | None = None, suffix: PathT = ()) -> tuple[Scenario | None, list[Problem]]:
    """Apply ``overrides`` to ``base`` and validate the result.

    Problems are reported at ``at + (PATH,) + suffix`` (by default ``variants.NAME.set.PATH``).
    """
    data = copy.deepcopy(base)
    problems: list[Problem] = []
    set_path: PathT = at if at is not None else ("variants", name, "set")
    for dotted, value in overrides.items():
        where = (*set_path, dotted, *suffix)
        error = _apply_override(data, dotted, value)
        if error:
            problems.append(Problem(where, error, doc.line_of(where)))
    if problems:
        return None, problems
    try:
        spec = Scenario.model_validate(data)
    except ValidationError as exc:
        for err in exc.errors():
            loc = _document_path(tuple(err["loc"]), data)
            inner = _problem_from_pydantic(err, Document(data), data)
            matched = _matching_override(loc, overrides)
            where = (*set_path, matched, *suffix) if matched else set_path
            problems.append(Problem(where, f"{format_path(loc)}: {inner.message}", doc.line_of(where)))
        return None, problems
    refs = check_references(spec)
    for loc, message in refs:
        matched = _matching_override(loc, overrides)
        where = (*set_path, matched, *suffix) if matched else set_path
        problems.append(Problem(where, f"{format_path(loc)}: {message}", doc.line_of(where)))
    return (None if problems else spec), problems


def _split(dotted: str) -> list[str | int]:
    # ASCII digits only: str.isdigit() also accepts '²', which int() refuses
    return [int(p) if p.isascii() and p.isdigit() else p for p in dotted.split(".")]


def _matching_override(loc: PathT, overrides: dict[str, Any]) -> str | None:
    best = None
    for dotted in overrides:
        parts = tuple(_split(dotted))
        related = loc[: len(parts)] == parts or parts[: len(loc)] == loc
        if related and (best is None or len(dotted) > len(best)):
            best = dotted
    return best


_SHARED_BY_VARIANTS = ("variants", "settings", "name", "baseline_name")
_ID_COLLECTIONS = ("assets", "organisations", "people", "systems", "wallets", "threats")


def _apply_override(data: dict[str, Any], dotted: str, value: Any) -> str | None:
    """Set ``dotted`` (e.g. ``wallets.hot.topup.cap`` or ``access.0.p_success``) in ``data``.

    Returns an error message, or None on success. Missing mappings on the way are created, so a variant
    can add a policy the baseline lacks; whether the field exists is then the schema's to judge.
    """
    parts = _split(dotted)
    if not dotted or any(p == "" for p in parts):
        return "a field path like 'wallets.hot.topup.cap' is expected"
    if parts[0] == "uncertainty":
        return "'uncertainty' lists the inputs of the tornado chart; it cannot be changed or varied itself"
    if parts[0] in _SHARED_BY_VARIANTS:
        return (f"a variant cannot change {parts[0]!r}: every variant runs on the same horizon, trials "
                "and seed so that they can be compared trial by trial")
    node: Any = data
    for i, part in enumerate(parts[:-1]):
        here = ".".join(str(p) for p in parts[: i + 1])
        if isinstance(node, list):
            if not isinstance(part, int) or part >= len(node):
                return f"{here!r}: no item {part} in this list of {len(node)}"
            node = node[part]
        elif isinstance(node, dict):
            if part not in node or node[part] is None:
                if i == 1 and parts[0] in _ID_COLLECTIONS:
                    known = [str(k) for k in node]
                    return f"there is no {parts[0]} entry {part!r}{did_you_mean(str(part), known)}"
                node[part] = {}
            node = node[part]
        else:
            return f"{here!r} is a single value, it has no field {parts[i + 1]!r}"
    last = parts[-1]
    if isinstance(node, list):
        if not isinstance(last, int) or last >= len(node):
            return f"no item {last} in the list at {'.'.join(str(p) for p in parts[:-1])!r}"
        node[last] = copy.deepcopy(value)
    elif isinstance(node, dict):
        node[last] = copy.deepcopy(value)
    else:
        return f"{'.'.join(str(p) for p in parts[:-1])!r} is a single value"
    return None
