"""Scenario errors a person can act on: each names the field path and the YAML line, all at once."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from conftest import MINI, VARIANT_SET, edit, line_of

from custodysim.errors import Problem, ScenarioError
from custodysim.scenario.loader import load_scenario, load_scenario_text


def problems_of(text: str) -> list[Problem]:
    """Load ``text``, expecting a ScenarioError, and return its problems."""
    with pytest.raises(ScenarioError) as info:
        load_scenario_text(text, source="s.yaml")
    assert info.value.problems, "a ScenarioError without problems"
    return info.value.problems


def only_problem(text: str) -> Problem:
    """Load ``text`` and return its one problem."""
    problems = problems_of(text)
    assert len(problems) == 1, problems
    return problems[0]


def problem_at(problems: list[Problem], path: tuple[str | int, ...]) -> Problem:
    """Return the one problem at ``path``."""
    hits = [p for p in problems if p.path == path]
    assert len(hits) == 1, problems
    return hits[0]


def test_mini_is_valid() -> None:
    """The scenario the other tests break is valid, variant included."""
    loaded = load_scenario_text(MINI)
    assert list(loaded.variants) == ["wl"]
    assert loaded.warnings == ()


# --- unknown keys -----------------------------------------------------------------------------------


def test_unknown_key_suggests_threshold() -> None:
    """A misspelt nested key is reported at its own path and line, with 'did you mean'."""
    text = edit("      scheme: single\n", "      scheme: single\n      thresold: 1\n")
    p = only_problem(text)
    assert p.path == ("wallets", "main", "custody", "thresold")
    assert p.line == line_of(text, "thresold:")
    assert "unknown field 'thresold'" in p.message
    assert "did you mean 'threshold'?" in p.message


def test_unknown_key_suggests_balance() -> None:
    """A misspelt required key gives 'did you mean' at its line, besides the missing field."""
    text = edit("    balance: 5000\n", "    balanse: 5000\n")
    problems = problems_of(text)
    unknown = problem_at(problems, ("wallets", "main", "balanse"))
    assert unknown.line == line_of(text, "balanse:")
    assert "did you mean 'balance'?" in unknown.message
    missing = problem_at(problems, ("wallets", "main", "balance"))
    assert missing.message == "required field is missing"
    assert missing.line == line_of(text, "  main:")


def test_unknown_key_without_close_match_lists_allowed_fields() -> None:
    """An unknown key like nothing allowed lists the fields allowed at that place."""
    text = edit("    pipeline: [comms]\n", "    pipeline: [comms]\n    zzz: 1\n")
    p = only_problem(text)
    assert p.path == ("wallets", "main", "zzz")
    assert p.line == line_of(text, "zzz:")
    assert "did you mean" not in p.message
    assert "allowed here:" in p.message and "balance" in p.message and "custody" in p.message


# --- wrong types ------------------------------------------------------------------------------------


def test_wrong_type_text_for_number() -> None:
    """Text where a number belongs is reported at the field, showing the value given."""
    text = edit("    balance: 5000\n", "    balance: lots\n")
    p = only_problem(text)
    assert p.path == ("wallets", "main", "balance")
    assert p.line == line_of(text, "balance: lots")
    assert "valid number" in p.message and "'lots'" in p.message


def test_wrong_type_scalar_for_mapping() -> None:
    """A single value where a mapping belongs is reported at that field."""
    block = ("    custody:\n      scheme: single\n      signers:\n"
             "        - {id: k1, holder: signer, key_store: hsm}\n")
    text = edit(block, "    custody: single\n")
    p = only_problem(text)
    assert p.path == ("wallets", "main", "custody")
    assert p.line == line_of(text, "custody: single")
    assert "dictionary" in p.message


def test_wrong_choice_for_literal() -> None:
    """A value outside an enumeration is reported with the value given."""
    text = edit("    tier: warm\n", "    tier: lukewarm\n")
    p = only_problem(text)
    assert p.path == ("wallets", "main", "tier")
    assert p.line == line_of(text, "lukewarm")
    assert "'hot', 'warm' or 'cold'" in p.message and "lukewarm" in p.message


# --- values out of range ----------------------------------------------------------------------------


def test_probability_above_one_in_list_item() -> None:
    """A probability above 1 inside a list item is reported at access[0].p_success."""
    text = edit("p_success: 0.8", "p_success: 1.5")
    p = only_problem(text)
    assert p.path == ("access", 0, "p_success")
    assert p.line == line_of(text, "p_success: 1.5")
    assert "less than or equal to 1" in p.message and "1.5" in p.message


def test_probability_below_zero_in_mapping_value() -> None:
    """A negative probability keyed by a technique name is reported at that key."""
    text = edit("exposure: {fake_recruiter_test: 0.5}", "exposure: {fake_recruiter_test: -0.1}")
    p = only_problem(text)
    assert p.path == ("people", "eng", "exposure", "fake_recruiter_test")
    assert p.line == line_of(text, "-0.1")
    assert "greater than or equal to 0" in p.message


def test_threshold_above_signers_is_m_greater_than_n() -> None:
    """A 2-of-1 multisig is reported as m > n at the custody block."""
    text = edit("      scheme: single\n", "      scheme: multisig\n      threshold: 2\n")
    p = only_problem(text)
    assert p.path == ("wallets", "main", "custody")
    assert p.line == text.splitlines().index("    custody:") + 1
    assert "m > n" in p.message and "threshold 2" in p.message


def test_negative_balance() -> None:
    """A negative balance is reported at the balance line."""
    text = edit("    balance: 100\n", "    balance: -100\n")
    p = only_problem(text)
    assert p.path == ("wallets", "hot", "balance")
    assert p.line == line_of(text, "balance: -100")
    assert "greater than or equal to 0" in p.message and "-100" in p.message


# --- references -------------------------------------------------------------------------------------


def test_reference_to_missing_person() -> None:
    """A signer held by a person who does not exist is reported with 'did you mean'."""
    text = edit("holder: signer,", "holder: signr,")
    p = only_problem(text)
    assert p.path == ("wallets", "main", "custody", "signers", 0, "holder")
    assert p.line == line_of(text, "holder: signr")
    assert p.message == "no person with id 'signr' (did you mean 'signer'?)"


def test_reference_to_missing_wallet() -> None:
    """A top-up from a wallet that does not exist is reported at topup.source."""
    text = edit("topup: {source: main,", "topup: {source: cold,")
    p = only_problem(text)
    assert p.path == ("wallets", "hot", "topup", "source")
    assert p.line == line_of(text, "source: cold")
    assert "no wallet with id 'cold'" in p.message


# --- all at once ------------------------------------------------------------------------------------


def test_two_independent_problems_both_reported() -> None:
    """An unknown key and an out-of-range value in different places are both reported."""
    text = edit("      scheme: single\n", "      scheme: single\n      thresold: 1\n")
    text = edit("p_success: 0.8", "p_success: 1.5", text)
    problems = problems_of(text)
    assert len(problems) == 2
    assert problem_at(problems, ("wallets", "main", "custody", "thresold")).line == line_of(text, "thresold")
    assert problem_at(problems, ("access", 0, "p_success")).line == line_of(text, "p_success: 1.5")


def test_two_dangling_references_both_reported() -> None:
    """Two dangling references are both reported, each at its own line."""
    text = edit("holder: signer,", "holder: signr,")
    text = edit("{from: eng, to: comms,", "{from: eng, to: comms2,", text)
    problems = problems_of(text)
    assert len(problems) == 2
    assert problem_at(problems, ("wallets", "main", "custody", "signers", 0, "holder")).line == line_of(
        text, "signr")
    assert problem_at(problems, ("access", 0, "to")).line == line_of(text, "comms2")


def test_scenario_error_renders_file_line_path_message() -> None:
    """The rendered error has a header and one 'file:line: path: message' line per problem."""
    text = edit("    balance: 5000\n", "    balance: -5\n")
    with pytest.raises(ScenarioError) as info:
        load_scenario_text(text, source="s.yaml")
    rendered = str(info.value)
    assert rendered.splitlines()[0] == "s.yaml: 1 problem found"
    assert f"  s.yaml:{line_of(text, 'balance: -5')}: wallets.main.balance: " in rendered


# --- variants ---------------------------------------------------------------------------------------


def test_variant_sets_field_that_does_not_exist() -> None:
    """A variant setting a misspelt field points at its set entry, with 'did you mean'."""
    text = edit(VARIANT_SET, "      wallets.main.custody.thresold: 2\n")
    p = only_problem(text)
    assert p.path == ("variants", "wl", "set", "wallets.main.custody.thresold")
    assert p.line == line_of(text, "wallets.main.custody.thresold")
    assert "unknown field 'thresold'" in p.message and "did you mean 'threshold'?" in p.message


def test_variant_sets_field_of_wallet_that_does_not_exist() -> None:
    """A variant naming a wallet that does not exist points at its set entry, with 'did you mean'."""
    text = edit(VARIANT_SET, "      wallets.mian.balance: 10\n")
    p = only_problem(text)
    assert p.path == ("variants", "wl", "set", "wallets.mian.balance")
    assert p.line == line_of(text, "wallets.mian.balance")
    assert "'mian'" in p.message and "did you mean 'main'?" in p.message


def test_variant_producing_m_greater_than_n() -> None:
    """A variant raising the threshold above the signers points at its set entry and says m > n."""
    text = edit(VARIANT_SET, VARIANT_SET + "      wallets.main.custody.threshold: 2\n")
    p = only_problem(text)
    assert p.path == ("variants", "wl", "set", "wallets.main.custody.threshold")
    assert p.line == line_of(text, "wallets.main.custody.threshold")
    assert "wallets.main.custody" in p.message and "m > n" in p.message


def test_variant_value_out_of_range() -> None:
    """A variant setting a negative balance points at its set entry."""
    text = edit(VARIANT_SET, VARIANT_SET + "      wallets.hot.balance: -1\n")
    p = only_problem(text)
    assert p.path == ("variants", "wl", "set", "wallets.hot.balance")
    assert p.line == line_of(text, "wallets.hot.balance")
    assert "greater than or equal to 0" in p.message


def test_variant_reference_to_missing_system() -> None:
    """A variant whose value names a missing system points at its set entry."""
    text = edit(VARIANT_SET, "      wallets.main.policy.whitelist: {enforced_by: pee}\n")
    p = only_problem(text)
    assert p.path == ("variants", "wl", "set", "wallets.main.policy.whitelist")
    assert p.line == line_of(text, "enforced_by: pee")
    assert "no system" in p.message and "'pee'" in p.message and "did you mean 'pe'?" in p.message


def test_problems_of_two_variants_both_reported() -> None:
    """Problems in two variants are reported together, each at its own set entry."""
    text = MINI + ("  wl2:\n    set:\n      wallets.hot.tier: tepid\n"
                   "  wl3:\n    set:\n      settings.trials: 0\n")
    text = edit(VARIANT_SET, "      wallets.main.custody.thresold: 2\n", text)
    problems = problems_of(text)
    assert len(problems) == 3
    for path, needle in [(("variants", "wl", "set", "wallets.main.custody.thresold"), "thresold"),
                         (("variants", "wl2", "set", "wallets.hot.tier"), "wallets.hot.tier"),
                         (("variants", "wl3", "set", "settings.trials"), "settings.trials")]:
        assert problem_at(problems, path).line == line_of(text, needle)


def test_unknown_variant_requested() -> None:
    """Asking for a variant that does not exist names it and lists the variants."""
    loaded = load_scenario_text(MINI)
    with pytest.raises(ScenarioError) as info:
        loaded.specs(["wll"])
    (p,) = info.value.problems
    assert p.path == ("variants",)
    assert "no variant named 'wll'" in p.message and "did you mean 'wl'?" in p.message


# --- YAML-level problems ----------------------------------------------------------------------------


def test_duplicate_key_rejected_not_last_wins() -> None:
    """A key given twice is refused at the second occurrence, not silently overwritten."""
    text = edit("    tier: warm\n", "    tier: warm\n    tier: cold\n")
    p = only_problem(text)
    assert p.path == ("wallets", "main", "tier")
    assert p.line == line_of(text, "tier: cold")
    assert "duplicate key" in p.message


def test_duplicate_id_rejected() -> None:
    """Two wallets with the same id are refused at the second one."""
    text = edit("\naccess:\n", "\n  main: {asset: BTC, tier: cold, balance: 1}\naccess:\n")
    p = only_problem(text)
    assert p.path == ("wallets", "main")
    assert p.line == line_of(text, "tier: cold, balance: 1")
    assert "duplicate key" in p.message


def test_duplicate_top_level_key_rejected() -> None:
    """A second 'wallets:' section is refused at its line, not merged or overwritten."""
    text = edit("controls:\n", "wallets:\n  cold: {asset: BTC}\ncontrols:\n")
    p = only_problem(text)
    assert p.path == ("wallets",)
    assert p.line == [n for n, line in enumerate(text.splitlines(), start=1) if line == "wallets:"][1]
    assert "duplicate key" in p.message


def test_merge_key_overrides_are_not_duplicates() -> None:
    """A '<<: *anchor' merge with an explicit key overriding it is valid YAML, not a duplicate."""
    text = edit("  main:\n", "  main: &main_wallet\n")
    text = edit("  hot:\n    asset: BTC\n", "  hot:\n    <<: *main_wallet\n", text)
    loaded = load_scenario_text(text)
    assert loaded.baseline.wallets["hot"].tier == "hot"
    assert loaded.baseline.wallets["hot"].pipeline == ["comms"]  # merged from main


def test_alias_of_mapping_with_merge_override_is_not_duplicate() -> None:
    """Reusing (by alias) a mapping whose explicit key overrides a merged one is no duplicate either."""
    text = edit("  main:\n", "  main: &main_wallet\n")
    text = edit("  hot:\n    asset: BTC\n    tier: hot\n",
                "  hot: &hot_wallet\n    <<: *main_wallet\n    tier: hot\n", text)
    text = edit(VARIANT_SET, "      wallets.hot: *hot_wallet\n", text)
    loaded = load_scenario_text(text)
    assert loaded.variants["wl"].wallets["hot"] == loaded.baseline.wallets["hot"]
    assert loaded.baseline.wallets["hot"].tier == "hot"


def test_merge_into_itself_refused() -> None:
    """A mapping merging its own anchor is one problem at its line, not a RecursionError."""
    text = edit("  main:\n    asset: BTC\n", "  main: &m\n    <<: *m\n    asset: BTC\n")
    problems = problems_of(text)
    assert any(p.path == ("wallets", "main") and "into itself" in p.message for p in problems), problems


def test_empty_id_reported_at_its_line() -> None:
    """An empty id is reported at its line, without pydantic's internal '[key]' in the path."""
    text = edit("  pe: {kind: policy_engine, owner: ex}\n",
                "  pe: {kind: policy_engine, owner: ex}\n  '': {kind: other, owner: ex}\n")
    p = only_problem(text)
    assert p.path == ("systems", "")
    assert p.line == line_of(text, "kind: other")
    assert "at least 1 character" in p.message


