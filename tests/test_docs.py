"""The README and docs/ stay true: every relative link resolves, and every `semantic-moments` command
line written in them parses against the current CLI (argparse only: nothing runs), with every
`--flag` they mention known to the CLI or to the benchmark scripts."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
FENCE = re.compile(r"```[a-z]*\n(.*?)```", re.S)
INLINE = re.compile(r"`([^`\n]+)`")


def _documents_with(text: str) -> list[Path]:
    return [path for path in DOCUMENTS if text in path.read_text()]


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda path: str(path.relative_to(ROOT)))
def test_every_relative_link_resolves(document):
    broken = []
    for target in LINK.findall(document.read_text()):
        if re.match(r"^[a-z]+:", target) or target.startswith("#"):
            continue
        if not (document.parent / target.split("#")[0]).exists():
            broken.append(target)
    assert not broken, f"{document.name}: links that lead nowhere: {broken}"


def command_lines(text: str) -> list[str]:
    """Every `semantic-moments ...` invocation in code blocks: whole lines (continuations joined,
    comments, pipes and redirections cut)."""
    found = []
    for block in FENCE.findall(text):
        for line in block.replace("\\\n", " ").splitlines():
            found += _invocations(line)
    return found


def inline_mentions(text: str) -> list[str]:
    """`semantic-moments ...` in inline code: a command (and options) named in prose."""
    return [found for span in INLINE.findall(FENCE.sub("", text)) for found in _invocations(span)]


def _invocations(line: str) -> list[str]:
    match = re.search(r"(?:^|[\s/$(])(?:semantic-moments|\$B|\$\{B\})\s+(.*)", line)
    if not match or line.lstrip().startswith(("#", "B=")):
        return []
    rest = match.group(1)
    rest = re.split(r"\s+#\s|\s\|\s|\s>\s|\s2>|\s&&\s|\s;\s", rest)[0]
    return [rest.strip()]


def _cli_flags() -> set[str]:
    import argparse

    from semantic_moments.cli import build_parser

    flags: set[str] = set()
    stack = [build_parser()]
    while stack:
        parser = stack.pop()
        for action in parser._actions:  # noqa: SLF001 - argparse offers no public walk of its options
            flags.update(option for option in action.option_strings if option.startswith("--"))
            if isinstance(action, argparse._SubParsersAction):  # noqa: SLF001
                stack.extend(action.choices.values())
    return flags


def _script_flags() -> set[str]:
    flags: set[str] = set()
    for script in (ROOT / "benchmarks").glob("*.py"):
        flags.update(re.findall(r"add_argument\(\s*\"(--[a-z0-9-]+)\"", script.read_text()))
    return flags


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda path: str(path.relative_to(ROOT)))
def test_every_command_line_parses_against_the_cli(document, capsys):
    from semantic_moments.cli import build_parser

    failures = []
    for line in command_lines(document.read_text()):
        try:
            argv = shlex.split(line)
        except ValueError as error:
            failures.append(f"{line!r}: {error}")
            continue
        argv = [word for word in argv if not re.fullmatch(r"\.\.\.|…", word)]
        try:
            build_parser().parse_args(argv)
        except SystemExit as exit_:
            if exit_.code not in (0, None):
                failures.append(f"{line!r}: {capsys.readouterr().err.strip().splitlines()[-1]}")
    assert not failures, f"{document.name}: command lines the CLI refuses:\n" + "\n".join(failures)


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda path: str(path.relative_to(ROOT)))
def test_every_flag_named_in_the_docs_exists(document):
    known = _cli_flags() | _script_flags()
    text = FENCE.sub("", document.read_text())
    named = {flag for span in INLINE.findall(text) for flag in re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", span)}
    unknown = sorted(named - known - {"--help", "--version"})
    assert not unknown, f"{document.name}: flags no command or benchmark script has: {unknown}"


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda path: str(path.relative_to(ROOT)))
def test_every_command_named_in_prose_exists_with_its_options(document):
    """An inline mention names a command, maybe with options, not always every required argument:
    its command words must lead to a (sub)command and its options must be that command's."""
    import argparse

    from semantic_moments.cli import build_parser

    failures = []
    for mention in inline_mentions(document.read_text()):
        parser = build_parser()
        for word in shlex.split(mention):
            if word.startswith("-"):
                if word.split("=")[0] not in {option for action in parser._actions  # noqa: SLF001
                                              for option in action.option_strings}:
                    failures.append(f"{mention!r}: {parser.prog} has no {word}")
                continue
            commands = [action for action in parser._actions  # noqa: SLF001
                        if isinstance(action, argparse._SubParsersAction)]  # noqa: SLF001
            if commands and word in commands[0].choices:
                parser = commands[0].choices[word]
            elif commands and not word.isupper():
                failures.append(f"{mention!r}: {parser.prog} has no command {word!r}")
                break
    assert not failures, f"{document.name}: " + "; ".join(failures)


def test_the_checks_see_the_commands():
    assert len(command_lines((ROOT / "README.md").read_text())) >= 3  # the main job, at least
    assert command_lines("```bash\n$B index build x --index y   # comment\n```") == ["index build x --index y"]
