"""``.. varinf-cli::`` renders the ``varinf`` command's argparse parsers as reStructuredText.

The page is built from ``varinf.cli.main.build_parser()`` at every docs build, so the reference cannot
drift from the code: a new option, subcommand or default appears on the next build.
"""

from __future__ import annotations

import argparse

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.util.docutils import SphinxDirective
from sphinx.util.nodes import nested_parse_with_titles


def _rst_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("*", "\\*").replace("`", "\\`").replace("|", "\\|")


def _option_label(action: argparse.Action) -> str:
    if action.option_strings:
        label = ", ".join(action.option_strings)
        if action.nargs != 0:
            metavar = action.metavar or action.dest.upper()
            if isinstance(metavar, tuple):
                metavar = " ".join(metavar)
            label += f" {metavar}"
        return label
    return action.metavar or action.dest


def _describe(action: argparse.Action) -> str:
    parts = []
    if action.help and action.help != argparse.SUPPRESS:
        parts.append(_rst_escape(action.help % {"default": action.default, "prog": ""}) if "%(" in action.help
                     else _rst_escape(action.help))
    if action.choices is not None and not isinstance(action, argparse._SubParsersAction):
        parts.append("Choices: " + ", ".join(f"``{c}``" for c in action.choices) + ".")
    if action.option_strings and action.nargs != 0 and action.default not in (None, argparse.SUPPRESS):
        parts.append(f"Default: ``{action.default}``.")
    if action.required and action.option_strings:
        parts.append("Required.")
    return " ".join(parts) or "(no description)"


def _children(parser: argparse.ArgumentParser):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            seen = set()
            helps = {a.dest: a.help for a in action._choices_actions}
            for name, child in action.choices.items():
                if id(child) not in seen:
                    seen.add(id(child))
                    yield name, child, helps.get(name)


def command_rst(parser: argparse.ArgumentParser, summary: str | None, level: int) -> list[str]:
    marks = "=-~^\"'"
    title = parser.prog
    lines = [title, marks[level] * len(title), ""]
    text = parser.description or summary
    if text:
        lines += [_rst_escape(text), ""]
    lines += ["::", ""] + ["   " + u for u in parser.format_usage().strip().splitlines()] + [""]
    positionals = [a for a in parser._actions if not a.option_strings and not isinstance(a, argparse._SubParsersAction)]
    options = [a for a in parser._actions if a.option_strings and a.help != argparse.SUPPRESS]
    for heading, group in (("Arguments", positionals), ("Options", options)):
        if not group:
            continue
        lines += [f".. rubric:: {heading}", ""]
        for action in group:
            lines += [f"``{_option_label(action)}``", f"   {_describe(action)}", ""]
    children = list(_children(parser))
    if children:
        lines += [".. rubric:: Subcommands", ""]
        for name, _child, help_ in children:
            lines.append(f"* ``{name}``: {_rst_escape(help_ or '')}")
        lines.append("")
        for _name, child, help_ in children:
            lines += command_rst(child, help_, level + 1)
    return lines


class VarinfCli(SphinxDirective):
    has_content = False

    def run(self):
        from varinf.cli.main import build_parser

        parser = build_parser()
        lines = []
        for _name, child, help_ in _children(parser):
            lines += command_rst(child, help_, 0)
        node = nodes.section()
        node.document = self.state.document
        nested_parse_with_titles(self.state, StringList(lines, source="varinf-cli"), node)
        return node.children


def setup(app):
    app.add_directive("varinf-cli", VarinfCli)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