@pytest.mark.parametrize("tagged", [
    "!!python/name:os.system",
    "!!python/object/apply:os.system ['true']",
    "!!python/object:custodysim.scenario.schema.Settings {horizon_days: 1}",
    "!!python/object/new:dict {}",
    "!!set {a, b}",
])
def test_python_object_tags_refused(tagged: str) -> None:
    """Tags that would construct Python objects are refused at their line, on scalars and collections."""
    text = edit("settings: {horizon_days: 365, trials: 200, seed: 1}\n", f"settings: {tagged}\n")
    p = only_problem(text)
    assert p.path == ("settings",)
    assert p.line == line_of(text, "settings:")
    assert "unsupported YAML tag" in p.message


def test_python_object_tag_constructs_nothing(tmp_path: Path) -> None:
    """A tag that would call open() to create a file does not run."""
    target = tmp_path / "pwned"
    text = MINI + f"extra: !!python/object/apply:builtins.open [{str(target)!r}, 'w']\n"
    problems = problems_of(text)
    assert any("unsupported YAML tag" in p.message and p.path == ("extra",) for p in problems)
    assert not target.exists()


BILLION_LAUGHS = """\
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
"""


def test_billion_laughs_answered_quickly() -> None:
    """The classic alias bomb (10^9 strings) is refused within a couple of seconds."""
    start = time.perf_counter()
    p = only_problem(BILLION_LAUGHS)
    assert time.perf_counter() - start < 2
    assert "expands to more than" in p.message
    assert p.path[0] == "f"  # where the total passes the bound: at the alias inside 'f'
    assert p.line == line_of(BILLION_LAUGHS, "f: &f")


