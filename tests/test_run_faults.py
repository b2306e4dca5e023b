"""Faults after validation: a damaged plan, a live run in the way, a full disk, a damaged run folder."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from faults import DMM, SMALL, FullDisk, edit_json, interrupted_run, snapshot
from typer.testing import CliRunner

from custodysim.cli import app
from custodysim.errors import RunFolderError
from custodysim.running.outputs import partial_dir, staged_folder
from custodysim.studies.compare import compare_runs
from custodysim.studies.run import PLAN, execute_run, rerender, resume_run

FEW = {**SMALL, "trials": 1000}
"""faults.SMALL at 1,000 trials (4 chunks of 250 a variant): the faults here need a few chunks, not ten."""


def _cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stderr.strip()


def _figures(folder: Path) -> dict:
    return json.loads((folder / "summary.json").read_text())["variants"]


@pytest.fixture(scope="module")
def whole(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An uninterrupted run of :data:`FEW`, whose figures every finished run must give."""
    out = tmp_path_factory.mktemp("whole") / "run"
    execute_run(DMM, out=out, **FEW)
    return out


# 6. The resume plan is checked.

def _resign(plan: dict) -> None:
    """Recompute a plan's checksum after an edit, as a careful forger would."""
    plan.pop("checksum")
    plan["checksum"] = hashlib.sha256(json.dumps(plan, sort_keys=True).encode()).hexdigest()


def _resigned(**changes):
    """Return an edit of a plan that also recomputes its checksum, as a careful forger would."""
    def edit(plan: dict) -> None:
        plan.update(changes)
        _resign(plan)
    return edit


@pytest.mark.parametrize(("edit", "message"), [
    (lambda p: p.update(trials=-5), "its checksum does not match its settings"),
    (lambda p: p.update(seed=p["seed"] ^ 1), "its checksum does not match its settings"),
    (lambda p: p.pop("checksum"), "its checksum does not match its settings"),
    (_resigned(trials=-5), "trials should be a whole number of 1 or more, or null, not -5"),
    (_resigned(seed="4"), 'seed should be a whole number of 0 or more, not "4"'),
    (_resigned(precision=0.1), "it should give trials, or precision with max_trials"),
    (None, "it is not a JSON object"),
], ids=["trials-5", "seed-flipped", "no-checksum", "resigned-trials", "resigned-seed", "both-stops", "a-list"])
def test_a_damaged_plan_is_refused_and_kept(tmp_path, edit, message):
    """An edited or damaged run.json is refused by --resume, naming it and the damage; nothing is simulated."""
    out = tmp_path / "run"
    interrupted_run(out, **FEW)
    if edit is None:
        (partial_dir(out) / PLAN).write_text("[1, 2]")
    else:
        edit_json(partial_dir(out) / PLAN, edit)
    before = snapshot(partial_dir(out))
    with pytest.raises(RunFolderError, match=r"plan .*run\.json is damaged") as caught:
        resume_run(out)
    assert message in str(caught.value) and "delete" in str(caught.value)
    assert snapshot(partial_dir(out)) == before
    assert not out.exists()


def test_a_flipped_byte_in_the_seed_is_refused_by_the_cli(tmp_path, monkeypatch):
    """One byte flipped in the plan's seed: `run --resume` exits 1 with a message, never figures of two seeds."""
    monkeypatch.chdir(tmp_path)
    interrupted_run(Path("run"), **FEW)
    path = partial_dir(Path("run")) / PLAN
    text = path.read_text()
    at = text.index('"seed": ') + len('"seed": ')
    path.write_text(text[:at] + str((int(text[at]) + 1) % 10) + text[at + 1:])
    code, err = _cli("run", "--resume", "run", "--workers", "1")
    assert code == 1
    assert err.startswith("run: the interrupted run's plan .run.partial/run.json is damaged (its checksum")
    assert "Traceback" not in err and not Path("run").exists()


