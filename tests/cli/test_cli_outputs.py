"""What the commands write: fit's output folder, --json/--quiet, one-line OS errors naming the user's path,
--debug, one-line warnings, and Ctrl-C (a real SIGINT) in the middle of a write."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from .conftest import GOOD_MODEL, run_cli, snapshot

FIT = ["--max-steps", "200", "--lr", "0.1", "--fixed", "--draws", "300"]
QUICK = ["--max-steps", "20", "--lr", "0.1", "--fixed", "--draws", "100"]  # subprocesses: only the writing matters


def test_fit_output_folder_holds_draws_and_summary(workdir, tmp_path, capsys):
    az = pytest.importorskip("arviz")
    out = tmp_path / "out"
    code, stdout, err = run_cli(["fit", workdir / "good.py", "-o", out, "--json", *FIT], capsys)
    assert code == 0, err
    record = json.loads(stdout)
    assert json.loads((out / "summary.json").read_text()) == record
    assert record["model"] == "good" and record["num_steps"] == 200 and record["diagnostics"]["verdict"] == "good"
    assert "mu" in (out / "summary.txt").read_text() and "k-hat" in (out / "summary.txt").read_text()
    idata = az.from_netcdf(out / "draws.nc")
    mu = idata.posterior["mu"].values
    assert mu.shape == (1, 300) and abs(mu.mean() - record["posterior"]["mu"]["mean"]) < 0.1  # one chain
    assert "log_weight" in idata.sample_stats
    assert (out / "fit.safetensors").is_file()  # the fit itself, for varinf.load
    # a second run keeps the first one's files unless --force
    before = snapshot(out)
    code, _, err = run_cli(["fit", workdir / "good.py", "-o", out, *FIT], capsys)
    assert code == 1 and "summary.json: exists; pass --force" not in err and "exists; pass --force" in err
    assert snapshot(out) == before
    assert run_cli(["fit", workdir / "good.py", "-o", out, "--force", "--quiet", *FIT], capsys)[0] == 0


def test_fit_output_without_arviz_is_safetensors(workdir, tmp_path, capsys, monkeypatch):
    from varinf.diagnostics import arviz_adapter
    from varinf.utils import read_safetensors

    monkeypatch.setattr(arviz_adapter, "have_arviz", lambda: False)
    code, stdout, err = run_cli(["fit", workdir / "good.py", "-o", tmp_path, "--quiet", *FIT], capsys)
    assert code == 0 and stdout == "", err
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "draws.safetensors",
        "fit.safetensors",
        "summary.json",
        "summary.txt",
    ]
    tensors, meta = read_safetensors(tmp_path / "draws.safetensors", format="varinf.draws/1")
    assert tensors["posterior/mu"].shape == (300,) and tensors["sample_stats/log_weight"].shape == (300,)
    assert meta["model"] == "good"


@pytest.mark.parametrize(
    "argv",
    [
        ["fit", "{d}/good.py", *FIT],
        ["cavi", "gmm", "{d}/points.csv", "--components", "3"],
        ["cavi", "lda", "{d}/docs.txt", "--topics", "2", "--max-df", "1.0", "--max-iter", "5"],
        ["compress", "{d}/in.png", "-o", "{t}/x.vif", "--model", "{d}/model"],
        ["decompress", "{d}/a.vif", "-o", "{t}/x.png", "--model", "{d}/model"],
    ],
    ids=["fit", "cavi-gmm", "cavi-lda", "compress", "decompress"],
)
def test_json_and_quiet(workdir, tmp_path, capsys, argv):
    fill = lambda flag: [a.replace("{d}", str(workdir)).replace("{t}", str(tmp_path / flag)) for a in argv]
    code, stdout, err = run_cli([*fill("json"), "--json"], capsys)
    assert code == 0, err
    assert isinstance(json.loads(stdout), dict)  # stdout is exactly one JSON object
    code, stdout, err = run_cli([*fill("quiet"), "--quiet"], capsys)
    assert code == 0 and stdout == "", err


def test_coding_is_deterministic_so_compress_has_no_seed(workdir, tmp_path, capsys):
    for name in ("one.vif", "two.vif"):
        assert (
            run_cli(["compress", workdir / "in.png", "-o", tmp_path / name, "--model", workdir / "model"], capsys)[0]
            == 0
        )
    assert (tmp_path / "one.vif").read_bytes() == (tmp_path / "two.vif").read_bytes()


def test_output_through_a_symlinked_folder_is_still_the_input(workdir, tmp_path, capsys):
    (tmp_path / "alias").symlink_to(workdir)
    code, _, err = run_cli(["compress", workdir / "in.png", "-o", tmp_path / "alias" / "in.png", "--force",
                            "--model", workdir / "model"], capsys)  # fmt: skip
    assert code == 1 and "is the input file" in err


def _no_temporary_files(folder: Path) -> bool:
    return not [p for p in folder.rglob("*") if p.name.endswith(".tmp")]


@pytest.mark.parametrize(
    ("target", "error", "message"),
    [
        ("os.fsync", OSError(errno.ENOSPC, "No space left on device"), "x.vif: No space left on device"),
        ("os.replace", OSError(errno.EROFS, "Read-only file system"), "x.vif: Read-only file system"),
        ("tempfile.mkstemp", PermissionError(errno.EACCES, "Permission denied"), "x.vif: Permission denied"),
    ],
    ids=["disk-full", "read-only", "permission"],
)
def test_os_errors_are_one_line_naming_the_users_file(workdir, tmp_path, capsys, monkeypatch, target, error, message):
    module, name = target.split(".")
    real = getattr({"os": os, "tempfile": tempfile}[module], name)

    def fail(*args, **kwargs):
        if module == "tempfile":
            real_fd, real_name = real(*args, **kwargs)  # fail with the temporary file's name, as the OS would
            os.close(real_fd)
            os.unlink(real_name)
            raise type(error)(error.errno, error.strerror, real_name)
        raise error

    monkeypatch.setattr({"os": os, "tempfile": tempfile}[module], name, fail)
    code, _, err = run_cli(["compress", workdir / "in.png", "-o", tmp_path / "x.vif", "--model", workdir / "model"],
                           capsys)  # fmt: skip
    assert code == 1 and err.count("\n") == 1 and "Traceback" not in err
    assert f"{tmp_path}/{message}" in err and ".tmp" not in err
    assert list(tmp_path.iterdir()) == []


# good.py's model, and a marker file written when the command gets as far as running the model file
RECORDING_MODEL = 'from pathlib import Path\nPath(__file__).with_suffix(".ran").touch()\n' + GOOD_MODEL


def _read_only_folder(root: Path, monkeypatch) -> tuple[Path, str]:
    (root / "locked").mkdir()
    (root / "locked").chmod(0o500)
    if os.geteuid() == 0:  # root may write anyway: deny it as the OS denies any other user (the same check runs)
        import varinf.cli.paths as paths

        real = paths.os.access
        locked = (root / "locked").resolve()
        monkeypatch.setattr(paths.os, "access", lambda p, mode, **kw: False if Path(p).resolve() == locked and
                            mode & os.W_OK else real(p, mode, **kw))  # fmt: skip
    return root / "locked" / "out", "cannot write in"


def _file_as_folder(root: Path, monkeypatch) -> tuple[Path, str]:
    (root / "taken").write_text("the user's file")
    return root / "taken", "taken: exists and is not a directory"


def _under_a_file(root: Path, monkeypatch) -> tuple[Path, str]:
    (root / "notes.txt").write_text("the user's file")
    return root / "notes.txt" / "out", "is not a directory"


def _folder_as_file(root: Path, monkeypatch) -> tuple[Path, str]:
    (root / "out" / "summary.json").mkdir(parents=True)
    return root / "out", "summary.json: is a directory (give a file name)"


@pytest.mark.parametrize("case", [_read_only_folder, _file_as_folder, _under_a_file, _folder_as_file],
                         ids=["read-only-folder", "file-as-folder", "path-under-a-file", "folder-as-file"])  # fmt: skip
def test_unwritable_output_is_refused_before_any_work(workdir, tmp_path, capsys, monkeypatch, case):
    """One line naming the path, before the model file runs; nothing of the user's changes. As root (CI), the
    read-only folder is denied by patching the access check the CLI makes, since root may write anywhere."""
    model = tmp_path / "recording.py"
    model.write_text(RECORDING_MODEL)
    target = tmp_path / "target"
    target.mkdir()
    out, message = case(target, monkeypatch)
    before = snapshot(target)
    try:
        code, _, err = run_cli(["fit", model, "-o", out, *FIT], capsys)
        after = snapshot(target)
    finally:
        if (target / "locked").exists():
            (target / "locked").chmod(0o700)  # so that pytest can clean up
    assert code == 1 and err.count("\n") == 1 and "Traceback" not in err, err
    assert str(target) in err and message in err, err
    assert not model.with_suffix(".ran").exists()  # refused before the model file ran
    assert after == before


def test_debug_shows_the_traceback(workdir, capsys, monkeypatch):
    code, _, err = run_cli(["fit", workdir / "syntax.py", "--debug"], capsys)
    assert code == 1 and "Traceback" in err and err.rstrip().endswith("SyntaxError at line 2: '(' was never closed")
    code, _, err = run_cli(["--debug", "fit", workdir / "syntax.py"], capsys)
    assert code == 1 and "Traceback" in err
    monkeypatch.setenv("VARINF_DEBUG", "1")
    code, _, err = run_cli(["fit", workdir / "syntax.py"], capsys)
    assert code == 1 and "Traceback" in err


def test_warnings_are_one_line_each(workdir, capsys):
    code, _, err = run_cli(["fit", workdir / "good.py", "--max-steps", "150", "--lr", "0.1", "--draws", "200"], capsys)
    assert code == 0
    lines = err.splitlines()
    assert any("good: not converged after 150 steps" in line for line in lines), err  # a ConvergenceWarning
    assert all(line.startswith("varinf fit: warning: ") for line in lines), err


# ------------------------------------------------------------------------------------------ Ctrl-C
SLOW_WRITER = """
import os, sys, time
from pathlib import Path