def test_recursive_alias_refused() -> None:
    """A list containing itself is refused at the alias, as nesting too deep."""
    p = only_problem("name: x\na: &a [1, *a]\n")
    assert p.path == ("a", 1) and p.line == 2
    assert "nesting deeper" in p.message


def _merge_bomb(levels: int) -> str:
    inner = "&a0 {k0: 0, k1: 1, k2: 2, k3: 3, k4: 4, k5: 5, k6: 6, k7: 7, k8: 8}"
    for i in range(1, levels + 1):
        inner = f"&a{i} {{<<: [{inner}, {', '.join([f'*a{i - 1}'] * 8)}]}}"
    return f"name: x\nb: {inner}\n"


def test_merge_key_bomb_answered_quickly() -> None:
    """An alias bomb built from nested '<<' merges (9^10 entries from 500 bytes) is refused quickly."""
    text = _merge_bomb(9)
    assert len(text) < 600
    start = time.perf_counter()
    p = only_problem(text)
    assert time.perf_counter() - start < 2
    assert "expands to more than" in p.message
    assert p.line == 2


def test_bad_merge_value_reported_at_line() -> None:
    """A '<<' merging something other than a mapping is one problem at its line, not a YAML dump."""
    text = edit("    tier: hot\n", "    tier: hot\n    <<: 5\n")
    p = only_problem(text)
    assert p.path == ("wallets", "hot")
    assert p.line == line_of(text, "<<: 5")
    assert "merge" in p.message and "\n" not in p.message


