"""The CLI turns a broken scenario into 'file:line: path: message' lines on stderr and exit code 1."""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import MINI, VARIANT_SET, edit
from typer.testing import CliRunner

import custodysim
from custodysim.cli import app


def billion_laughs() -> str:
    """Return the classic alias bomb: nine levels of nine aliases."""
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"a{i}: &a{i} [{','.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 9)]
    return "\n".join(lines) + "\n"


def merge_bomb() -> str:
    """Return an alias bomb made of nested '<<' merges (9^10 entries)."""
    inner = "&a0 {k0: 0, k1: 1, k2: 2, k3: 3, k4: 4, k5: 5, k6: 6, k7: 7, k8: 8}"
    for i in range(1, 10):
        inner = f"&a{i} {{<<: [{inner}, {', '.join([f'*a{i - 1}'] * 8)}]}}"
    return f"name: x\nb: {inner}\n"


@dataclass(frozen=True)
class Case:
    """A broken scenario file and what the error output must say about it."""

    id: str
    content: str | bytes | None  # None: the file does not exist
    path: str  # the field path as rendered, e.g. "wallets.main.balance" or "(top level)"
    needle: str | None  # text on the line the problem must point at; None: no line expected
    message: str  # a fragment of the message
    exact: bool = False  # the needle is the whole line
    count: int = 1  # problems reported

    def line(self) -> int | None:
        """Return the line the problem must point at."""
        if self.needle is None:
            return None
        text = self.content.decode("latin-1") if isinstance(self.content, bytes) else self.content
        assert text is not None
        hits = [n for n, line in enumerate(text.splitlines(), start=1)
                if (line == self.needle if self.exact else self.needle in line)]
        assert len(hits) == 1, f"{self.needle!r} is on lines {hits}"
        return hits[0]

    def write(self, folder: Path) -> Path:
        """Write the file (unless it should not exist) and return its path."""
        path = folder / f"{self.id}.yaml"
        if isinstance(self.content, bytes):
            path.write_bytes(self.content)
        elif self.content is not None:
            path.write_text(self.content, encoding="utf-8")
        return path

    def expected(self, path: Path) -> str:
        """Return the rendered problem line (without its message's end)."""
        line = self.line()
        where = f"{path}:{line}:" if line is not None else f"{path}:"
        return f"{where} {self.path}: "


