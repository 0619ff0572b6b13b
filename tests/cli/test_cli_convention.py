"""One convention for every subcommand, checked on the ``--help`` each one prints (see ``varinf.cli.options``).

A new subcommand must be added to ``EXPECTED`` with what it does: whether it writes files (then it has
``-o/--output`` and ``--force``), draws random numbers (``--seed``), lets the user choose the floating-point
precision (``--dtype float32|float64``). Every one has ``--quiet``, ``--json`` and ``--debug``.
"""

from __future__ import annotations

import argparse
import re

import pytest

from varinf.cli.main import build_parser, iter_commands, main
from varinf.cli.options import path

# prog: (writes files, draws random numbers, has a selectable precision)
EXPECTED = {
    "varinf fit": (True, True, True),
    "varinf models": (False, False, False),  # lists what is built in
    "varinf posteriordb list": (False, False, False),
    "varinf posteriordb fit": (True, True, True),
    "varinf cavi gmm": (True, True, True),
    "varinf cavi lda": (False, True, True),
    "varinf compress": (True, False, False),  # coding is deterministic: the same input gives the same file
    "varinf decompress": (True, False, False),
    "varinf codec train": (True, True, False),
    "varinf codec export": (True, False, False),  # copies a checkpoint's weights
    "varinf codec eval": (True, False, False),  # deterministic coding and Pillow baselines
    "varinf vae train": (True, True, False),
    "varinf vae eval": (False, True, False),  # writes only RUN/eval_SPLIT.json, part of the run it reads
    "varinf vae plot": (True, True, False),
}
LEGACY = ("--out", "--float32", "--float64", "--no-progress", "--plots")


def _help(prog: str, capsys) -> str:
    with pytest.raises(SystemExit) as exit_:
        main([*prog.split()[1:], "--help"])
    assert exit_.value.code == 0
    return capsys.readouterr().out


def _options(text: str) -> set[str]:
    return set(re.findall(r"(?<![\w-])(--?[a-zA-Z][\w-]*)", text))


def test_every_subcommand_is_declared():
    assert {prog for prog, _ in iter_commands(build_parser())} == set(EXPECTED)


@pytest.mark.parametrize("prog", sorted(EXPECTED))
def test_help_follows_the_convention(prog, capsys):
    writes, random, precision = EXPECTED[prog]
    text = _help(prog, capsys)
    options = _options(text)
    assert {"--quiet", "--json", "--debug"} <= options, prog
    assert ("-o" in options and "--output" in options and "-o PATH, --output PATH" in text) == writes, prog
    assert ("--force" in options) == writes, prog
    assert ("--seed" in options) == random, prog
    assert ("--dtype {float32,float64}" in text) == precision, prog
    assert not options & set(LEGACY), f"{prog} still has {options & set(LEGACY)}"


@pytest.mark.parametrize("prog", sorted(EXPECTED))
def test_shared_options_mean_the_same_everywhere(prog):
    parser = dict(iter_commands(build_parser()))[prog]
    actions = {a.dest: a for a in parser._actions}
    assert isinstance(actions["quiet"], argparse._StoreTrueAction)
    assert isinstance(actions["json"], argparse._StoreTrueAction)  # a flag: results go to stdout, never a file
    if "seed" in actions:
        assert actions["seed"].default == 0 and actions["seed"].type("7") == 7
    if "dtype" in actions:
        assert actions["dtype"].choices == ("float32", "float64")
    if "output" in actions:
        assert actions["output"].option_strings == ["-o", "--output"]
    if "output" in actions:
        with pytest.raises(argparse.ArgumentTypeError):
            actions["output"].type("")  # not silently the current folder
    numbers = [a for a in parser._actions if a.type not in (None, str, path)]
    for a in numbers:  # every number option refuses garbage with a message, never a traceback
        with pytest.raises(argparse.ArgumentTypeError):
            a.type("garbage")


def test_top_level_help_lists_every_command(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for command in ("fit", "posteriordb", "cavi", "compress", "decompress", "codec", "vae"):
        assert command in out
