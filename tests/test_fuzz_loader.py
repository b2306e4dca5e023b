"""Fuzzed loader: every mutated scenario ends in a valid run or a clear error, never a traceback or a hang.

The MINI scenario (tests/conftest.py) is mutated two ways: as parsed data dumped back to YAML (keys
dropped or added, values of the wrong type, unicode, huge, negative and non-finite numbers, deep nesting,
renamed ids, variant paths, extra sections with extreme numbers) and as text (anchors and aliases, merge
keys, tags, duplicated lines, control characters, binary junk, truncation). Each case is loaded under a
wall-clock limit; a valid one is also run for 3 trials.

The explicit YAML traps already covered by tests/test_loader_errors.py are not repeated here:
duplicate keys (``test_duplicate_key_rejected_not_last_wins``, ``test_duplicate_id_rejected``,
``test_duplicate_top_level_key_rejected``), non-string keys (``test_non_string_keys_refused``,
``test_non_string_key_at_top_level``), object-constructing tags (``test_python_object_tags_refused``,
``test_python_object_tag_constructs_nothing``) and the alias bombs' time (``test_billion_laughs_answered_quickly``,
``test_merge_key_bomb_answered_quickly``). This file adds their memory bound and the cases they miss.

``CUSTODYSIM_FUZZ_SCALE=20 python -m pytest tests/test_fuzz_loader.py`` searches 20 times longer.
"""

from __future__ import annotations

import copy
import math
import os
import re
import signal
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml
from conftest import MINI, VARIANT_SET, edit, line_of
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st
from pydantic import BaseModel
from typer.testing import CliRunner

from custodysim.cli import app
from custodysim.errors import PathT, Problem, ScenarioError
from custodysim.running.runner import run_variants
from custodysim.scenario import distributions, schema, yamlsource
from custodysim.scenario.loader import LoadedScenario, load_scenario_text
from custodysim.scenario.schema import field_names
from custodysim.scenario.yamlsource import MAX_NODES, MAX_SOURCE_NODES

SCALE = float(os.environ.get("CUSTODYSIM_FUZZ_SCALE", "1"))
LOAD_SECONDS = 2.0  # a load slower than this fails the example
RUN_SECONDS = 10.0  # so does a 3-trial run slower than this
HANG_SECONDS = 20.0  # a block still running after this is interrupted (a hang fails, it does not stall)
T = TypeVar("T")