CASES = [
    Case("unknown_key", edit("      scheme: single\n", "      scheme: single\n      thresold: 1\n"),
         "wallets.main.custody.thresold", "thresold", "did you mean 'threshold'?"),
    Case("unknown_key_balanse", edit("    balance: 5000\n", "    balanse: 5000\n"),
         "wallets.main.balanse", "balanse", "did you mean 'balance'?", count=2),
    Case("wrong_type", edit("    balance: 5000\n", "    balance: lots\n"),
         "wallets.main.balance", "balance: lots", "valid number"),
    Case("probability_out_of_range", edit("p_success: 0.8", "p_success: 1.5"),
         "access[0].p_success", "p_success: 1.5", "less than or equal to 1"),
    Case("m_greater_than_n", edit("      scheme: single\n", "      scheme: multisig\n      threshold: 3\n"),
         "wallets.main.custody", "    custody:", "m > n", exact=True),
    Case("negative_balance", edit("    balance: 100\n", "    balance: -100\n"),
         "wallets.hot.balance", "balance: -100", "greater than or equal to 0"),
    Case("dangling_reference", edit("holder: signer,", "holder: signr,"),
         "wallets.main.custody.signers[0].holder", "signr", "did you mean 'signer'?"),
    Case("variant_unknown_field", edit(VARIANT_SET, "      wallets.main.custody.thresold: 2\n"),
         "variants.wl.set.wallets.main.custody.thresold", "custody.thresold", "did you mean 'threshold'?"),
    Case("variant_unknown_wallet", edit(VARIANT_SET, "      wallets.mian.balance: 1\n"),
         "variants.wl.set.wallets.mian.balance", "wallets.mian", "did you mean 'main'?"),
    Case("variant_m_greater_than_n", edit(VARIANT_SET, "      wallets.main.custody.threshold: 2\n"),
         "variants.wl.set.wallets.main.custody.threshold", "custody.threshold", "m > n"),
    Case("lognormal_mean", edit("median: 40, p90: 80", "mean: 40, p90: 80"), "access[0].time_days.mean",
         "mean: 40", "unknown field 'mean': dist: lognormal takes median and p90", count=2),
    Case("uniform_min", edit("low: 0, high: 30", "min: 0, high: 30"),
         "threats.tt.initial_access[0].delay_days.min", "min: 0", "dist: uniform takes low and high (did you mean "
         "'low'?)", count=2),
    Case("hours_with_unit", edit("signing_hours: 2}", "signing_hours: 24h}"), "wallets.hot.topup.signing_hours",
         "24h", "write 24: this field takes a plain number, in hours (got '24h')"),
    Case("thousands_separator", edit("price_usd: 60000", "price_usd: 65,000"), "assets.BTC.price_usd", "65,000",
         "write 65000 without separators"),
    Case("duplicate_key", edit("    tier: warm\n", "    tier: warm\n    tier: cold\n"),
         "wallets.main.tier", "tier: cold", "duplicate key"),
    Case("python_tag", edit("settings: {horizon_days: 365, trials: 200, seed: 1}\n",
                            "settings: !!python/object/apply:os.system ['true']\n"),
         "settings", "settings:", "unsupported YAML tag"),
    Case("billion_laughs", billion_laughs(), "a5[1]", "a5:", "expands to more than"),
    Case("merge_bomb", merge_bomb(), "b", "b:", "expands to more than"),
    Case("non_string_key", edit("  pe: {kind: policy_engine, owner: ex}\n",
                                "  pe: {kind: policy_engine, owner: ex}\n  7: {kind: other, owner: ex}\n"),
         "systems", "7: {kind", "keys must be plain text"),
    Case("non_utf8", MINI.replace("whitelist enforced", "caf\xe9 enforced").encode("latin-1"),
         "(top level)", "enforced by", "not UTF-8"),
    Case("control_character", edit("    tier: warm\n", "    tier: wa\x00rm\n"),
         "(top level)", "tier: wa", "not valid YAML"),
    Case("empty_file", "", "(top level)", None, "empty"),
    Case("top_level_list", "- name: mini\n- wallets: {}\n", "(top level)", "- name: mini", "mapping"),
    Case("unreadable_yaml", edit("    pipeline: [comms]\n", "    pipeline: [comms\n"),
         "(top level)", "  hot:", "not valid YAML"),
    Case("deep_nesting", "name: x\na: " + "[" * 3000 + "]" * 3000 + "\n", "(top level)", "a: [[[", "nesting"),
    Case("missing_file", None, "(top level)", None, "file not found"),
]

runner = CliRunner()


def _check(case: Case, path: Path, stderr: str, output: str) -> None:
    assert "Traceback" not in output
    head = "1 problem found" if case.count == 1 else f"{case.count} problems found"
    assert f"{path}: {head}" in stderr, stderr
    expected = case.expected(path)
    assert expected in stderr, f"{expected!r} not in:\n{stderr}"
    assert case.message in stderr


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
@pytest.mark.parametrize("command", ["validate", "run"])
def test_broken_scenario_exits_1_with_path_and_line(case: Case, command: str, tmp_path: Path) -> None:
    """Each broken file gives exit code 1 and 'file:line: path: message' on stderr, no traceback."""
    path = case.write(tmp_path)
    out = tmp_path / "run-folder"
    args = [command, str(path)] + (["--out", str(out)] if command == "run" else [])
    result = runner.invoke(app, args)
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit)
    _check(case, path, result.stderr, result.output)
    assert result.stdout == ""
    assert not out.exists()