def test_deep_nesting_answered_without_recursion_error() -> None:
    """Thousands of nested brackets give a problem, not a RecursionError."""
    for text in ("name: x\na: " + "[" * 5000 + "]" * 5000 + "\n",
                 "name: x\na: " + "{a: " * 5000 + "1" + "}" * 5000 + "\n",
                 "name: x\na: " + "[" * 100 + "]" * 100 + "\n"):
        p = only_problem(text)
        assert "nest" in p.message
        assert p.line == 2


@pytest.mark.parametrize(("key", "shown"), [("1", "1"), ("no", "no"), ("~", "~"), ("[a, b]", "list")])
def test_non_string_keys_refused(key: str, shown: str) -> None:
    """A key that is a number, a YAML boolean, null or a list is refused at its line."""
    text = edit("  pe: {kind: policy_engine, owner: ex}\n",
                f"  pe: {{kind: policy_engine, owner: ex}}\n  {key}: {{kind: other, owner: ex}}\n")
    p = only_problem(text)
    assert p.path == ("systems",)
    assert p.line == line_of(text, "kind: other")
    assert "keys must be plain text" in p.message and shown in p.message
    assert "Node" not in p.message


def test_non_string_key_at_top_level() -> None:
    """A numeric top-level key is refused at its line."""
    text = MINI + "42: answer\n"
    p = only_problem(text)
    assert p.path == ()
    assert p.line == line_of(text, "42: answer")