def fuzz(examples: int) -> settings:
    """Return hypothesis settings for ``examples`` examples (times CUSTODYSIM_FUZZ_SCALE), no deadline."""
    return settings(max_examples=max(1, round(examples * SCALE)), deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


# --- the checks every case must pass ------------------------------------------------------------------


class Hang(BaseException):
    """Raised by the alarm in :func:`within`: a BaseException, which no ``except Exception`` can hide.

    Hypothesis does not shrink it, so the message carries the input itself.
    """


def within(seconds: float, what: str, fn: Callable[..., T], *args: Any) -> T | ScenarioError:
    """Return ``fn(*args)`` or the ScenarioError it raised; fail if it took ``seconds`` or more.

    Any other exception propagates (and fails the test). A call still running after HANG_SECONDS is
    interrupted where the platform has SIGALRM, so a hang fails instead of stalling the run; ``what``
    names the call (and its input) in the failure.
    """
    alarm = hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
    if alarm:
        def on_alarm(signum: int, frame: Any) -> None:
            raise Hang(f"{what} still running after {HANG_SECONDS:g} s")
        previous = signal.signal(signal.SIGALRM, on_alarm)
        signal.setitimer(signal.ITIMER_REAL, HANG_SECONDS)
    start = time.perf_counter()
    try:
        result: T | ScenarioError = fn(*args)
    except ScenarioError as exc:
        result = exc
    finally:
        if alarm:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
    elapsed = time.perf_counter() - start
    assert elapsed < seconds, f"{what} took {elapsed:.2f} s (limit {seconds:g} s)"
    return result


WHOLE_FILE_MESSAGES = ("the file is empty",)  # problems that concern no line and no field
INTERNALS = ("Node(", "ScalarNode", "MappingNode", "SequenceNode", "object at 0x", "function-after",
             "tagged-union", "[key]", "Traceback", "errors.pydantic.dev", "<class ", "NoneType")


def assert_clear(exc: ScenarioError, text: str) -> None:
    """Assert that every problem is one non-empty line naming a field path or a line, in plain terms."""
    assert exc.problems, "a ScenarioError without problems"
    last_line = len(text.splitlines()) + 1
    for p in exc.problems:
        rendered = p.render("fuzz.yaml")
        assert p.message.strip(), rendered
        assert len(rendered.splitlines()) == 1, f"a problem over several lines: {rendered!r}"
        assert p.line is not None or p.path or p.message in WHOLE_FILE_MESSAGES, f"says neither where: {rendered!r}"
        assert p.line is None or 1 <= p.line <= last_line, f"line {p.line} of {last_line - 1}: {rendered!r}"
        leaked = [word for word in INTERNALS if word in rendered and word not in text]
        assert not leaked, f"internals {leaked} in {rendered!r}"
    assert len(str(exc).splitlines()) == 1 + len(exc.problems)


def check(text: str) -> LoadedScenario | None:
    """Load ``text``; a valid scenario must also run 3 trials. Return it, or None after a clear error."""
    result = within(LOAD_SECONDS, f"loading {text!r}", load_scenario_text, text, "fuzz.yaml")
    if isinstance(result, ScenarioError):
        assert_clear(result, text)
        return None
    for warning in result.warnings:
        assert warning.strip() and len(warning.splitlines()) == 1, warning
    rows = within(RUN_SECONDS, f"a 3-trial run of {text!r}", run_variants, result, 3, 0)
    assert not isinstance(rows, ScenarioError), rows
    assert [len(r) for r in rows[0]] == [3] * (1 + len(result.variants))
    return result


# --- values -------------------------------------------------------------------------------------------

NASTY_NUMBERS: list[Any] = [
    0, -0.0, 1, -1, 0.5, 2, 100, 1000, 1001, 3650, 3651, 10_000_000, 10_000_001, 1e-300, -1e-300, 5e-324,
    1e300, -1e300, 1.7976931348623157e308, math.inf, -math.inf, math.nan, 2**31, 2**53 + 1, 2**63 - 1,
    2**63, -(2**63), 2**64, 10**40, -(10**40), 10**400, True, False,
]
NASTY_TEXT = [
    "", " ", "lol", "0", "1e3", "0x1F", "yes", "no", "on", "null", "~", ".nan", ".inf", "2024-06-01",
    "12:30", "chain", "external", "baseline", "main", "hot", "hsm", "eng", "a.b", "a b", "a..b", "-x", "_x",
    "x" * 129, "x" * 5000, "héllo", "日本語", "🙂", "\u202eevil", "zero\u200bwidth", "\ufeffbom", "a\nb",
    "a\r\nb", "tab\there", "nul\x00", "nel\x85", "ls\u2028", "*alias", "&anchor", "!!python/name:os.system",
    "<<", "=", "%", "@", "`", "'", '"', "{", "[", "#", "- x", "? x", "|", ">",
]
ID_LIKE = ["main", "hot", "hsm", "pe", "comms", "eng_laptop", "eng", "signer", "ex", "vendor", "BTC", "tt", "wl",
           "k1", "h1", "chain", "external", "baseline", "mian", "signr", "nobody", "1", "a.b", "", "é", "x" * 200]


def _model_field_names() -> list[str]:
    models = [obj for module in (schema, distributions) for obj in vars(module).values()
              if isinstance(obj, type) and issubclass(obj, BaseModel) and obj.model_fields]
    return sorted({name for model in models for name in field_names(model)})


FIELD_NAMES = _model_field_names()

numbers = st.one_of(st.sampled_from(NASTY_NUMBERS), st.integers(), st.floats(),
                    st.floats(min_value=0, max_value=1e4, allow_nan=False))
texts = st.one_of(st.sampled_from(NASTY_TEXT), st.text(max_size=20))
keys = st.one_of(st.sampled_from(FIELD_NAMES), st.sampled_from(ID_LIKE), texts, st.integers(), st.none(),
                 st.booleans(), st.floats(allow_nan=False))
scalars = st.one_of(numbers, texts, st.none(), st.booleans())


def nest(depth: int, leaf: Any, kind: str) -> Any:
    """Return ``leaf`` nested ``depth`` lists (or single-key mappings) deep."""
    for _ in range(depth):
        leaf = [leaf] if kind == "list" else {"a": leaf}
    return leaf


deep = st.builds(nest, st.integers(1, 120), scalars, st.sampled_from(["list", "map"]))
values = st.one_of(
    st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4),
                 max_leaves=10),
    deep,
)


def distribution(draw: Callable[[st.SearchStrategy[Any]], Any]) -> Any:
    """Draw a distribution as written in YAML: a number, a mapping of a family, or something else."""
    family = draw(st.sampled_from(["number", "fixed", "uniform", "exponential", "lognormal", "triangular",
                                   "nodist", "unknown"]))
    fields = {"number": [], "fixed": ["value"], "uniform": ["low", "high"], "exponential": ["mean"],
              "lognormal": ["median", "p90"], "triangular": ["low", "mode", "high"], "nodist": ["median", "p90"],
              "unknown": ["value"]}[family]
    if family == "number":
        return draw(numbers)
    out: dict[str, Any] = {} if family == "nodist" else {"dist": "gamma" if family == "unknown" else family}
    for name in fields:
        out[name] = draw(numbers)
    return out