def test_a_changed_scenario_copy_is_refused(tmp_path):
    """An interrupted run whose copy of its scenario was edited is refused, naming the copy."""
    out = tmp_path / "run"
    interrupted_run(out, **FEW)
    copy = partial_dir(out) / "scenario.yaml"
    copy.write_text(copy.read_text().replace("seed:", "seed:  "))
    with pytest.raises(RunFolderError, match=r"copy of its scenario .*scenario.yaml is damaged \(its sha256"):
        resume_run(out)


def test_an_intact_plan_resumes_to_the_uninterrupted_figures(tmp_path, whole):
    """The checksum does not get in the way: an untouched plan resumes to the uninterrupted run's figures."""
    out = tmp_path / "run"
    interrupted_run(out, **FEW)
    assert "checksum" in json.loads((partial_dir(out) / PLAN).read_text())
    resume_run(out)
    assert _figures(out) == _figures(whole)
    for table in ("trials.csv", "events.csv"):
        assert (out / table).read_bytes() == (whole / table).read_bytes()
    assert not (out / PLAN).exists() and not (out / "lock").exists()


# 7. A live run is not an interrupted one.

def test_a_live_run_holds_its_folder(tmp_path, whole):
    """While a run is live, a second run to its folder and a --resume of it are refused, naming its process."""
    out = tmp_path / "run"
    refused: list[str] = []

    def meanwhile(name: str, k: int) -> None:
        if refused:
            return
        for attempt in (lambda: execute_run(DMM, out=out, **FEW), lambda: resume_run(out)):
            with pytest.raises(RunFolderError) as caught:
                attempt()
            refused.append(str(caught.value))

    execute_run(DMM, out=out, progress=meanwhile, **FEW)
    assert f"a run to this folder is in progress (process {os.getpid()}" in refused[0]
    assert f"still in progress (process {os.getpid()}); only an interrupted run can be resumed" in refused[1]
    assert _figures(out) == _figures(whole)  # the live run was not disturbed
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_the_lock_goes_with_the_process_however_it_ends(tmp_path):
    """A live run in another process is reported with its process id; once it is SIGKILLed, it is an interrupted run."""
    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "custodysim", "run", str(DMM), "--trials", "400000", "--workers", "1",
                             "--variant", "split-wallets", "--out", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        chunks = partial_dir(out) / "chunks"
        deadline = time.monotonic() + 60
        while not (chunks.is_dir() and any(chunks.glob("*.chunk"))):
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr
            time.sleep(0.05)
        code, err = _cli("run", str(DMM), "--out", str(out))
        assert code == 1 and f"a run to this folder is in progress (process {proc.pid}" in err
        code, err = _cli("run", "--resume", str(out))
        assert code == 1 and f"still in progress (process {proc.pid})" in err
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    code, err = _cli("run", str(DMM), "--out", str(out))
    assert code == 1 and "an interrupted run to this folder is kept" in err and "--resume" in err


def test_a_partial_deleted_under_a_live_run_ends_it_with_a_message(tmp_path):
    """Deleting a live run's staging folder stops the run with a message naming what it could not write, exit 1."""
    out = tmp_path / "run"

    def delete(name: str, k: int) -> None:
        shutil.rmtree(partial_dir(out), ignore_errors=True)

    with pytest.raises(RunFolderError, match=r"cannot write .*\.run\.partial.*: No such file or directory; "
                                             "no run folder was written"):
        execute_run(DMM, out=out, progress=delete, **FEW)
    assert list(tmp_path.iterdir()) == []


def test_an_interrupted_run_advises_what_works(tmp_path, monkeypatch):
    """Both pieces of advice given for an interrupted run work: --resume finishes it; deleting the folder frees --out."""
    monkeypatch.chdir(tmp_path)
    interrupted_run(Path("my run"), **FEW)
    code, err = _cli("run", str(DMM), "--out", "my run")
    assert code == 1 and "resume it with 'custodysim run --resume 'my run''" in err
    code, _ = _cli("run", "--resume", "my run", "--workers", "1")
    assert code == 0 and (tmp_path / "my run" / "manifest.json").is_file()
    interrupted_run(Path("again"), **FEW)
    shutil.rmtree(partial_dir(Path("again")))
    code, _ = _cli("run", str(DMM), "--trials", "20", "--out", "again", "--workers", "1")
    assert code == 0


