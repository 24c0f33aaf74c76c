"""Watching a study: `resnet-repro status` in every state a run can be in (finished, running,
killed mid-training, diverged, never started, stale after a config change, unreadable), its
JSON form, bad input, the TensorBoard files of a run and of a resumed run, and the progress
output of long jobs on a terminal and in a file."""

from __future__ import annotations

import io
import json
import os
import pty
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from resnet_repro import progressbar, runstate
from resnet_repro.config import load_study, run_identity, study_from_dict
from resnet_repro.results import read_metrics

ROOT = Path(__file__).resolve().parents[1]

TINY = {
    "data": {"source": "synthetic", "download": False, "train_subset": 96, "test_subset": 64},
    "study": {"archs": ["plain", "resnet"], "depths": [8], "seeds": [0, 1]},
    "train": {"batch_size": 32, "iterations": 30, "lr_milestones": [15], "eval_batch_size": 64},
    "device": {"device": "cpu"},
}
# Environment of the commands the tests start: this checkout's package, no forced colours
# (rich would take any stream for a terminal), progress lines at every step.
ENV = {
    **{k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "TTY_COMPATIBLE")},
    "PYTHONPATH": str(ROOT),
    progressbar.INTERVAL_ENV: "0",
}


def command(*args: object) -> list[str]:
    return [sys.executable, "-m", "resnet_repro", *map(str, args)]