# --- data-level mutations -----------------------------------------------------------------------------

MINI_DATA: dict[str, Any] = yaml.safe_load(MINI)


def walk(node: Any, path: PathT = ()) -> Iterator[tuple[PathT, Any]]:
    """Yield (path, value) for ``node`` and everything inside it."""
    yield path, node
    if isinstance(node, dict):
        for k, v in node.items():
            yield from walk(v, (*path, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from walk(v, (*path, i))


def at(doc: Any, path: PathT) -> Any:
    """Return the value at ``path``."""
    for part in path:
        doc = doc[part]
    return doc


def dotted(path: PathT) -> str:
    """Return a variant-style field path: ``access.0.p_success``."""
    return ".".join(str(p) for p in path)


VARIANT_PATHS = sorted({dotted(p) for p, _ in walk(MINI_DATA) if p and p[0] != "variants"}) + [
    "", ".", "a..b", "wallets.", "access.9.p_success", "access.-1.p_success", "access.².p_success",
    "access.١.p_success", "access.0.p_success.x", "wallets.hot.balance.x", "wallets.nope.balance",
    "wallets.mian.balance", "settings.trials", "settings.horizon_days", "name", "baseline_name", "variants.x",
    "wallets.hot.topup", "wallets.main.policy.delay", "wallets.main.policy.delay.hours", "controls.detection.edr",
    "operations.transfers", "threats.tt.drain_interval_minutes", "assets.ETH.price_usd", "wallets.hot.x.y.z",
]

SECTION_PATHS: list[PathT] = [
    ("operations",), ("wallets", "main", "policy"), ("wallets", "hot", "policy"), ("threats", "tt"),
    ("controls", "detection"), ("controls", "response"), ("people", "signer", "insider_rate_per_year"),
    ("assets", "BTC", "price_path"), ("access",), ("wallets", "hot", "sweep_to"),
]


def section(draw: Callable[[st.SearchStrategy[Any]], Any], path: PathT) -> Any:
    """Draw plausible content, with extreme numbers, for an optional section the MINI scenario lacks."""
    ids = st.sampled_from(ID_LIKE)
    if path == ("operations",):
        return {"transfers": [{"from": draw(ids), "to": draw(ids), "amount": draw(numbers),
                               "every_days": draw(numbers), "first_day": draw(numbers),
                               "signing_hours": draw(numbers)}]}
    if path[-1] == "policy":
        rules = {"per_transfer_limit": {"amount": draw(numbers)}, "daily_limit": {"amount": draw(numbers)},
                 "whitelist": {}, "delay": {"hours": draw(numbers)}}
        chosen = draw(st.lists(st.sampled_from(sorted(rules)), min_size=1, unique=True))
        return {r: {**rules[r], "enforced_by": draw(st.sampled_from(["chain", "pe", "hsm", "comms", None]))}
                for r in chosen}
    if path == ("threats", "tt"):
        return {"campaigns_per_year": draw(numbers), "skill": draw(numbers), "drain_interval_minutes": draw(numbers),
                "tampering": draw(st.sampled_from(["redirect", "amount", "takeover", "steal"])),
                "initial_access": [{"technique": "fake_recruiter_test", "targets": ["eng"],
                                    "delay_days": distribution(draw)}]}
    if path == ("controls", "detection"):
        return {"edr": {"watches": draw(st.lists(ids, max_size=3)), "time_to_detect_days": distribution(draw)}}
    if path == ("controls", "response"):
        return {name: distribution(draw) for name in
                ("freeze_delay_hours", "revoke_delay_hours", "key_rotation_hours")} | {
                    "recovered_fraction": draw(numbers)}
    if path == ("assets", "BTC", "price_path"):
        return draw(st.lists(st.lists(numbers, min_size=2, max_size=2), max_size=4))
    if path == ("access",):
        edges = copy.deepcopy(MINI_DATA["access"])
        edges.append({"from": draw(ids), "to": draw(ids), "p_success": draw(numbers), "time_days": distribution(draw)})
        return edges
    if path == ("wallets", "hot", "sweep_to"):
        return draw(ids)
    return draw(numbers)


def mutate_data(draw: Callable[[st.SearchStrategy[Any]], Any], doc: dict[str, Any]) -> None:
    """Apply one random mutation to ``doc`` in place."""
    kind = draw(st.sampled_from(["drop", "add_key", "replace", "number", "rename_ref", "rename_id",
                                 "variant_set", "copy", "section"]))
    every = [p for p, _ in walk(doc) if p]
    if not every:
        doc[draw(keys)] = draw(values)
        return
    if kind == "drop":
        path = draw(st.sampled_from(every))
        del at(doc, path[:-1])[path[-1]]
    elif kind == "add_key":
        mappings = [p for p, v in walk(doc) if isinstance(v, dict)]
        at(doc, draw(st.sampled_from(mappings)))[draw(keys)] = draw(values)
    elif kind == "replace":
        path = draw(st.sampled_from(every))
        at(doc, path[:-1])[path[-1]] = draw(values)
    elif kind == "number":
        leaves = [p for p, v in walk(doc) if p and isinstance(v, (int, float))] or every
        path = draw(st.sampled_from(leaves))
        at(doc, path[:-1])[path[-1]] = draw(numbers)
    elif kind == "rename_ref":
        leaves = [p for p, v in walk(doc) if p and isinstance(v, str)] or every
        path = draw(st.sampled_from(leaves))
        at(doc, path[:-1])[path[-1]] = draw(st.one_of(st.sampled_from(ID_LIKE), texts))
    elif kind == "rename_id":
        path = draw(st.sampled_from([p for p in every if isinstance(p[-1], str)] or every))
        parent = at(doc, path[:-1])
        if isinstance(parent, dict):
            new = draw(st.one_of(st.sampled_from(ID_LIKE), keys))
            renamed = {(new if k == path[-1] else k): v for k, v in parent.items()}
            parent.clear()
            parent.update(renamed)
    elif kind == "variant_set":
        variants = doc.get("variants")
        if not isinstance(variants, dict):
            variants = doc["variants"] = {}
        name = draw(st.one_of(st.sampled_from(["wl", "v2", "baseline"]), st.sampled_from(ID_LIKE)))
        variant = variants.setdefault(name, {})
        if not isinstance(variant, dict):
            variant = variants[name] = {}
        entries = variant.setdefault("set", {})
        if not isinstance(entries, dict):
            entries = variant["set"] = {}
        entries[draw(st.one_of(st.sampled_from(VARIANT_PATHS), texts))] = draw(st.one_of(numbers, values))
    elif kind == "copy":
        source, target = draw(st.sampled_from(every)), draw(st.sampled_from(every))
        if target[: len(source)] != source:
            at(doc, target[:-1])[target[-1]] = copy.deepcopy(at(doc, source))
    else:
        path = draw(st.sampled_from(SECTION_PATHS))
        try:
            parent = at(doc, path[:-1])
        except (KeyError, IndexError, TypeError):
            return
        if isinstance(parent, dict):
            parent[path[-1]] = section(draw, path)


def dump(draw: Callable[[st.SearchStrategy[Any]], Any], doc: Any) -> str:
    """Dump ``doc`` as YAML in a drawn style."""
    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=draw(st.booleans()),
                          default_flow_style=draw(st.sampled_from([False, None, True])),
                          width=draw(st.sampled_from([80, 10**6])))


@st.composite
def mutated_data_text(draw: Callable[[st.SearchStrategy[Any]], Any]) -> str:
    """The MINI scenario with 1 to 4 data-level mutations, dumped back to YAML."""
    doc = copy.deepcopy(MINI_DATA)
    for _ in range(draw(st.integers(1, 4))):
        mutate_data(draw, doc)
    return dump(draw, doc)


# --- text-level mutations -----------------------------------------------------------------------------

VALUE_START = re.compile(r"(?<=: )(?=\S)")  # where a value starts after "key: "
PLAIN_VALUE = re.compile(r"(?<=: )[^\s&*!|>{}\[\],#'\"][^,{}\[\]\n#]*")  # a plain scalar value
FLOW_MAP = re.compile(r"\{")
TAGGED = [
    "!!python/object/apply:os.system ['echo pwned']", "!!python/name:os.system", "!!python/tuple [1, 2]",
    "!!binary aGVsbG8=", "!!set {a, b}", "!!omap [a: 1, b: 2]", "!!pairs [a: 1]", "!!timestamp 2024-06-01",
    "!!float nan", "!!float ''", "!!float 1e999", "!!int ''", "!!int 0x", "!!int many", "!!int 0b102",
    "!!bool maybe", "!!bool ''", "!!null x", "!!str 5", "!!map {a: 1}", "!!seq [1]", "!!map 5", "!!str [1]",
    "!!merge x", "!!value x", "!custom x", "! 5", "!<tag:yaml.org,2002:python/name:os.system> x", "!!yaml x",
    "!<!> x", "!!binary '!!!'",
]
LITERALS = [
    ".nan", ".NaN", ".inf", "-.inf", "1e999", "-1e999", "0x1F", "0o17", "017", "0b101", "1_000", "+1", "1:30",
    "190:20:30.15", "~", "null", "yes", "No", "on", "2024-06-01", "2001-12-14t21:59:43.10-05:00", "=", "<<",
    "'='", '"\\x00"', '"\\uD800"', '"\\U0010FFFF"', "|\n  block", ">-\n  folded", "[]", "{}", "[1, [2, [3]]]",
    "'unterminated", '"unterminated', "*undefined", "&lonely", "&a *a", "? complex", "- list item", "@", "`",
    "%", "#comment", "a: b", "{a: 1, a: 2}", "{<<: [1, 2]}", "[*a]", "9" * 400, "-" + "9" * 400,
]
JUNK = st.one_of(
    st.characters(),
    st.sampled_from(list(":-?#&*!|>'\"%@`{}[],\t\r\n \x00\x07\x1b\x7f\x85\xa0\ufeff\u2028\u2029\ufffe\uffff")),
)


def mutate_text(draw: Callable[[st.SearchStrategy[Any]], Any], text: str) -> str:
    """Apply one random text-level mutation to ``text``."""
    kind = draw(st.sampled_from(["anchor_alias", "merge", "tag", "literal", "dup_line", "drop_line", "indent",
                                 "junk", "bytes", "truncate", "line_ends", "directive", "swap_lines"]))
    lines = text.splitlines(keepends=True) or [""]
    starts = [m.start() for m in VALUE_START.finditer(text)]
    plain = [(m.start(), m.end()) for m in PLAIN_VALUE.finditer(text)]
    name = draw(st.sampled_from(["a", "b", "x1", "ü", "a" * 50]))
    if kind == "anchor_alias" and starts and plain:
        begin, end = draw(st.sampled_from(plain))
        text = text[:begin] + "*" + name + text[end:]
        if draw(st.booleans()):  # an anchor before or after the alias, or none (undefined alias)
            pos = draw(st.sampled_from([m.start() for m in VALUE_START.finditer(text)]))
            text = text[:pos] + f"&{name} " + text[pos:]
    elif kind == "merge":
        braces = [m.start() for m in FLOW_MAP.finditer(text)]
        if len(braces) >= 2:
            anchored, merging = draw(st.sampled_from(braces)), draw(st.sampled_from(braces))
            merge = draw(st.sampled_from([f"<<: *{name}, ", f"<<: [*{name}, *{name}], ", f"<<: {{k: *{name}}}, ",
                                          "<<: {a: 1}, ", "<<: 5, ", f"<<: *{name}, <<: *{name}, "]))
            edits = sorted([(anchored, f"&{name} ", 0), (merging + 1, merge, 1)], reverse=True)
            for pos, insert, _ in edits:
                text = text[:pos] + insert + text[pos:]
    elif kind in ("tag", "literal") and plain:
        begin, end = draw(st.sampled_from(plain))
        text = text[:begin] + draw(st.sampled_from(TAGGED if kind == "tag" else LITERALS)) + text[end:]
    elif kind == "dup_line":
        i = draw(st.integers(0, len(lines) - 1))
        text = "".join(lines[: i + 1] + lines[i:])
    elif kind == "drop_line":
        i = draw(st.integers(0, len(lines) - 1))
        text = "".join(lines[:i] + lines[i + 1:])
    elif kind == "swap_lines":
        i, j = draw(st.integers(0, len(lines) - 1)), draw(st.integers(0, len(lines) - 1))
        lines[i], lines[j] = lines[j], lines[i]
        text = "".join(lines)
    elif kind == "indent":
        i = draw(st.integers(0, len(lines) - 1))
        prefix = draw(st.sampled_from([" ", "  ", "\t", "    "]))
        lines[i] = prefix + lines[i] if draw(st.booleans()) else lines[i][len(prefix):]
        text = "".join(lines)
    elif kind == "junk":
        pos = draw(st.integers(0, len(text)))
        text = text[:pos] + draw(st.text(JUNK, min_size=1, max_size=6)) + text[pos:]
    elif kind == "bytes":
        pos = draw(st.integers(0, len(text)))
        raw = draw(st.binary(min_size=1, max_size=16))
        junk = raw.decode(draw(st.sampled_from(["latin-1", "cp437"])), errors="replace")
        if draw(st.booleans()):
            junk = raw.decode("utf-8", errors="surrogateescape")  # lone surrogates: only possible from the API
        text = text[:pos] + junk + text[pos:]
    elif kind == "truncate":
        text = text[: draw(st.integers(0, len(text)))]
    elif kind == "line_ends":
        text = text.replace("\n", draw(st.sampled_from(["\r\n", "\r", "\x85", "\u2028", "\n\n"])))
    elif kind == "directive":
        text = draw(st.sampled_from([
            "%YAML 1.1\n---\n", "%YAML 1.3\n---\n", "%YAML 2.0\n---\n", "%TAG !! tag:yaml.org,2002:python/\n---\n",
            "%TAG !p! tag:yaml.org,2002:python/object/apply:\n---\n", "---\n", "--- !!map\n", "--- !!set\n",
            "\ufeff", "...\n", "--- |\n", "%FOO bar\n---\n",
        ])) + text + draw(st.sampled_from(["", "...\n", "---\n", "--- x\n", "\x00"]))
    return text


@st.composite
def mutated_text(draw: Callable[[st.SearchStrategy[Any]], Any]) -> str:
    """The MINI scenario's text (now and then a data-mutated dump of it) with 1 to 3 text mutations."""
    text = draw(st.one_of(st.just(MINI), mutated_data_text()))
    for _ in range(draw(st.integers(1, 3))):
        text = mutate_text(draw, text)
    return text


# --- the properties -----------------------------------------------------------------------------------


def test_mini_passes_the_checks() -> None:
    """The unmutated scenario loads and runs within the limits (a control for the properties)."""
    assert check(MINI) is not None


@fuzz(150)
@given(mutated_data_text())
def test_mutated_data_loads_or_fails_clearly(text: str) -> None:
    """Mutated scenario data gives a 3-trial run or one-line problems with a path or line, fast."""
    note(f"scenario text:\n{text}")
    check(text)


@fuzz(250)
@given(mutated_text())
def test_mutated_text_loads_or_fails_clearly(text: str) -> None:
    """Mutated scenario text (aliases, merges, tags, junk, truncation) gives a run or clear problems, fast."""
    note(f"scenario text:\n{text}")
    check(text)


@fuzz(60)
@given(st.text(max_size=200) | st.binary(max_size=200).map(lambda b: b.decode("latin-1")))
def test_arbitrary_text_fails_clearly(text: str) -> None:
    """Arbitrary text, unrelated to any scenario, gives clear problems (it cannot be a valid scenario)."""
    assert check(text) is None


def file_bytes() -> st.SearchStrategy[bytes]:
    """Bytes of a scenario file: mutated text in UTF-8 (with or without a BOM) or UTF-16, or raw junk."""
    encoded = mutated_text().flatmap(lambda t: st.sampled_from([
        t.encode("utf-8", "surrogateescape"), b"\xef\xbb\xbf" + t.encode("utf-8", "surrogateescape"),
        t.encode("utf-16", "surrogatepass"), t.encode("latin-1", "replace"),
    ]))
    spliced = st.tuples(st.integers(0, len(MINI)), st.binary(min_size=1, max_size=8)).map(
        lambda cut: MINI.encode()[: cut[0]] + cut[1] + MINI.encode()[cut[0]:])
    return st.one_of(encoded, spliced, st.binary(max_size=300), st.just(MINI.encode()))


@pytest.fixture(scope="module")
def cli_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder for the CLI property's files (module-scoped: hypothesis reruns the test in one call)."""
    return tmp_path_factory.mktemp("fuzz-cli")


@fuzz(25)
@given(raw=file_bytes())
def test_cli_validate_exits_0_or_1_without_traceback(cli_folder: Path, raw: bytes) -> None:
    """'custodysim validate FILE' on any bytes exits 0 or 1 with a message, never with a traceback."""
    path = cli_folder / "scenario.yaml"
    path.write_bytes(raw)
    result = within(LOAD_SECONDS * 2, "validate", CliRunner().invoke, app, ["validate", str(path)])
    assert not isinstance(result, ScenarioError)
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code in (0, 1), result.output
    assert "Traceback" not in result.output
    if result.exit_code == 0:
        assert "valid scenario" in result.stdout
    else:
        assert result.stderr.startswith(f"{path}: "), result.stderr
        assert result.stdout == ""


# --- explicit traps not covered in tests/test_loader_errors.py ----------------------------------------


def _problems(text: str) -> list[Problem]:
    result = within(LOAD_SECONDS, "load", load_scenario_text, text, "s.yaml")
    assert isinstance(result, ScenarioError), "loaded, expected a ScenarioError"
    assert_clear(result, text)
    return result.problems


def _only(text: str) -> Problem:
    problems = _problems(text)
    assert len(problems) == 1, problems
    return problems[0]


def _bomb(levels: int, width: int = 9, mapping: bool = False) -> str:
    """Return an alias bomb of ``levels`` levels of ``width`` aliases (lists, or mappings with distinct keys)."""
    def level(i: int) -> str:
        if mapping:
            return "{" + ", ".join(f"k{j}: *a{i - 1}" for j in range(width)) + "}"
        return "[" + ", ".join([f"*a{i - 1}"] * width) + "]"
    lines = [f"a0: &a0 [{', '.join(['lol'] * width)}]"]
    lines += [f"a{i}: &a{i} {level(i)}" for i in range(1, levels + 1)]
    return "name: x\n" + "\n".join(lines) + "\n"


def _merge_bomb(levels: int) -> str:
    inner = "&a0 {k0: 0, k1: 1, k2: 2, k3: 3, k4: 4, k5: 5, k6: 6, k7: 7, k8: 8}"
    for i in range(1, levels + 1):
        inner = f"&a{i} {{<<: [{inner}, {', '.join([f'*a{i - 1}'] * 8)}]}}"
    return f"name: x\nb: {inner}\n"

def _refusal_peak_bytes(text: str) -> int:
    """Return the peak memory traced while ``text`` is loaded and refused."""
    tracemalloc.start()
    try:
        with pytest.raises(ScenarioError):
            load_scenario_text(text)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()



@pytest.mark.parametrize("text", [
    pytest.param(_bomb(9), id="lists-9^10"),
    pytest.param(_bomb(30), id="lists-9^31"),
    pytest.param(_bomb(30, mapping=True), id="mappings-9^31"),
    pytest.param(_bomb(60, width=2), id="lists-2^61"),
    pytest.param(_merge_bomb(20), id="merges-9^21"),
])
def test_alias_bombs_bounded_in_time_and_memory(text: str) -> None:
    """Alias and merge bombs of up to 10^30 values are refused in under 2 s with under 200 MB at peak."""
    p = _only(text)  # timed without tracemalloc, which slows allocation several times over
    assert f"more than {MAX_NODES} values" in p.message or "nesting deeper" in p.message
    assert _refusal_peak_bytes(text) < 200e6


def test_large_flat_file_refused_before_it_is_all_parsed(monkeypatch: pytest.MonkeyPatch) -> None:
    """A file of a million plain values (no aliases) is refused once MAX_SOURCE_NODES are composed, and small."""
    text = "name: x\nlots: [" + "1," * 1_000_000 + "]\n"
    composed = 0
    compose_node = yamlsource._Loader.compose_node

    def counted(self: yamlsource._Loader, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        nonlocal composed
        composed += 1
        return compose_node(self, parent, index)

    monkeypatch.setattr(yamlsource._Loader, "compose_node", counted)
    # Counted, not timed: refusing takes about 1 s here (PyYAML composes 50,000 values), too close to
    # LOAD_SECONDS to time on a busy machine; composing the whole file would take some 20 s. One load is
    # both counted and traced (tracemalloc slows it several times over: the hang limit allows for that).
    tracemalloc.start()
    try:
        result = within(4 * HANG_SECONDS, "load", load_scenario_text, text, "s.yaml")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert isinstance(result, ScenarioError) and len(result.problems) == 1, result
    p = result.problems[0]
    assert p.line == 2 and f"more than {MAX_SOURCE_NODES} values" in p.message
    assert "alias" not in p.message
    assert composed == MAX_SOURCE_NODES + 1
    assert peak < 200e6


@pytest.mark.parametrize(("old", "new", "needle"), [
    ("seed: 1}", "seed: 1, seed: 2}", "seed: 2"),  # in a flow mapping
    (VARIANT_SET, VARIANT_SET + "      wallets.main.policy.whitelist: {enforced_by: hsm}\n", "enforced_by: hsm"),  # in 'set'
    ("exposure: {fake_recruiter_test: 0.5}", "exposure: {fake_recruiter_test: 0.5, fake_recruiter_test: 1}",
     "exposure"),  # a free-form key (a technique name), not a field
])
def test_duplicate_keys_in_other_places_rejected(old: str, new: str, needle: str) -> None:
    """A key given twice in a flow mapping, a variant's 'set' or a map of techniques is refused, not last-wins."""
    text = edit(old, new)
    p = _only(text)
    assert "duplicate key" in p.message
    assert p.line == line_of(text, needle)


@pytest.mark.parametrize(("key", "shown"), [("1.5", "1.5"), ("2024-06-01", "2024-06-01"), ("{a: 1}", "mapping"),
                                            ("!!binary aGk=", "tagged")])
def test_other_non_string_keys_refused(key: str, shown: str) -> None:
    """A float, date, mapping or tagged key is refused like the int/bool/null/list keys of the loader tests."""
    text = edit("exposure: {fake_recruiter_test: 0.5}", f"exposure: {{fake_recruiter_test: 0.5, {key}: 0.5}}")
    p = _only(text)
    assert "keys must be plain text" in p.message and shown in p.message
    assert p.line == line_of(text, "exposure:")


@pytest.mark.parametrize("tagged", ["!!binary aGVsbG8=", "!!omap [a: 1]", "!!pairs [a: 1]", "!custom x",
                                    "!<tag:yaml.org,2002:python/name:os.system> x", "!!python/tuple [1, 2]"])
def test_other_tags_refused(tagged: str) -> None:
    """Binary, ordered-map, pairs, local and verbatim python tags are refused at their field (see loader tests)."""
    text = edit("    description: whitelist enforced by the policy engine\n", f"    description: {tagged}\n")
    p = _only(text)
    assert p.path == ("variants", "wl", "description")
    assert "unsupported YAML tag" in p.message


def test_tag_directive_cannot_smuggle_python_tags() -> None:
    """A %TAG directive that maps '!!' to python/ does not make '!!str' construct objects."""
    text = "%TAG !! tag:yaml.org,2002:python/\n---\n" + edit("name: mini", "name: !!str mini")
    p = _only(text)
    assert p.path == ("name",) and "unsupported YAML tag" in p.message


@pytest.mark.parametrize("tagged", ["!!bool maybe", "!!bool ''", "!!int ''", "!!float ''", "!!int 0x", "!!int 0b2"])
def test_explicit_scalar_tags_with_bad_values(tagged: str) -> None:
    """A core tag with a value it cannot take gives a problem at the field, not a KeyError or IndexError."""
    text = edit("trials: 200", f"trials: {tagged}")
    p = _only(text)
    assert p.path == ("settings", "trials")
    assert p.line == line_of(text, "trials:")
    assert "is not a valid" in p.message


@pytest.mark.parametrize("value", ["=", "<<"])
def test_equals_and_double_angle_are_text(value: str) -> None:
    """A plain '=' or '<<' value is text (YAML 1.1 gives them special tags), not an 'unsupported tag'."""
    loaded = load_scenario_text(edit("    description: whitelist enforced by the policy engine\n",
                                     f"    description: {value}\n"))
    assert loaded.baseline.variants["wl"].description == value


def test_lone_surrogates_in_text_are_a_problem() -> None:
    """Text holding lone surrogates (as from 'surrogateescape' decoding) gives a problem, not an encode error."""
    p = _only(edit("tier: warm", "tier: wa\udce9rm"))
    assert p.line == line_of(MINI, "tier: warm") and "U+DCE9" in p.message


@pytest.mark.parametrize("key", ["a\nb", "tab\there", "nel\x85", "ls\u2028", ""])
def test_odd_keys_render_on_one_line(key: str) -> None:
    """A key holding a line break or other invisible character is quoted in the path, keeping one line."""
    quoted = '"' + repr(key)[1:-1] + '"'  # YAML's double-quoted escapes include Python's \n, \t, \x85, \u2028
    text = edit("exposure: {fake_recruiter_test: 0.5}", f"exposure: {{fake_recruiter_test: 0.5, {quoted}: 2}}")
    p = _only(text)
    assert p.path == ("people", "eng", "exposure", key)
    assert repr(key) in p.render()


@pytest.mark.parametrize("path", ["access.²", "access.².p_success", "access.١.p_success"])
def test_variant_path_with_unicode_digits(path: str) -> None:
    """A variant path whose 'index' is a superscript or Arabic-Indic digit is a problem, not a ValueError."""
    text = edit(VARIANT_SET, f"      {path}: 0.5\n")
    p = _only(text)
    assert p.path == ("variants", "wl", "set", path)
    assert p.line == line_of(text, path)


@pytest.mark.parametrize(("old", "new", "where"), [
    ("\nvariants:", "\noperations: {transfers: [{from: main, to: external, amount: 1, every_days: 1e-300}]}\n"
     "variants:", ("operations", "transfers", 0, "every_days")),
    ("\nvariants:", "\noperations: {transfers: [{from: main, to: external, amount: 1, every_days: 0.0001}]}\n"
     "variants:", ("operations", "transfers", 0, "every_days")),
    ("withdrawals_per_day: 50,", "withdrawals_per_day: 1e6,", ("wallets", "hot", "topup")),
    ("    campaigns_per_year: 1\n", "    campaigns_per_year: 1\n    drain_interval_minutes: 1e-300\n",
     ("threats", "tt", "drain_interval_minutes")),
])
def test_work_beyond_the_per_trial_bound_refused(old: str, new: str, where: PathT) -> None:
    """Transfers so frequent that one trial would simulate millions of them are refused, not left to hang."""
    text = edit(old, new)
    if where[:2] == ("wallets", "hot"):  # a source that never runs dry and no signing time: refills back to back
        text = edit("signing_hours: 2", "signing_hours: 0", edit("balance: 5000", "balance: 1e10", text))
    p = _only(text)
    assert p.path == where
    assert "a trial can simulate" in p.message


@pytest.mark.parametrize("dist", ["{dist: lognormal, median: 1, p90: 1e300}",
                                  "{dist: exponential, mean: 1e307}"])
def test_distribution_whose_draws_overflow_refused(dist: str) -> None:
    """A distribution whose largest draws (or mean) overflow a float is refused at its field."""
    text = edit("{dist: lognormal, median: 40, p90: 80}", dist)
    p = _only(text)
    assert p.path == ("access", 0, "time_days")
    assert "overflow" in p.message