def test_unreadable_yaml_reported_at_line() -> None:
    """A syntax error (unclosed bracket) is reported with the line it was found on."""
    text = edit("    pipeline: [comms]\n", "    pipeline: [comms\n")
    p = only_problem(text)
    assert p.path == ()
    assert p.message.startswith("not valid YAML")
    assert p.line == line_of(text, "  hot:")  # the parser notices at the next key


def test_tab_indentation_reported_at_line() -> None:
    """A tab used for indentation is reported at its line."""
    text = edit("    tier: warm\n", "\ttier: warm\n")
    p = only_problem(text)
    assert p.line == line_of(text, "tier: warm")
    assert "not valid YAML" in p.message


def test_second_document_refused() -> None:
    """A second '---' document is refused at its line."""
    text = MINI + "---\nname: other\n"
    p = only_problem(text)
    assert p.line == line_of(text, "---")
    assert "document" in p.message


def test_control_character_reported_not_raised() -> None:
    """A NUL or other control character gives a problem with its line, not a ReaderError traceback."""
    text = edit("    tier: warm\n", "    tier: wa\x00rm\n")
    p = only_problem(text)
    assert p.line == line_of(text, "tier: wa")
    assert "not valid YAML" in p.message and "\n" not in p.message


def test_explicit_scalar_tag_with_bad_value() -> None:
    """'!!int many' is reported at its field and line, not as a bare int() error."""
    text = edit("trials: 200", "trials: !!int many")
    p = only_problem(text)
    assert p.path == ("settings", "trials")
    assert p.line == line_of(text, "!!int many")


def test_unquoted_date_reported_with_hint() -> None:
    """An unquoted date (a YAML timestamp) is refused at its field, suggesting quotes."""
    text = edit("    description: whitelist enforced by the policy engine\n", "    description: 2024-06-01\n")
    p = only_problem(text)
    assert p.path == ("variants", "wl", "description")
    assert p.line == line_of(text, "2024-06-01")
    assert "quote" in p.message


def test_empty_text() -> None:
    """An empty text is reported as an empty file."""
    p = only_problem("")
    assert p.path == ()
    assert "empty" in p.message


def test_comments_only_is_empty() -> None:
    """A file of only comments is reported as empty."""
    assert "empty" in only_problem("# nothing here yet\n\n").message


def test_top_level_list() -> None:
    """A top-level list is refused: a scenario is a mapping."""
    p = only_problem("- name: mini\n- wallets: {}\n")
    assert p.path == ()
    assert p.line == 1
    assert "mapping" in p.message and "list" in p.message