def test_an_interruption_before_the_plan_advises_no_resume(tmp_path, monkeypatch):
    """Ctrl-C before the run's plan is written leaves nothing behind and does not advise --resume."""
    import custodysim.studies.run

    def interrupt(files):
        raise KeyboardInterrupt

    monkeypatch.setattr(custodysim.studies.run, "replace_files", interrupt)
    with pytest.raises(KeyboardInterrupt):
        execute_run(DMM, out=tmp_path / "run", **FEW)
    assert list(tmp_path.iterdir()) == []


# 8. A full disk.

def test_a_full_disk_during_the_trials_keeps_the_chunks_and_resume_finishes(tmp_path, monkeypatch, whole):
    """A disk that fills after a few chunks: a message naming the chunk and the cause, chunks kept, resumable."""
    out = tmp_path / "run"
    with monkeypatch.context() as patch:
        FullDisk(patch, room=250_000)  # some 3 chunks of 65 kB
        with pytest.raises(RunFolderError) as caught:
            execute_run(DMM, out=out, **FEW)
    message = str(caught.value)
    assert message.startswith(f"cannot write {partial_dir(out)}/chunks/")
    assert ": No space left on device; the completed chunks are kept in" in message
    assert f"custodysim run --resume {out}" in message
    chunks = sorted((partial_dir(out) / "chunks").iterdir())
    assert chunks and all(p.suffix == ".chunk" for p in chunks)  # whole chunks only, no file half-written
    assert not out.exists()
    resume_run(out)
    assert _figures(out) == _figures(whole)


@pytest.mark.parametrize("named", ["trials.csv", "report.html", "manifest.json"])
def test_a_full_disk_while_writing_the_outputs_keeps_the_run_resumable(tmp_path, monkeypatch, whole, named):
    """A disk full while writing an output names it; no half file is left, and --resume finishes the run."""
    out = tmp_path / "run"
    with monkeypatch.context() as patch:
        FullDisk(patch, named=f".{named}.tmp")
        with pytest.raises(RunFolderError, match=rf"cannot write .*\.run\.partial/{named}: No space left on device"):
            execute_run(DMM, out=out, **FEW)
    left = {p.name for p in partial_dir(out).iterdir()}
    assert {PLAN, "chunks", "scenario.yaml"} <= left and not any(n.endswith(".tmp") for n in left)
    resume_run(out)
    assert _figures(out) == _figures(whole)


def test_a_disk_full_from_the_start_leaves_nothing(tmp_path, monkeypatch):
    """A disk with no room: the message names the first file, and no folder of any kind is left."""
    with monkeypatch.context() as patch:
        FullDisk(patch, room=0)
        with pytest.raises(RunFolderError, match=r"No space left on device; no run folder was written$"):
            execute_run(DMM, out=tmp_path / "run", **FEW)
    assert list(tmp_path.iterdir()) == []


def test_a_full_disk_during_replace_keeps_the_old_run(tmp_path, monkeypatch):
    """--replace on a full disk leaves the previous run byte for byte, and says so."""
    out = tmp_path / "run"
    execute_run(DMM, out=out, trials=20, seed=1, variants=["baseline"])
    before = snapshot(out)
    with monkeypatch.context() as patch:
        FullDisk(patch, named=".report.md.tmp")
        with pytest.raises(RunFolderError, match=f"the previous run in {out} is untouched"):
            execute_run(DMM, out=out, replace=True, **FEW)
    assert snapshot(out) == before
    resume_run(out)
    assert json.loads((out / "summary.json").read_text())["trials"] == FEW["trials"]