def cli(*args: object, env: dict | None = None, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(command(*args), capture_output=True, text=True, env=env or ENV, **kw)


def write_yaml(path: Path, obj: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(obj))
    return path


def train(folder: Path, model: str, seed: int, config: Path | None = None):
    config = config or folder / "config.yaml"
    out = runstate.run_dir(folder, model, seed)
    r = cli("train", "--config", config, "--model", model, "--seed", seed, "--out", out)
    assert r.returncode == 0, r.stderr
    return r


def rows_by_run(status: runstate.StudyStatus) -> dict[tuple[str, int], runstate.RunStatus]:
    return {(r.model, r.seed): r for r in status.rows}


def one_line_error(r: subprocess.CompletedProcess) -> str:
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("resnet-repro: error:"), r.stderr
    return lines[0]


def tree(folder: Path) -> dict[str, int]:
    return {str(p): p.stat().st_mtime_ns for p in sorted(folder.rglob("*"))}


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """A tiny study of 4 runs: plain8 seed 0 trained to the end, resnet8 seed 0 killed
    after its first epochs (and seen running before the kill), the seed-1 runs never
    started. Returns (folder, the killed run's row while it ran, the finished run's stdout)."""
    folder = tmp_path_factory.mktemp("study")
    config = write_yaml(folder / "config.yaml", TINY)
    finished = train(folder, "plain8", 0)
    out = runstate.run_dir(folder, "resnet8", 0)
    args = ["train", "--config", config, "--model", "resnet8", "--seed", 0, "--out", out]
    proc = subprocess.Popen(command(*args), stdout=subprocess.PIPE, text=True, env=ENV)
    for line in proc.stdout:  # the line of epoch 2 comes after epoch 1's checkpoint
        if "| epoch 2 |" in line:
            break
    proc.send_signal(signal.SIGSTOP)  # held where it is (alive) while its row is read
    running = rows_by_run(runstate.study_status(load_study([config]), folder))["resnet8", 0]
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return folder, running, finished.stdout


# ------------------------------------------------------------------ the states


def test_every_state_of_a_tiny_study(study):
    folder, running, _ = study
    st = runstate.study_status(load_study([folder / "config.yaml"]), folder, parallel=1)
    rows = rows_by_run(st)
    assert [r.state for r in st.rows] == ["done", "waiting", "interrupted", "waiting"]

    done = rows["plain8", 0]
    assert (done.iteration, done.total_iterations, done.epoch, done.total_epochs) == (
        30,
        30,
        10,
        10,
    )
    metrics = read_metrics(runstate.run_dir(folder, "plain8", 0) / "metrics.parquet")
    assert done.test_error_pct == pytest.approx(metrics.test_error_pct.iloc[-1])
    assert done.train_error_pct == pytest.approx(metrics.train_error_pct.iloc[-1])
    assert done.images_per_second > 0 and done.device.startswith("CPU")
    assert done.seconds_left == 0 and done.device_type == "cpu"

    assert running.state == "running" and running.note == ""
    assert 3 <= running.iteration < 30 and running.seconds_left > 0

    killed = rows["resnet8", 0]
    assert killed.iteration in (3, 6) and killed.test_error_pct is not None
    assert killed.note == f"resumes from iteration {killed.iteration}"
    assert killed.resumes_from == killed.iteration and not killed.left_estimated
    assert killed.seconds_left == pytest.approx(
        (30 - killed.iteration) * killed.seconds_per_iteration
    )

    for seed in (1,):
        for model in ("plain8", "resnet8"):
            waiting = rows[model, seed]
            assert waiting.iteration is None and waiting.total_iterations == 30
            # no rate of its own yet: estimated from the runs that have one
            assert waiting.left_estimated and waiting.seconds_left > 0
    assert st.finished == 1 and st.states["interrupted"] == 1 and st.states["waiting"] == 2
    assert st.cpu_hours > 0 and st.gpu_hours == 0
    # one at a time: the end is the sum of what is left
    assert st.seconds_left == pytest.approx(sum(r.seconds_left for r in st.rows))


def test_a_diverged_run(tmp_path):
    config = write_yaml(
        tmp_path / "config.yaml",
        {
            **TINY,
            "study": {"archs": ["plain"], "depths": [8], "seeds": [0]},
            "train": {**TINY["train"], "lr": 1e12, "lr_milestones": []},
        },
    )
    train(tmp_path, "plain8", 0)
    (row,) = runstate.study_status(load_study([config]), tmp_path).rows
    assert row.state == "diverged" and row.iteration < 30
    r = cli("status", tmp_path)
    assert r.returncode == 0 and "diverged" in r.stdout and "Every run is complete" in r.stdout


def test_stale_after_a_config_change(study):
    folder, _, _ = study
    write_yaml(folder / "lr.yaml", {"train": {"lr": 0.05}})
    r = cli("status", folder, "--configfile", folder / "lr.yaml", "--json")
    assert r.returncode == 0, r.stderr
    rows = {(x["model"], x["seed"]): x for x in json.loads(r.stdout)["rows"]}
    assert rows["plain8", 0]["state"] == "stale"
    assert "train.lr 0.1 -> 0.05" in rows["plain8", 0]["note"]
    assert rows["resnet8", 0]["state"] == "stale"
    assert "partial run of another recipe" in rows["resnet8", 0]["note"]
    assert rows["plain8", 1]["state"] == "waiting"
    # other data than the run's, by the data keys recorded with it
    write_yaml(folder / "data.yaml", {"data": {"train_subset": 64}})
    r = cli("status", folder, "--configfile", folder / "data.yaml", "--json")
    rows = {(x["model"], x["seed"]): x for x in json.loads(r.stdout)["rows"]}
    assert rows["plain8", 0]["state"] == "stale"
    assert "data.train_subset 96 -> 64" in rows["plain8", 0]["note"]


def test_data_content_is_compared_by_its_fingerprint(study, tmp_path):
    """A prepared.json for the same data keys gives the content's fingerprint: another
    content makes the run stale although no key changed; --check-data reads it now."""
    folder, _, _ = study
    study_cfg = load_study([folder / "config.yaml"])
    check = runstate.data_check(study_cfg, folder, fingerprint="0" * 16)
    rows = rows_by_run(runstate.study_status(study_cfg, folder, check=check))
    assert rows["plain8", 0].state == "stale" and "data content" in rows["plain8", 0].note
    r = cli("status", folder, "--check-data", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["rows"][0]["state"] == "done" and "by content" in out["data_check"]


def test_the_table_and_its_json(study):
    folder, _, _ = study
    r = cli("status", folder, env={**ENV, "COLUMNS": "160"})
    assert r.returncode == 0, r.stderr
    for word in ("plain8", "resnet8", "done", "interrupted", "waiting", "30/30", "10/10"):
        assert word in r.stdout
    assert "4 runs: 1 done, 1 interrupted, 2 waiting" in r.stdout
    assert "GPU-hours" in r.stdout and "Expected end: in about" in r.stdout
    assert "resumes from iteration" in r.stdout

    r = cli("status", folder, "--json", "--parallel", "2")

    def strict(value):
        raise AssertionError(f"not JSON: {value}")

    out = json.loads(r.stdout, parse_constant=strict)
    assert out["parallel"] == 2 and out["finished"] == 1 and len(out["rows"]) == 4
    assert set(out["state_meanings"]) == set(runstate.STATES)
    assert [x["state"] for x in out["rows"]] == ["done", "waiting", "interrupted", "waiting"]
    for key in (
        "iteration",
        "total_iterations",
        "epoch",
        "train_error_pct",
        "test_error_pct",
        "images_per_second",
        "device",
        "seconds_left",
        "note",
    ):
        assert key in out["rows"][0]
    assert out["expected_end"] == pytest.approx(out["now"] + out["seconds_left"])


def test_status_reads_small_files_only_never_writes_and_answers_at_once(study, tmp_path):
    folder, _, _ = study
    before = tree(folder)
    code = (
        "import sys, time; from resnet_repro.cli.main import main; t = time.perf_counter(); "
        f"rc = main(['status', {str(folder)!r}]); t = time.perf_counter() - t; "
        "heavy = [m for m in ('torch', 'pandas', 'pyarrow') if m in sys.modules]; "
        "print('RESULT', rc, heavy, t)"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV)
    line = r.stdout.strip().splitlines()[-1]
    assert line.startswith("RESULT 0 []"), r.stdout + r.stderr
    assert tree(folder) == before

    # 50 runs (the finished run's files copied under every name) in well under a second
    big = {
        **TINY,
        "study": {
            "archs": ["plain", "resnet"],
            "depths": [8, 14, 20, 32, 44],
            "seeds": [0, 1, 2, 3, 4],
        },
    }
    config = write_yaml(tmp_path / "config.yaml", big)
    source = runstate.run_dir(folder, "plain8", 0)
    s = load_study([config])
    for model, seed in s.runs():
        dest = runstate.run_dir(tmp_path, model, seed)
        dest.mkdir(parents=True)
        for name in ("run.json", "metrics.parquet"):
            (dest / name).write_bytes((source / name).read_bytes())
    t = time.perf_counter()
    st = runstate.study_status(s, tmp_path)
    assert time.perf_counter() - t < 1.0
    assert len(st.rows) == 50 and st.states["stale"] == 49 and st.states["done"] == 1


def test_the_end_of_the_study_with_runs_in_parallel():
    def row(state, left):
        return runstate.RunStatus("resnet8", 0, state, seconds_left=left)

    rows = [
        row("running", 10.0),
        row("waiting", 30.0),
        row("interrupted", 20.0),
        row("waiting", 10.0),
        row("done", 0.0),
    ]
    # two slots: 10 | 0 -> 30 joins the free one, 20 the one free at 10, 10 the one at 30
    assert runstate.expected_finish(rows, 2) == 40.0
    assert runstate.expected_finish(rows, 1) == 70.0
    assert runstate.expected_finish(rows, 10) == 30.0
    assert runstate.expected_finish([*rows, row("waiting", None)], 2) is None


def test_a_trainer_is_alive_by_its_process_here_and_by_its_files_age_elsewhere():
    here = runstate.Here("node1", "boot-a", now=10_000.0, alive=lambda pid: pid == 42)
    rec = {"host": "node1", "boot_id": "boot-a", "pid": 42, "updated_at": 1.0}
    assert runstate.writer_alive(rec, here)[0]
    assert not runstate.writer_alive({**rec, "pid": 43}, here)[0]
    assert not runstate.writer_alive({**rec, "boot_id": "boot-b"}, here)[0]
    remote = {**rec, "host": "gpu7", "seconds_per_iteration": 0.01, "steps_per_epoch": 390}
    alive, where = runstate.writer_alive({**remote, "updated_at": 9_500.0}, here)
    assert alive and "gpu7" in where
    assert not runstate.writer_alive({**remote, "updated_at": 8_000.0}, here)[0]


# ------------------------------------------------------------------ bad input


def test_no_study_in_the_folder_is_one_line(tmp_path):
    assert "no study in" in one_line_error(cli("status", tmp_path))
    assert "not a folder" in one_line_error(cli("status", tmp_path / "nowhere"))
    (tmp_path / "config.yaml").write_text("study: {depths: [9]}\n")
    assert "6n+2" in one_line_error(cli("status", tmp_path))


def test_a_study_that_never_started(tmp_path):
    write_yaml(tmp_path / "config.yaml", TINY)
    r = cli("status", tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("waiting") >= 4
    assert "No run of this study has started" in r.stdout
    assert "Expected end: not known" in r.stdout
    assert list(tmp_path.iterdir()) == [tmp_path / "config.yaml"]


@pytest.mark.parametrize(
    "content, words",
    [
        ('{"version": 1, "model": "plain8", "iter', "truncated or not JSON"),
        ('{"hello": "world"}', "not a resnet-repro progress file"),
        ("[1, 2, 3]", "not a JSON object"),
        ("\x00\xff\xfe", "truncated or not JSON"),
    ],
    ids=["truncated", "foreign", "list", "binary"],
)
def test_unreadable_progress_gives_a_row_with_a_note(study, tmp_path, content, words):
    folder, _, _ = study
    write_yaml(tmp_path / "config.yaml", TINY)
    path = runstate.progress_path(runstate.run_dir(tmp_path, "resnet8", 1))
    path.parent.mkdir(parents=True)
    path.write_text(content)
    r = cli("status", tmp_path, "--json")
    assert r.returncode == 0, r.stderr
    row = {(x["model"], x["seed"]): x for x in json.loads(r.stdout)["rows"]}["resnet8", 1]
    assert row["state"] == "unknown" and words in row["note"]
    assert "Traceback" not in cli("status", tmp_path).stderr


def test_files_of_another_run_or_half_written_outputs(study, tmp_path):
    folder, _, _ = study
    write_yaml(tmp_path / "config.yaml", TINY)
    killed = runstate.progress_path(runstate.run_dir(folder, "resnet8", 0))
    other = runstate.progress_path(runstate.run_dir(tmp_path, "plain8", 1))
    other.parent.mkdir(parents=True)
    other.write_bytes(killed.read_bytes())  # progress of resnet8 seed 0
    # a run whose metrics are written and whose run.json is not yet
    half = runstate.run_dir(tmp_path, "resnet8", 1)
    half.mkdir(parents=True)
    (half / "metrics.parquet").write_bytes(
        (runstate.run_dir(folder, "plain8", 0) / "metrics.parquet").read_bytes()
    )
    (runstate.run_dir(tmp_path, "plain8", 0)).mkdir(parents=True)
    (runstate.run_dir(tmp_path, "plain8", 0) / "run.json").write_text('{"model": "pl')
    st = rows_by_run(runstate.study_status(load_study([tmp_path / "config.yaml"]), tmp_path))
    assert st["plain8", 1].state == "unknown" and "resnet8 seed 0" in st["plain8", 1].note
    assert st["resnet8", 1].state == "unknown" and "without run.json" in st["resnet8", 1].note
    assert st["plain8", 0].state == "unknown" and "run.json" in st["plain8", 0].note


def test_watch_ends_when_every_run_is_complete_or_on_ctrl_c(study, tmp_path):
    folder, _, _ = study
    write_yaml(
        tmp_path / "config.yaml",
        {**TINY, "study": {**TINY["study"], "archs": ["plain"], "seeds": [0]}},
    )
    done = runstate.run_dir(tmp_path, "plain8", 0)
    done.mkdir(parents=True)
    for name in ("run.json", "metrics.parquet"):
        (done / name).write_bytes((runstate.run_dir(folder, "plain8", 0) / name).read_bytes())
    r = cli("status", tmp_path, "--watch", "0.2", timeout=60)
    assert r.returncode == 0 and "Every run is complete" in r.stdout
    # the study with runs to go: redrawn until Ctrl-C, which ends it quietly
    proc = subprocess.Popen(
        command("status", folder, "--watch", "0.2", "--json"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
    )
    first = json.loads(proc.stdout.readline())
    second = json.loads(proc.stdout.readline())
    assert len(first["rows"]) == 4 and second["now"] > first["now"]
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0 and "Traceback" not in err


# ------------------------------------------------------------------ TensorBoard


def scalars(logdir: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar of an event folder as TensorBoard shows it (its own reader)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(logdir))
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def raw_steps(logdir: Path) -> list[tuple[str, int]]:
    """(tag, step) of every scalar written in every event file of the folder, as stored."""
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

    out = []
    for path in sorted(logdir.glob("events.out.tfevents.*")):
        for event in EventFileLoader(str(path)).Load():
            out += [(v.tag, event.step) for v in event.summary.value]
    return out


def expected_scalars(metrics: pd.DataFrame) -> dict[str, list[tuple[int, float]]]:
    """Epoch rows under the usual tags, training-window rows under their own."""
    from resnet_repro.engine.tensorboard import SCALARS, WINDOW_SCALARS

    out = {}
    for kind, tags in (("epoch", SCALARS), ("window", WINDOW_SCALARS)):
        rows = metrics[metrics["kind"] == kind]
        for col, tag in tags.items():
            values = [(int(i), float(v)) for i, v in zip(rows.iteration, rows[col]) if v == v]
            if values:
                out[tag] = values
    return out


def assert_same_scalars(logdir: Path, metrics: pd.DataFrame) -> None:
    got, want = scalars(logdir), expected_scalars(metrics)
    assert sorted(got) == sorted(want)
    for tag in want:
        assert [s for s, _ in got[tag]] == [s for s, _ in want[tag]], tag
        assert [v for _, v in got[tag]] == pytest.approx([v for _, v in want[tag]], rel=1e-6)


def test_a_run_writes_its_curves_for_tensorboard_and_a_resume_never_repeats_a_step(tmp_path):
    from test_train import CPU, Stop

    from resnet_repro.engine import train as T

    board = tmp_path / "tensorboard"
    cfg = {
        **TINY,
        "data": {**TINY["data"], "val_size": 16},
        "train": {**TINY["train"], "iterations": 12, "lr_milestones": [6]},
        "tracking": {"tensorboard": True, "tensorboard_dir": str(board)},
    }
    s = study_from_dict(cfg)
    logdir = board / "resnet8_seed0"

    def stop_in_epoch_3(msg):  # epochs 1 and 2 are checkpointed and in the event file
        if "| epoch 3 |" in msg:
            raise Stop

    with pytest.raises(Stop):
        T.train_run(s, "resnet8", 0, tmp_path / "c" / "state.pt", CPU, log=stop_in_epoch_3)
    assert sorted({step for _, step in raw_steps(logdir)}) == [3, 6]
    resumed = T.train_run(s, "resnet8", 0, tmp_path / "c" / "state.pt", CPU, log=lambda m: None)
    assert resumed.resumed_at_iteration == 6
    metrics = pd.DataFrame(resumed.rows)
    assert_same_scalars(logdir, metrics)
    steps = raw_steps(logdir)
    assert len(steps) == len(set(steps)), "a step written twice"
    assert {"loss/val", "error_pct/val", "lr", "images_per_second"} <= set(scalars(logdir))
    # the progress file beside the checkpoint says where the run ended
    progress = json.loads((tmp_path / "c" / "progress.json").read_text())
    assert progress["iteration"] == 12 and progress["identity"] == json.loads(
        json.dumps(resumed.identity)
    )

    # the same event files from the finished run's metrics, by `resnet-repro tensorboard`
    out = runstate.run_dir(tmp_path, "resnet8", 0)
    out.mkdir(parents=True)
    from resnet_repro.results import write_metrics

    write_metrics(resumed.rows, out / "metrics.parquet")
    r = cli("tensorboard", "--runs", tmp_path / "results" / "runs", "--out", tmp_path / "tb2")
    assert r.returncode == 0, r.stderr
    assert "tensorboard --logdir" in r.stdout
    assert scalars(tmp_path / "tb2" / "resnet8_seed0") == scalars(logdir)


def test_tracking_is_off_by_default_and_not_part_of_the_run_identity():
    off, on = study_from_dict({}), study_from_dict({"tracking": {"tensorboard": True}})
    assert off.tracking.tensorboard is False
    assert run_identity(off, "resnet20", 0, "f") == run_identity(on, "resnet20", 0, "f")


def test_tensorboard_command_without_finished_runs_is_one_line(tmp_path):
    r = cli("tensorboard", "--runs", tmp_path, "--out", tmp_path / "tb")
    assert "no finished run" in one_line_error(r)


# ------------------------------------------------------------------ progress output


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_bar_on_a_terminal_and_plain_lines_in_a_file(monkeypatch):
    for var in ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE"):
        monkeypatch.delenv(var, raising=False)
    file, term = io.StringIO(), Terminal()
    for stream in (file, term):
        with progressbar.Bar("job", "steps", stream=stream, interval=0) as bar:
            bar.start(4)
            for _ in range(4):
                bar.advance()
            bar.say("a line of the job")
    lines = file.getvalue().splitlines()
    assert lines[0].startswith("job: 1/4 steps (25%), 0:00:00 so far, about 0:00:00 left")
    assert "a line of the job" in lines and lines[-1].startswith("job: 4/4 steps (100%), done in")
    assert "\x1b" not in file.getvalue() and "━" not in file.getvalue()
    shown = term.getvalue()
    assert "━" in shown and "4/4" in shown and "a line of the job" in shown
    assert "so far, about" not in shown

    quiet = io.StringIO()
    with progressbar.Bar("job", stream=quiet, interval=3600) as bar:
        bar.start(10)
        bar.advance(10)
    assert quiet.getvalue() == ""  # a short job in a file says nothing of its own


def test_train_prints_progress_lines_with_the_time_left_into_a_file(study):
    _, _, stdout = study
    assert "plain8 seed 0: 1/30 iterations (3%)" in stdout
    assert "about" in stdout and "left" in stdout
    assert "━" not in stdout


def run_on_a_terminal(args: list[str]) -> str:
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        args, stdout=slave, stderr=slave, env={**ENV, "TERM": "xterm", "COLUMNS": "120"}
    )
    os.close(slave)
    out = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        out += chunk
    proc.wait()
    os.close(master)
    assert proc.returncode == 0, out.decode(errors="replace")[-2000:]
    return out.decode(errors="replace")


def test_train_and_a_probe_draw_a_bar_on_a_terminal(study, tmp_path):
    folder, _, _ = study
    config = write_yaml(
        tmp_path / "c.yaml",
        {**TINY, "train": {**TINY["train"], "iterations": 6, "lr_milestones": [3]}},
    )
    shown = run_on_a_terminal(
        command(
            "train", "--config", config, "--model", "plain8", "--seed", 0, "--out", tmp_path / "run"
        )
    )
    assert "━" in shown and "6/6" in shown and "iterations" in shown
    assert "plain8 seed 0 | epoch 2 | iter 6/6" in shown  # the epoch lines above the bar
    assert "so far, about" not in shown

    model = runstate.run_dir(folder, "plain8", 0) / "model.pt"
    args = ["probe", "lesions", "--config", folder / "config.yaml", "--model-file", model]
    shown = run_on_a_terminal(command(*args, "--out", tmp_path / "l.parquet"))
    assert "━" in shown and "batches" in shown and "so far, about" not in shown
    r = cli(*args, "--out", tmp_path / "l2.parquet")
    assert r.returncode == 0, r.stderr
    assert "lesions plain8 seed 0: 1/" in r.stdout and "left" in r.stdout
    assert "━" not in r.stdout


def test_a_probe_that_takes_long_on_the_cpu_says_so_first(study, monkeypatch, capsys):
    from resnet_repro.cli.main import main
    from resnet_repro.nets.families import build_model
    from resnet_repro.probes import cost

    a = study_from_dict({}).analysis
    message = cost.long_probe_warning("lesions_k", "resnet56", build_model("resnet56"), a, 10000, 2)
    assert "hours" in message
    for key in (
        "analysis.lesion_k_points (30)",
        "analysis.lesion_draws (10)",
        "analysis.probe_images (10000)",
    ):
        assert key in message
    small = study_from_dict({"analysis": {"probe_images": 64, "lesion_draws": 2}}).analysis
    assert (
        cost.long_probe_warning("lesions_k", "resnet8", build_model("resnet8"), small, 64, 2)
        is None
    )

    folder, _, _ = study
    monkeypatch.setattr(cost, "LONG_SECONDS", 0.0)
    model = runstate.run_dir(folder, "plain8", 0) / "model.pt"
    out = folder.parent / "warned.parquet"
    assert (
        main(
            [
                "probe",
                "lesions_k",
                "--config",
                str(folder / "config.yaml"),
                "--model-file",
                str(model),
                "--out",
                str(out),
            ]
        )
        == 0
    )
    err = capsys.readouterr().err
    assert "warning: the lesions_k probe of plain8 takes roughly" in err
    assert "analysis.lesion_k_points" in err