def test_top_level_scalar() -> None:
    """A top-level plain value is refused: a scenario is a mapping."""
    assert "mapping" in only_problem("just words\n").message


def test_missing_required_top_level_fields() -> None:
    """A mapping with none of the required fields reports each missing one."""
    problems = problems_of("description: nothing else\n")
    assert {p.path for p in problems} == {("name",), ("assets",), ("wallets",)}
    assert all(p.message == "required field is missing" for p in problems)


# --- files ------------------------------------------------------------------------------------------


def _file_problem(path: Path) -> Problem:
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    assert info.value.source == str(path)
    (p,) = info.value.problems
    return p


def test_missing_file(tmp_path: Path) -> None:
    """A file that does not exist is one problem: file not found."""
    p = _file_problem(tmp_path / "nope.yaml")
    assert p.path == () and p.message == "file not found"


def test_folder_instead_of_file(tmp_path: Path) -> None:
    """A folder given as the scenario is reported as such."""
    assert "folder" in _file_problem(tmp_path).message


def test_non_utf8_bytes(tmp_path: Path) -> None:
    """Bytes that are not UTF-8 are reported with the line they are on."""
    path = tmp_path / "latin1.yaml"
    path.write_bytes(MINI.replace("whitelist enforced", "caf\xe9 enforced").encode("latin-1"))
    p = _file_problem(path)
    assert "not UTF-8" in p.message
    assert p.line == line_of(MINI, "whitelist enforced")


def test_empty_file(tmp_path: Path) -> None:
    """An empty file is reported as empty."""
    path = tmp_path / "empty.yaml"
    path.write_bytes(b"")
    assert "empty" in _file_problem(path).message


def test_file_with_utf8_bom_is_fine(tmp_path: Path) -> None:
    """A UTF-8 byte order mark (as some editors write) is accepted."""
    path = tmp_path / "bom.yaml"
    path.write_bytes(b"\xef\xbb\xbf" + MINI.encode())
    assert load_scenario(path).name == "mini"


def test_error_in_file_names_file_and_line(tmp_path: Path) -> None:
    """A file's problem renders as 'path:line: field: message'."""
    path = tmp_path / "broken.yaml"
    text = edit("    balance: 5000\n", "    balance: -5\n")
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    assert f"{path}:{line_of(text, 'balance: -5')}: wallets.main.balance: " in str(info.value)


def test_variant_cannot_change_run_settings() -> None:
    """A variant that sets the horizon is refused: variants are compared on the same trials."""
    text = edit(VARIANT_SET, VARIANT_SET + "      settings.horizon_days: 30\n")
    p = only_problem(text)
    assert p.path == ("variants", "wl", "set", "settings.horizon_days")
    assert "same horizon" in p.message
    assert p.line == line_of(text, "settings.horizon_days: 30")


def test_reserved_ids_refused() -> None:
    """A system named 'chain' would be confused with on-chain enforcement, so it is refused."""
    p = only_problem(edit("  pe: {kind: policy_engine, owner: ex}", "  chain: {kind: policy_engine, owner: ex}",
                          edit("{enforced_by: pe}", "{enforced_by: chain}")))
    assert p.path == ("systems", "chain")


def test_repeated_access_edge_refused() -> None:
    """Two edges with the same from, to and technique would share their random draws, so they are refused."""
    edge = "  - {from: eng, to: comms, technique: session_cookie_theft, p_success: 0.8,\n"
    text = edit(edge, edge + "     time_days: 1}\n" + edge)
    p = only_problem(text)
    assert p.path == ("access", 1)
    assert "repeats access[0]" in p.message


def test_target_without_exposure_warns() -> None:
    """A targeted person with no exposure to the technique is reported as a warning (a likely typo)."""
    loaded = load_scenario_text(edit("exposure: {fake_recruiter_test: 0.5}", "exposure: {fake_recruiter: 0.5}"))
    assert any("never fall" in w and "eng" in w for w in loaded.warnings)


@pytest.mark.parametrize(("old", "new", "where"), [
    ("    balance: 5000\n", "    balance: yes\n", ("wallets", "main", "balance")),
    ("p_success: 0.8", "p_success: on", ("access", 0, "p_success")),
    ("seed: 1}", "seed: true}", ("settings", "seed")),
    ("campaigns_per_year: 1\n", "campaigns_per_year: off\n", ("threats", "tt", "campaigns_per_year")),
])
def test_a_true_false_value_where_a_number_belongs_is_refused(old: str, new: str, where: tuple) -> None:
    """YAML's yes/on/true are not read as 1 where a number belongs: refused, naming the field and its line."""
    text = edit(old, new)
    p = only_problem(text)
    assert p.path == where
    assert "true/false value" in p.message
    assert p.line == line_of(text, new.strip().rstrip("}"))