def test_a_failed_swap_puts_the_old_run_back(tmp_path, monkeypatch):
    """If the new run cannot be renamed into place, the previous run is renamed back: never no run at all."""
    out = tmp_path / "run"
    execute_run(DMM, out=out, trials=20, seed=1, variants=["baseline"])
    before = snapshot(out)
    real_rename = Path.rename

    def rename(self: Path, target: Path) -> Path:
        if self.name == ".run.partial":
            raise OSError(28, os.strerror(28))
        return real_rename(self, target)

    monkeypatch.setattr(Path, "rename", rename)
    with pytest.raises(RunFolderError, match=f"cannot write {out}: No space left on device"):
        execute_run(DMM, out=out, trials=30, seed=1, variants=["baseline"], replace=True)
    assert snapshot(out) == before


def test_a_full_disk_on_resume_keeps_the_chunks(tmp_path, monkeypatch):
    """--resume on a full disk ends in a message; the chunks it had stay, and a later --resume finishes."""
    out = tmp_path / "run"
    interrupted_run(out, **FEW)
    with monkeypatch.context() as patch:
        FullDisk(patch, room=0)
        code, err = _cli("run", "--resume", str(out), "--workers", "1")
    assert code == 1 and "No space left on device; the completed chunks are kept" in err and "Traceback" not in err
    assert len(list((partial_dir(out) / "chunks").glob("*.chunk"))) >= 2
    assert _cli("run", "--resume", str(out), "--workers", "1")[0] == 0


def test_a_real_full_tmpfs(tmp_path):
    """On a real 2 MB tmpfs (a user namespace mounts it, no root needed): run and --replace end in a message, exit 1."""
    if shutil.which("unshare") is None or subprocess.run(["unshare", "-rm", "true"], capture_output=True).returncode:
        pytest.skip("no user namespaces here to mount a tmpfs in")
    disk = tmp_path / "disk"
    disk.mkdir()
    run = f"{sys.executable} -m custodysim run {DMM} --workers 1 --variant split-wallets"
    script = f"""
        mount -t tmpfs -o size=2m tmpfs {disk} || exit 99
        cd {disk}
        {run} --trials 20 --out old > /dev/null 2>&1 || exit 98
        sha256sum old/summary.json > sum
        {run} --trials 40000 --out new > /dev/null 2> new.err; echo "new: $?"
        {run} --trials 40000 --out old --replace > /dev/null 2> old.err; echo "old: $?"
        sha256sum -c sum > /dev/null && echo "old intact"
        ls -a .new.partial/chunks | grep -c chunk
        cat new.err old.err
    """
    result = subprocess.run(["unshare", "-rm", "sh", "-c", script], capture_output=True, text=True, timeout=300)
    if result.returncode == 99:
        pytest.skip("cannot mount a tmpfs in a user namespace here")
    lines = [line for line in result.stdout.splitlines() if line]
    assert lines[:3] == ["new: 1", "old: 1", "old intact"], result.stdout + result.stderr
    assert int(lines[3]) >= 1  # completed chunks kept
    assert lines[4].startswith("cannot write .new.partial/") and "No space left on device" in lines[4]
    assert lines[5].startswith("cannot write .old.partial/") and lines[5].endswith("the previous run in old is untouched")
    assert "Traceback" not in result.stdout


# 9. Damaged run folders.

def _summary(edit):
    return "summary.json", lambda folder: edit_json(folder / "summary.json", edit)


def _trials_loss(text):
    def damage(folder: Path) -> None:
        lines = (folder / "trials.csv").read_bytes().decode().split("\r\n")
        cells = lines[3].split(",")
        cells[2] = text  # loss_usd
        lines[3] = ",".join(cells)
        (folder / "trials.csv").write_bytes("\r\n".join(lines).encode())
    return "trials.csv", damage