marker = Path(sys.argv[1])
real_fsync = os.fsync

def fsync_after_a_pause(fd):  # every atomic write syncs its temporary file before renaming it
    marker.write_text("writing")
    time.sleep(120)
    real_fsync(fd)

os.fsync = fsync_after_a_pause
from varinf.cli.main import main
sys.exit(main(sys.argv[2:]))
"""


def _interrupt_mid_write(tmp_path: Path, argv: list) -> subprocess.CompletedProcess:
    """Run ``varinf argv`` in a subprocess, send it SIGINT while a file is being written, and wait for it."""
    marker = tmp_path / "marker"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    # a shell without job control starts background jobs with SIGINT ignored, and children inherit that; give the
    # command the default disposition it has in a terminal, so the test also holds when the suite runs in background
    default_sigint = lambda: signal.signal(signal.SIGINT, signal.SIG_DFL)
    proc = subprocess.Popen([sys.executable, "-c", SLOW_WRITER, marker, *map(str, argv)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=default_sigint)  # fmt: skip
    deadline = time.time() + 240
    while not marker.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert marker.exists(), proc.communicate(timeout=60)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def test_ctrl_c_while_compressing_keeps_the_old_file(workdir, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "x.vif").write_bytes(b"the previous version")
    done = _interrupt_mid_write(tmp_path, ["compress", workdir / "in.png", "-o", out / "x.vif", "--force",
                                           "--model", workdir / "model"])  # fmt: skip
    assert done.returncode == 130 and done.stderr == "varinf compress: interrupted\n", done.stderr
    assert [p.name for p in out.iterdir()] == ["x.vif"] and (out / "x.vif").read_bytes() == b"the previous version"


def test_ctrl_c_while_decompressing_leaves_no_file(workdir, tmp_path):
    out = tmp_path / "out"
    done = _interrupt_mid_write(tmp_path, ["decompress", workdir / "a.vif", "-o", out / "x.png",
                                           "--model", workdir / "model"])  # fmt: skip
    assert done.returncode == 130 and done.stderr == "varinf decompress: interrupted\n", done.stderr
    assert not out.exists() or list(out.iterdir()) == []  # no partial image, no temporary file


def test_ctrl_c_while_fit_writes_its_folder_leaves_no_file(workdir, tmp_path):
    out = tmp_path / "out"
    done = _interrupt_mid_write(tmp_path, ["fit", workdir / "good.py", "-o", out, "--quiet", *QUICK])
    *warned, last = done.stderr.splitlines()  # 20 steps: the fit's warnings (kept under --quiet), then the interrupt
    assert done.returncode == 130 and last == "varinf fit: interrupted", done.stderr
    assert all(line.startswith("varinf fit: warning: ") for line in warned), done.stderr
    assert not out.exists() or list(out.iterdir()) == []  # no partial file, no temporary file, no half set
    assert _no_temporary_files(tmp_path)


def test_a_closed_pipe_ends_quietly(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "varinf", "posteriordb", "list", "--root", tmp_path, "--json"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # the reader (`| head`) is gone before the results are printed
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=240) == 141 and "Traceback" not in err, err


def test_json_stdout_holds_only_the_json(workdir, tmp_path, capsys):
    chatty = tmp_path / "chatty.py"
    chatty.write_text("print('loading my model...')\n" + (workdir / "good.py").read_text())
    code, stdout, err = run_cli(["fit", chatty, "--json", *FIT], capsys)
    assert code == 0 and json.loads(stdout)["model"] == "good" and "loading my model..." in err
    code, stdout, err = run_cli(["fit", chatty, "--quiet", *FIT], capsys)
    assert code == 0 and stdout == ""