def test_numbers_in_exponent_notation_are_numbers() -> None:
    """`5e3` (no dot, which YAML 1.1 would read as text) is the number 5,000, as YAML 1.2 reads it."""
    loaded = load_scenario_text(edit("    balance: 5000\n", "    balance: 5e3\n"))
    assert loaded.baseline.wallets["main"].balance == 5000.0


@pytest.mark.parametrize(("old", "new", "where", "message"), [
    ("    balance: 5000\n", "    balance: 1e12\n", ("wallets", "main", "balance"), "beyond the USD 1e+15"),
    ("price_usd: 60000", "price_usd: 1e308", ("assets", "BTC", "price_usd"), "less than or equal to 1000000000000000"),
    ("flows: {withdrawals_per_day: 50,", "flows: {withdrawals_per_day: 5e12,", ("wallets", "hot", "flows",
                                                                                 "withdrawals_per_day"), "beyond"),
])
def test_an_amount_whose_usd_value_is_beyond_the_bound_is_refused(old: str, new: str, where: tuple,
                                                                    message: str) -> None:
    """An amount or price whose USD value could overflow a year's sums is refused at validation, naming the field."""
    p = only_problem(edit(old, new))
    assert p.path == where
    assert message in p.message
    assert p.line is not None


# --- what a person most likely meant -------------------------------------------------------------------

LOGNORMAL = "time_days: {dist: lognormal, median: 40, p90: 80}"
UNIFORM = "delay_days: {dist: uniform, low: 0, high: 30}"


@pytest.mark.parametrize(("old", "new", "key", "says", "suggests"), [
    (LOGNORMAL, "time_days: {dist: lognormal, mean: 40, p90: 80}", "mean",
     "dist: lognormal takes median and p90; 'mean' belongs to dist: exponential", None),
    (LOGNORMAL, "time_days: {dist: lognormal, medain: 40, p90: 80}", "medain", "takes median and p90", "median"),
    (LOGNORMAL, "time_days: {dist: lognormal, median: 40, p95: 80}", "p95", "takes median and p90", None),
    (LOGNORMAL, "time_days: {dist: exponential, median: 40}", "median",
     "dist: exponential takes mean; 'median' belongs to dist: lognormal", None),
    (UNIFORM, "delay_days: {dist: uniform, min: 0, high: 30}", "min", "dist: uniform takes low and high", "low"),
    (UNIFORM, "delay_days: {dist: uniform, low: 0, max: 30}", "max", "dist: uniform takes low and high", "high"),
])
def test_an_unknown_key_of_a_distribution_names_what_its_family_takes(old: str, new: str, key: str, says: str,
                                                                      suggests: str | None) -> None:
    """A key a distribution does not take is answered with the family's fields, and a suggestion only if it is one."""
    text = edit(old, new)
    p = problem_at(problems_of(text), (*(("access", 0, "time_days") if old == LOGNORMAL else
                                         ("threats", "tt", "initial_access", 0, "delay_days")), key))
    assert p.line == line_of(text, new)
    assert says in p.message
    if suggests is None:
        assert "did you mean" not in p.message
    else:
        assert p.message.endswith(f"(did you mean {suggests!r}?)")