def test_two_problems_reported_together(tmp_path: Path) -> None:
    """Two independent problems in one file are both printed, under a '2 problems found' header."""
    text = edit("      scheme: single\n", "      scheme: single\n      thresold: 1\n")
    text = edit("p_success: 0.8", "p_success: 1.5", text)
    path = tmp_path / "two.yaml"
    path.write_text(text, encoding="utf-8")
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 1
    assert f"{path}: 2 problems found" in result.stderr
    lines = text.splitlines()
    thresold = next(n for n, line in enumerate(lines, 1) if "thresold" in line)
    p_success = next(n for n, line in enumerate(lines, 1) if "p_success" in line)
    assert f"{path}:{thresold}: wallets.main.custody.thresold: unknown field 'thresold'" in result.stderr
    assert f"{path}:{p_success}: access[0].p_success: " in result.stderr


def test_folder_instead_of_file(tmp_path: Path) -> None:
    """A folder given as the scenario exits 1 saying so."""
    result = runner.invoke(app, ["validate", str(tmp_path)])
    assert result.exit_code == 1
    assert "folder" in result.stderr and "Traceback" not in result.output


def test_valid_scenario_validates(tmp_path: Path) -> None:
    """The scenario the cases break validates with exit code 0 (a control for the cases)."""
    path = tmp_path / "mini.yaml"
    path.write_text(MINI, encoding="utf-8")
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 0, result.output
    assert "valid scenario 'mini'" in result.stdout


def test_a_rule_nobody_enforces_is_warned_of_by_validate_and_run(tmp_path: Path) -> None:
    """`validate` and `run` both print the warning of a policy rule without enforced_by, and still succeed."""
    path = tmp_path / "mini.yaml"
    path.write_text(edit("    pipeline: [comms]\n", "    pipeline: [comms]\n    policy: {daily_limit: {amount: 9}}\n"),
                    encoding="utf-8")
    warning = "warning: wallets.main.policy.daily_limit: has no enforced_by, so nothing enforces it"
    for args in (["validate"], ["run", "--trials", "5", "--workers", "1", "--out", str(tmp_path / "r")]):
        result = runner.invoke(app, [args[0], str(path), *args[1:]])
        assert result.exit_code == 0, result.output
        assert warning in result.stderr


@pytest.mark.parametrize(("marker", "says"), [
    ("sweep.json", "a sweep folder (written by custodysim sweep), not a run folder"),
    ("attribution.csv", "an attribution folder (written by custodysim attribution), not a run folder"),
    ("comparison.json", "a comparison folder (written by custodysim compare), not a run folder"),
])
def test_report_and_compare_say_what_another_commands_folder_is(marker: str, says: str, tmp_path: Path) -> None:
    """`report` and `compare` given a sweep's, an attribution's or a comparison's folder say what it is and what to do."""
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / marker).write_text('{"runs": [{"folder": "r1"}, {"folder": "r2"}]}' if marker == "comparison.json"
                                 else "{}", encoding="utf-8")
    (folder / "manifest.json").write_text('{"command": ["custodysim", "sweep", "s.yaml", "--out", "out"]}')
    report = runner.invoke(app, ["report", str(folder)])
    compare = runner.invoke(app, ["compare", str(folder), str(tmp_path / "r0"), "--out", str(tmp_path / "c")])
    for result in (report, compare):
        assert result.exit_code == 1, result.output
        assert result.stderr.startswith(f"{folder}: {says}")
        assert "Traceback" not in result.output
    assert "; report re-renders a run folder. Its report is " in report.stderr
    assert "; compare compares run folders (written by custodysim run). Its own report, " in compare.stderr
    if marker == "sweep.json":
        assert report.stderr.rstrip().endswith("to make it anew, run custodysim sweep s.yaml --out out --replace")
    if marker == "comparison.json":
        assert compare.stderr.rstrip().endswith("give the run folders it compared instead: r1 r2")
    assert not (tmp_path / "c").exists()


