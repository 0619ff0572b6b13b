"""The CLI's documentation agrees with its parsers: every option has a help text, the README's option
reference is the one the parsers generate, and its convention table has a row for every subcommand."""

from __future__ import annotations

import argparse
import re

import pytest

from varinf.cli.main import build_parser, iter_commands, main
from varinf.cli.models import EXAMPLE_DESCRIPTIONS
from varinf.cli.reference import README, reference_markdown, updated_readme


def test_every_option_of_every_subcommand_has_a_help_text():
    missing = [
        f"{prog} {'/'.join(a.option_strings) or a.dest}"
        for prog, p in iter_commands(build_parser())
        for a in p._actions
        if not isinstance(a, argparse._HelpAction) and not (a.help and a.help.strip())
    ]
    assert missing == []


def test_readme_option_reference_is_generated_from_the_parsers():
    text = README.read_text(encoding="utf-8")
    assert updated_readme(text) == text, "run: python -m varinf.cli.reference --write"
    reference = reference_markdown()
    for prog, p in iter_commands(build_parser()):
        assert f"### `{prog}`" in reference
        for a in p._actions:
            for option in a.option_strings if not isinstance(a, argparse._HelpAction) else ():
                assert option in reference, (prog, option)


def test_readme_convention_table_has_a_row_for_every_subcommand():
    text = README.read_text(encoding="utf-8")
    rows = set(re.findall(r"^\| `([a-z ]+)` \|", text, flags=re.M))
    assert {prog.removeprefix("varinf ") for prog, _ in iter_commands(build_parser())} <= rows


def test_fit_help_names_every_built_in_model(capsys):
    from varinf.models import EXAMPLES

    with pytest.raises(SystemExit):
        main(["fit", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for name in EXAMPLES:
        assert name in text
    assert set(EXAMPLE_DESCRIPTIONS) == set(EXAMPLES)  # varinf models describes each of them


def test_quality_help_states_the_range_the_error_names(capsys, tmp_path):
    with pytest.raises(SystemExit):
        main(["compress", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    from PIL import Image

    from varinf.compression import load_codec

    top = int(load_codec().max_quality)
    assert f"quality level in [0, {top}] for the shipped codec" in text
    Image.new("RGB", (16, 16)).save(tmp_path / "a.png")
    assert main(["compress", str(tmp_path / "a.png"), "-o", str(tmp_path / "a.vif"), "-q", str(top + 1)]) == 1
    assert f"quality must lie in [0, {top}]" in capsys.readouterr().err