@pytest.mark.parametrize(("old", "new", "where", "says"), [
    ("signing_hours: 2}", "signing_hours: 2h}", ("wallets", "hot", "topup", "signing_hours"),
     "write 2: this field takes a plain number, in hours (got '2h')"),
    ("signing_hours: 2}", "signing_hours: 1 day}", ("wallets", "hot", "topup", "signing_hours"),
     "write 24: this field takes a plain number, in hours"),
    ("    balance: 5000\n", "    balance: 5,000\n", ("wallets", "main", "balance"),
     "write 5000 without separators: this field takes a plain number, in the wallet's asset (got '5,000')"),
    ("p_success: 0.8", "p_success: 80%", ("access", 0, "p_success"),
     "write 0.8: this field takes a plain number; shares and probabilities go from 0 to 1"),
    ("median: 40", "median: 40 days", ("access", 0, "time_days", "median"), "write 40: this field takes a plain "
     "number, in days"),
    (UNIFORM, "delay_days: 3d", ("threats", "tt", "initial_access", 0, "delay_days"),
     "write 3: this field takes a plain number, in days"),
    ("trials: 200,", "trials: 2,000,", ("settings", "trials"),
     "write 2000 without separators: inside { } a comma separates entries, so '2,000' reads as 2 and a key '000'"),
    ("{price_usd: 60000}", "{price_usd: 60000, price_path: [[10, 50,000]]}", ("assets", "BTC", "price_path", 0),
     "a step is [day, price], 2 numbers, not 3; write each number without separators"),
    (UNIFORM, "delay_days: soon", ("threats", "tt", "initial_access", 0, "delay_days"),
     "a distribution is a plain number (a fixed value) or a mapping with 'dist:' (got 'soon')"),
])
def test_a_number_written_with_a_unit_or_separators_says_which_plain_number_to_write(old: str, new: str,
                                                                                     where: tuple, says: str) -> None:
    """`2h`, `5,000` or `80%` where a number belongs: the problem names the field, its line and the number to write."""
    text = edit(old, new)
    p = only_problem(text)
    assert (p.path, p.line) == (where, line_of(text, new.strip()))
    assert says in p.message


UNENFORCED = "has no enforced_by, so nothing enforces it: it binds neither the attacker nor legitimate transfers"


def test_a_rule_nobody_enforces_is_warned_of() -> None:
    """A policy rule without enforced_by binds nobody: a warning names it and says how to fix it."""
    text = edit("    pipeline: [comms]\n", "    pipeline: [comms]\n    policy:\n      whitelist: {}\n"
                "      rolling_limits: [{amount: 5, hours: 1, enforced_by: pe}, {amount: 9, hours: 24}]\n")
    assert load_scenario_text(text).warnings == (
        f"wallets.main.policy.whitelist: {UNENFORCED}; name what enforces it: a system id, 'chain' or 'guard'",
        f"wallets.main.policy.rolling_limits[1]: {UNENFORCED}; name what enforces it: a system id, 'chain' or "
        "'guard'")


def test_a_variant_adding_a_rule_nobody_enforces_is_warned_of_at_its_set_entry() -> None:
    """A variant that adds an unenforced rule (a control that does nothing) is warned of at the entry adding it."""
    warnings = load_scenario_text(edit(VARIANT_SET, "      wallets.main.policy.whitelist: {}\n")).warnings
    assert len(warnings) == 1
    assert warnings[0].startswith(f"variants.wl.set.wallets.main.policy.whitelist: {UNENFORCED}")


WEEKLY_REFILL = "\noperations:\n  transfers:\n    - {from: main, to: hot, amount: 40, every_days: 7}\naccess:\n"
SPARE = "  spare:\n    asset: BTC\n    tier: warm\n    balance: 80\n    custody: {scheme: single, signers: [{id: s1, key_store: hsm}]}\n"


@pytest.mark.parametrize(("transfers", "warned"), [
    ("\naccess:\n", "wallets.hot.flows: net outflow 5/day empties hot in about 20 days, within the 365-day horizon"),
    (WEEKLY_REFILL, None),
    (WEEKLY_REFILL.replace("every_days: 7", "every_days: 7, first_day: 100"),
     "empties hot in about 20 days (scheduled transfers counted)"),
    (WEEKLY_REFILL.replace("from: main", "from: spare"), "empties hot in about 36 days (scheduled transfers counted)"),
])
def test_a_hot_wallet_refilled_by_scheduled_transfers_is_not_warned_to_empty(transfers: str, warned: str | None) -> None:
    """Transfers outpacing a hot wallet's net outflow silence its warning; none, late ones or a dry source do not."""
    text = edit("    topup: {source: main, cap: 100, low_water: 30, signing_hours: 2}\n", "")
    text = edit("  hot:\n", SPARE + "  hot:\n", edit("\naccess:\n", transfers, text))
    warnings = [w for w in load_scenario_text(text).warnings if "flows" in w]
    if warned is None:
        assert warnings == []
    else:
        assert len(warnings) == 1 and warned in warnings[0], warnings


def test_a_wallet_drained_with_its_top_up_source_names_the_source() -> None:
    """The warning of flows that outlast a hot wallet and its top-up source names that source."""
    text = edit("withdrawals_per_day: 50,", "withdrawals_per_day: 80,")
    assert load_scenario_text(text).warnings == (
        "wallets.hot.flows: net outflow 35/day empties hot and its top-up source main in about 146 days, within the "
        "365-day horizon; customers will wait",)
