"""Sphinx extension of the auroradask docs: the CLI reference, generated from the parser.

``auroradask-cli`` (a directive, used by ``reference/cli.md``) walks the argparse parser that
the ``auroradask`` command runs, every sub-command and sub-sub-command (``model convert``), and
writes for each its usage, its help and every option with its help, so that the page is
always the parser's own word. It builds docutils nodes directly: help texts are shown as
written, never parsed as markup.

At ``builder-inited`` it also checks that every name of ``auroradask.__all__`` has an entry in
the API reference (``reference/api.md``); a missing one is a warning, an error under ``-W``.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import re
import sys
from pathlib import Path

from docutils import nodes
from docutils.parsers.rst import Directive
from sphinx.util import logging

logger = logging.getLogger(__name__)

DOCS = Path(__file__).resolve().parents[1]
ROOT = DOCS.parent
API_PAGE = DOCS / "reference" / "api.md"


def _load_cli_main():
    """The module that holds ``build_parser``, from this checkout: ``auroradask.cli.main``
    (the package layout of issue 28), else the ``cli/`` folder as ``auroradask.cli`` (the
    layout before it). Only where the checkout has neither, an installed copy."""
    if (ROOT / "auroradask" / "cli" / "main.py").is_file():
        return importlib.import_module("auroradask.cli.main")
    folder = ROOT / "cli"
    if (folder / "main.py").is_file():
        if "auroradask.cli" not in sys.modules:
            spec = importlib.util.spec_from_file_location(
                "auroradask.cli", folder / "__init__.py", submodule_search_locations=[str(folder)]
            )
            package = importlib.util.module_from_spec(spec)
            sys.modules["auroradask.cli"] = package
            spec.loader.exec_module(package)
        return importlib.import_module("auroradask.cli.main")
    try:
        return importlib.import_module("auroradask.cli.main")
    except ModuleNotFoundError:
        return importlib.import_module("auroradask.cli.main")


def build_parser() -> argparse.ArgumentParser:
    """The ``auroradask`` command's parser, as the console script builds it."""
    return _load_cli_main().build_parser()


def _subcommands(parser: argparse.ArgumentParser) -> list[tuple[str, str, argparse.ArgumentParser]]:
    """(name, one-line help, parser) of each sub-command, in the order ``--help`` lists them."""
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help or "" for a in action._choices_actions}
            seen = set()
            for name, sub in action.choices.items():
                if id(sub) in seen:  # an alias of a command already listed
                    continue
                seen.add(id(sub))
                found.append((name, helps.get(name, ""), sub))
    return found


def walk(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    """Yield (path, help, parser) for the parser and every sub-command below it, depth first."""
    yield path, "", parser
    for name, help_text, sub in _subcommands(parser):
        for sub_path, sub_help, sub_parser in walk(sub, (*path, name)):
            yield sub_path, sub_help or help_text, sub_parser


def _options(parser: argparse.ArgumentParser, top: bool = True):
    """(group title, [(invocation, help)]) for each argument group that has visible options;
    ``-h/--help``, which argparse gives every parser, only for the top level."""
    formatter = parser._get_formatter()
    groups = []
    for group in parser._action_groups:
        rows = []
        for action in group._group_actions:
            if action.help == argparse.SUPPRESS or isinstance(action, argparse._SubParsersAction):
                continue
            if isinstance(action, argparse._HelpAction) and not top:
                continue
            invocation = formatter._format_action_invocation(action)
            help_text = formatter._expand_help(action) if action.help else ""
            if action.choices is not None and not isinstance(action.choices, dict):
                choices = ", ".join(str(c) for c in action.choices)
                if choices not in help_text:
                    help_text = f"{help_text} (one of: {choices})".strip()
            rows.append((invocation, " ".join(help_text.split())))
        if rows:
            groups.append((group.title or "options", rows))
    return groups


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


class CliDirective(Directive):
    """``auroradask-cli``: one section per command of the ``auroradask`` parser."""

    has_content = False

    def run(self) -> list[nodes.Node]:
        parser = build_parser()
        document = self.state.document
        sections: dict[tuple[str, ...], nodes.section] = {}
        top = []
        for path, help_text, sub in walk(parser):
            name = " ".join(("auroradask", *path))
            label = f"cli-{_slug(name)}"  # a label for {ref} and [text](cli-auroradask-classify)
            section = nodes.section(ids=[label], names=[label])
            document.note_explicit_target(section, section)
            section += nodes.title(text=name)
            texts = [help_text.strip(), (sub.description or "").strip()]
            if texts[1] == texts[0]:
                texts.pop()
            for text in filter(None, texts):
                for paragraph in re.split(r"\n\s*\n", text):
                    section += nodes.paragraph(text=" ".join(paragraph.split()))
            usage = sub.format_usage().strip()
            section += nodes.literal_block(usage, usage, language="text")
            for title, rows in _options(sub, top=not path):
                section += nodes.rubric(text=title)
                items = nodes.definition_list()
                for invocation, text in rows:
                    item = nodes.definition_list_item()
                    term = nodes.term()
                    term += nodes.literal(text=invocation)
                    item += term
                    definition = nodes.definition()
                    definition += nodes.paragraph(text=text or "(no help text)")
                    item += definition
                    items += item
                section += items
            if sub.epilog:
                section += nodes.literal_block(sub.epilog, sub.epilog, language="text")
            sections[path] = section
            if path:
                sections[path[:-1]] += section
            else:
                top.append(section)
        return top


def check_api_page(app) -> None:
    """Warn for every name of ``auroradask.__all__`` with no entry in the API reference."""
    import auroradask

    entries = set(re.findall(r"^\s+(\S+)\s*$", API_PAGE.read_text(encoding="utf-8"), re.M))
    for name in auroradask.__all__:
        if name not in entries:
            logger.warning(
                f"auroradask.{name} is in auroradask.__all__ but has no entry in "
                f"{API_PAGE.relative_to(DOCS)}: add it to one of its autosummary lists"
            )


def remove_stale_api_pages(app, config) -> None:
    """Remove the autosummary pages of names no longer in ``auroradask.__all__``: autosummary
    writes a page per name into the source folder and never removes one, and a page in no
    toctree is a warning (an error under ``-W``)."""
    import auroradask

    wanted = {f"auroradask.{name}.rst" for name in auroradask.__all__}
    for page in (DOCS / "reference" / "generated").glob("*.rst"):
        if page.name not in wanted:
            page.unlink()


def setup(app):
    app.connect("config-inited", remove_stale_api_pages)
    app.add_directive("auroradask-cli", CliDirective)
    app.connect("builder-inited", check_api_page)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