def test_run_unknown_variant(tmp_path: Path) -> None:
    """'run --variant nosuch' exits 1 naming the variant and listing those there are; nothing is written."""
    path = tmp_path / "mini.yaml"
    path.write_text(MINI, encoding="utf-8")
    out = tmp_path / "run-folder"
    result = runner.invoke(app, ["run", str(path), "--variant", "nosuch", "--out", str(out)])
    assert result.exit_code == 1, result.output
    assert f"{path}: variants: no variant named 'nosuch'" in result.stderr
    assert "wl" in result.stderr
    assert "Traceback" not in result.output
    assert not out.exists()


def test_run_misspelt_variant_suggests(tmp_path: Path) -> None:
    """'run --variant wll' suggests 'wl'."""
    path = tmp_path / "mini.yaml"
    path.write_text(MINI, encoding="utf-8")
    result = runner.invoke(app, ["run", str(path), "--variant", "wll", "--out", str(tmp_path / "o")])
    assert result.exit_code == 1
    assert "did you mean 'wl'?" in result.stderr


# --- the real process: python -m custodysim --------------------------------------------------------

MAIN_MODULE = Path(custodysim.__file__).with_name("__main__.py")
SUBPROCESS_CASES = [c for c in CASES if c.id in ("unknown_key", "variant_m_greater_than_n", "non_utf8",
                                                   "missing_file", "billion_laughs")]


@pytest.mark.skipif(not MAIN_MODULE.exists(), reason="custodysim/__main__.py is missing")
@pytest.mark.parametrize("case", SUBPROCESS_CASES, ids=[c.id for c in SUBPROCESS_CASES])
def test_subprocess_validate(case: Case, tmp_path: Path) -> None:
    """In a real process, a broken file exits 1 with the path and line on stderr and no traceback."""
    path = case.write(tmp_path)
    proc = subprocess.run([sys.executable, "-m", "custodysim", "validate", str(path)],
                          capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert proc.returncode == 1, proc.stderr
    _check(case, path, proc.stderr, proc.stdout + proc.stderr)
    assert proc.stdout == ""


@pytest.mark.skipif(not MAIN_MODULE.exists(), reason="custodysim/__main__.py is missing")
def test_subprocess_run_unknown_variant(tmp_path: Path) -> None:
    """In a real process, 'run --variant nosuch' exits 1 with no traceback and writes nothing."""
    path = tmp_path / "mini.yaml"
    path.write_text(MINI, encoding="utf-8")
    proc = subprocess.run([sys.executable, "-m", "custodysim", "run", str(path), "--variant", "nosuch"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert proc.returncode == 1, proc.stderr
    assert "no variant named 'nosuch'" in proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mini.yaml"]  # no results/ folder


def test_line_numbers_are_not_turned_into_emoji(tmp_path: Path) -> None:
    """An error on line 100 prints 'file:100:', not an emoji (rich would render ':100:' as one)."""
    text = "name: x\n" + "# filler\n" * 98 + "assets: 5\n"
    path = tmp_path / "s.yaml"
    path.write_text(text)
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code == 1
    assert "s.yaml:100: assets" in result.output


COMMANDS = ["validate", "run", "attribution", "sweep", "new", "schema", "library", "trace", "report", "compare"]
TYPE = re.compile(r"<(bool|path|int|float|str|text|list|dict|tuple|datetime|file|dir|uuid)\b[^>]*>", re.IGNORECASE)


@pytest.mark.parametrize("command", COMMANDS)
def test_help_names_values_not_types_and_gives_an_example(command: str) -> None:
    """Each command's --help shows no <type> on its flags and one example of the command, with files that exist."""
    result = runner.invoke(app, [command, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert TYPE.search(result.output) is None, result.output
    examples = re.findall(r"Example: custodysim (\S+)(.*)", result.output)
    assert len(examples) == 1 and examples[0][0] == command, result.output
    root = Path(__file__).resolve().parent.parent
    for path in re.findall(r"scenarios/\S+\.yaml", examples[0][1]):
        assert (root / path).is_file(), path


def test_app_help_shows_no_types() -> None:
    """`custodysim --help` lists the commands with no <bool> beside --version or --help."""
    result = runner.invoke(app, ["--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0 and "compare" in result.output
    assert TYPE.search(result.output) is None, result.output