DAMAGE = {
    "text-for-a-number": (_summary(lambda s: s["variants"]["baseline"].update(expected_loss_usd="12")),
                          'variants.baseline.expected_loss_usd should be a finite number or null, not "12"'),
    "variant-a-list": (_summary(lambda s: s["variants"].update(baseline=[1, 2])),
                       "variants should be an object whose values are each an object, not"),
    "variants-a-list": (_summary(lambda s: s.update(variants=["baseline"])), "variants should be an object whose"),
    "bad-precision": (_summary(lambda s: s.update(precision={"target": 2, "max_trials": 10, "achieved": {},
                                                             "stopped_by": "precision"})),
                      "precision.target should be a share between 0 and 1, not 2"),
    "trials-text": (_summary(lambda s: s.update(trials="many")), 'trials should be a whole number of 1 or more'),
    "stories-object": (("stories.json", lambda f: (f / "stories.json").write_text('{"a": 1}')),
                       "should hold a list of stories, not dict"),
    "story-without-lines": (("stories.json", lambda f: edit_json(f / "stories.json", lambda s: s[0].pop("lines"))),
                            "[0].lines is missing"),
    "loss-1e999": (_trials_loss("1e999"), "loss_usd of 'baseline' is inf in trial 2"),
    "loss-nan": (_trials_loss("nan"), "loss_usd of 'baseline' is nan in trial 2"),
    "loss-negative": (_trials_loss("-5"), "loss_usd of 'baseline' is -5.0 in trial 2"),
    "scenario-edited": (("scenario.yaml", lambda f: (f / "scenario.yaml").write_text(
        (f / "scenario.yaml").read_text() + "\n# edited\n")), "is not the scenario that was run"),
}


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A complete run with stories, copied and damaged by each test."""
    out = tmp_path_factory.mktemp("pristine") / "run"
    execute_run(DMM, out=out, trials=300, seed=2, variants=["split-wallets"])
    return out


@pytest.mark.parametrize("case", list(DAMAGE))
def test_report_and_compare_refuse_a_damaged_folder(pristine, tmp_path, case):
    """`report` and `compare` refuse a damaged run folder, naming the file and the damage; they write nothing."""
    (file, damage), message = DAMAGE[case]
    run, other = tmp_path / "run", tmp_path / "other"
    shutil.copytree(pristine, run)
    shutil.copytree(pristine, other)
    damage(run)
    before = snapshot(tmp_path)
    code, err = _cli("report", str(run))
    assert code == 1 and err.startswith(f"{run / file}: ") and message in err, err
    code, err = _cli("compare", str(other), str(run), "--out", str(tmp_path / "cmp"))
    assert code == 1 and err.startswith(f"{run / file}: ") and message in err, err
    assert snapshot(tmp_path) == before and sorted(p.name for p in tmp_path.iterdir()) == ["other", "run"]


def test_report_writes_every_file_or_none(pristine, tmp_path, monkeypatch):
    """A report that fails on its last file (a full disk at report.html) leaves every old file as it was."""
    run = tmp_path / "run"
    shutil.copytree(pristine, run)
    before = snapshot(run)
    with monkeypatch.context() as patch:
        FullDisk(patch, named=".report.html.tmp")
        code, err = _cli("report", str(run))
    assert code == 1 and err.startswith(f"cannot write {run / 'report.html'}: No space left on device")
    assert snapshot(run) == before
    assert rerender(run).summary["variants"] == json.loads((pristine / "summary.json").read_text())["variants"]


def test_an_intact_folder_still_compares(pristine, tmp_path):
    """The checks refuse damage only: an intact run compares with itself copied, paired."""
    shutil.copytree(pristine, tmp_path / "a")
    comparison = compare_runs([pristine, tmp_path / "a"], tmp_path / "cmp")
    assert all(r.paired for r in comparison.runs)


def test_staged_folder_releases_its_lock(tmp_path):
    """After a staged folder is put in place or given up, nothing holds it: the same --out can be staged again."""
    final = tmp_path / "out"
    with staged_folder(final, keep_unfinished=False) as staging:
        (staging / "manifest.json").write_text("{}")
    with staged_folder(final, replace=True) as staging:
        (staging / "manifest.json").write_text("{}")
    assert sorted(p.name for p in final.iterdir()) == ["manifest.json"]
