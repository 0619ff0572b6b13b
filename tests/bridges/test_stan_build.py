"""Compiling Stan programs without compiling C++: stanc's errors on one line, programs without parameters,
a missing compiler, and the cache under two processes building the same program (a fake compiler)."""

from __future__ import annotations

import multiprocessing
import stat
import sys
from pathlib import Path

import pytest

from varinf.bridges.stan import build, toolchain
from varinf.bridges.stan.build import StanCompileError, compile_program, stanc_error
from varinf.bridges.stan.toolchain import StanToolchainError, find_toolchain


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("VARINF_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _fake_compiler(tmp_path: Path) -> Path:
    """A 'compiler' that writes its -o file after a second and logs each call (one line per invocation)."""
    script = tmp_path / "fake-g++"
    script.write_text(
        f"#!{sys.executable}\n"
        "import sys, time, pathlib\n"
        "args = sys.argv[1:]\n"
        "if args == ['--version']:\n    print('fake g++ 1.0'); sys.exit(0)\n"
        f"open({str(tmp_path / 'calls.log')!r}, 'a').write(' '.join(a for a in args if a.endswith(('.hpp', '.cpp', '.o'))) + '\\n')\n"
        "time.sleep(1.0)\n"
        "pathlib.Path(args[args.index('-o') + 1]).write_bytes(b'fake')\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return script


def _compile(program: str) -> str:
    toolchain.find_toolchain.cache_clear()
    return str(compile_program(program, "race.stan", progress=False).library)


PROGRAM = "parameters { real x; } model { x ~ normal(0, 1); }\n"


def test_two_processes_compiling_the_same_program_share_one_build(cache, tmp_path, monkeypatch):
    monkeypatch.setenv("CXX", str(_fake_compiler(tmp_path)))
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(2) as pool:
        paths = pool.map(_compile, [PROGRAM, PROGRAM])
    assert paths[0] == paths[1] and Path(paths[0]).read_bytes() == b"fake"
    calls = (tmp_path / "calls.log").read_text().splitlines()
    # once: precompiled header, glue, model, link (the second process waited and reused them)
    assert len(calls) == 4, calls
    assert not any((cache / "stan" / "tmp").iterdir())
    toolchain.find_toolchain.cache_clear()
    assert _compile(PROGRAM) == paths[0]  # a later use: no compiler call
    assert len((tmp_path / "calls.log").read_text().splitlines()) == 4


def test_stanc_errors_are_one_line_with_file_and_line(cache):
    with pytest.raises(StanCompileError) as e:
        compile_program("data { int N; }\nparameters { real mu }\nmodel { mu ~ normal(0, 1); }\n", "bad.stan")
    msg = str(e.value)
    assert msg.startswith("bad.stan: syntax error at line 2, column 21:") and "expected" in msg and "\n" not in msg
    with pytest.raises(StanCompileError, match=r"semantic error at line 1, column \d+: Identifier 's' not in scope"):
        compile_program("parameters { real mu; } model { mu ~ normal(0, s); }", "<string>")
    with pytest.raises(StanCompileError, match="old array syntax"):
        compile_program("data { int N; real y[N]; } parameters { real mu; } model { y ~ normal(mu, 1); }", "old.stan")


def test_stanc_error_parser_keeps_unrecognised_output():
    assert stanc_error("something odd\nhappened", "a.stan") == "a.stan: something odd happened"


def test_program_without_parameters_is_refused_before_compiling(cache, monkeypatch):
    from varinf import StanModel
    from varinf.models import ModelError

    monkeypatch.setenv("CXX", "/nonexistent/compiler")  # would fail if anything were compiled
    toolchain.find_toolchain.cache_clear()
    try:
        with pytest.raises(ModelError, match="no parameters"):
            StanModel("generated quantities { real x = 1; }", progress=False)
    except StanToolchainError:
        pytest.fail("the compiler was looked for before the program was checked")
    finally:
        toolchain.find_toolchain.cache_clear()


def test_missing_compiler_says_which_package(cache, monkeypatch):
    monkeypatch.setenv("CXX", "definitely-not-a-compiler")
    toolchain.find_toolchain.cache_clear()
    try:
        with pytest.raises(StanToolchainError, match=r"apt-get install g\+\+"):
            find_toolchain()
    finally:
        toolchain.find_toolchain.cache_clear()


def test_missing_program_and_bad_data_files(tmp_path):
    from varinf import StanModel
    from varinf.bridges.stan.data import read_data

    with pytest.raises(FileNotFoundError, match="does not exist"):
        StanModel(tmp_path / "nope.stan")
    with pytest.raises(ValueError, match=r"data file .* does not exist"):
        read_data(tmp_path / "nope.json")
    (tmp_path / "bad.json").write_text("{1: 2")
    with pytest.raises(ValueError, match="is not valid JSON"):
        read_data(tmp_path / "bad.json")
    (tmp_path / "list.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match="must hold a JSON object"):
        read_data(tmp_path / "list.json")


def test_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.delenv("VARINF_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert build.cache_dir() == tmp_path / "varinf"
    monkeypatch.setenv("VARINF_CACHE_DIR", str(tmp_path / "x"))
    assert build.cache_dir() == tmp_path / "x"
