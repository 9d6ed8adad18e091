"""Every code block of the README (and of docs/*.md) runs, or is checked, as written.

A reader copies these blocks; one that fails when copied is a bug. Each fenced block must
carry a label saying what it is, and each label has its check:

- ``python``: run in order, each page's blocks in one namespace (as a reader pastes them
  into one session), in a temporary folder. A block that defines ``test_*`` functions is a
  test file: it runs under pytest (with hwbench's plugin) and must pass.
- ``sh`` / ``bash`` / ``shell``: every command line. Cheap ``hwbench`` commands run; the
  others are parsed by the real CLI parser, their backends, models, peers, precisions and
  ops named are checked, and the files they read must exist. ``pip install '.[x]'`` must
  name extras that pyproject.toml declares; ``python -m pytest`` options must be ones pytest
  (with its plugins) knows. Setup commands that change the machine (venv, ray start,
  pip download, echo into .git) are named in ``NOT_RUN`` and not run.
- ``console``: ``$ `` lines are commands, checked as above; the other lines are output.
- ``usage``: command synopses: each ``hwbench SUBCOMMAND [--option ...]`` names a real
  subcommand, real options, and choices the parser accepts.
- ``toml``: parsed; a sweep spec is loaded by ``hwbench sweep``'s own loader.
- ``text``: output or a listing, shown and not run.

Any other block (no label, an unknown one, or an indented code block) fails the test, so a
new block cannot slip through unchecked.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("**/*.md"))]

PYTHON = "python"
SHELL = ("sh", "bash", "shell")
CONSOLE = "console"
USAGE = "usage"
TOML = "toml"
OUTPUT = "text"
LABELS = (PYTHON, *SHELL, CONSOLE, USAGE, TOML, OUTPUT)

# hwbench commands cheap enough to run in CI as written (seconds on 2 cores); they run in a
# temporary folder, paths into this repository (results/...) read from the checkout.
CHEAP_SUBCOMMANDS = {"list", "node-resources", "report"}
# Commands a page shows but that change the machine or need another one: named, not run.
NOT_RUN = {
    "venv": "creates a virtual environment",
    "activate": "activates a virtual environment",
    "echo": "edits a file of the reader's checkout",
    "ray": "starts a Ray cluster node",
    "pip download": "downloads wheels for another machine",
}


@dataclass(frozen=True)
class Block:
    page: Path
    line: int  # 1-based line of the opening fence
    label: str
    text: str

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def blocks(page: Path) -> list[Block]:
    """Every code block of a Markdown page, fenced or indented, in order."""
    from markdown_it import MarkdownIt

    found = []
    for token in MarkdownIt("commonmark").parse(page.read_text(encoding="utf-8")):
        if token.type in ("fence", "code_block"):
            label = token.info.split()[0] if token.type == "fence" and token.info else ""
            if token.type == "code_block":
                label = "<indented>"
            found.append(Block(page, token.map[0] + 1, label, token.content))
    return found


ALL_BLOCKS = [block for page in PAGES for block in blocks(page)]


def _ids(items: list[Block]) -> list[str]:
    return [block.where for block in items]


def _of(*labels: str) -> list[Block]:
    return [block for block in ALL_BLOCKS if block.label in labels]


# -- every block is accounted for -------------------------------------------------------

@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_block_has_a_label_this_test_checks(page):
    unknown = [f"{b.where}: label {b.label or '(none)'!r}" for b in blocks(page)
               if b.label not in LABELS]
    assert not unknown, ("code blocks this test cannot classify; fence each with one of "
                         f"{', '.join(LABELS)}:\n" + "\n".join(unknown))


def test_the_readme_has_blocks_of_every_kind():
    # the guard must not pass by finding nothing (a broken extractor, a renamed label)
    labels = [b.label for b in blocks(ROOT / "README.md")]
    for label in (PYTHON, USAGE, OUTPUT):
        assert label in labels
    assert any(label in SHELL for label in labels)


def test_classifier_refuses_unlabelled_and_indented_blocks(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("text\n\n    indented code\n\n```\nbare\n```\n\n```python\nx = 1\n```\n")
    assert [b.label for b in blocks(page)] == ["<indented>", "", PYTHON]
    assert [b.label in LABELS for b in blocks(page)] == [False, False, True]


# -- the README is one page; docs/ holds the rest -----------------------------------------

README_LIMIT = 300  # lines: what a newcomer reads on one page (issue 14)
# pages the README links that another branch is writing; checked like any other once they
# exist (a missing one that is not named here fails)
PENDING = {"docs/adding-an-op.md"}
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def test_the_readme_fits_one_page():
    lines = (ROOT / "README.md").read_text(encoding="utf-8").count("\n")
    assert lines <= README_LIMIT, (f"README.md has {lines} lines, more than {README_LIMIT}: "
                                   "move the detail to a page under docs/ and link it")


def _ci_command_lines() -> list[str]:
    text = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    return [line.strip() for line in text.splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


def test_the_readme_opens_with_the_two_commands():
    first = blocks(ROOT / "README.md")[0]
    lines = [line for line in first.text.splitlines() if line.strip()]
    assert first.label in SHELL and len(lines) == 2, (
        f"{first.where}: the README's first block must hold exactly two commands")
    install_and_run, install_and_test = lines
    assert install_and_run.endswith("pip install '.[cpu]' && hwbench run --backend all"), \
        install_and_run
    assert install_and_test.endswith("python -m pytest"), install_and_test
    # .ci/run runs the README's test command verbatim
    assert install_and_test in _ci_command_lines(), (
        f"{first.where}: .ci/run does not run the README's test command {install_and_test!r}")


def _links(page: Path) -> list[str]:
    text = page.read_text(encoding="utf-8")
    return [target for target in LINK.findall(text)
            if not re.match(r"[a-z]+:", target) and not target.startswith("#")]


def _target(page: Path, link: str) -> Path:
    return (page.parent / link.split("#")[0]).resolve()


def anchors(page: Path) -> set[str]:
    """The #fragments GitHub gives a page's headings."""
    from markdown_it import MarkdownIt

    tokens = MarkdownIt("commonmark").parse(page.read_text(encoding="utf-8"))
    found = set()
    for opening, inline in zip(tokens, tokens[1:], strict=False):
        if opening.type == "heading_open":
            text = re.sub(r"[^\w\- ]", "", inline.content.lower().replace("`", ""))
            found.add(text.replace(" ", "-"))
    return found


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_lead_to_files_and_headings(page):
    text = page.read_text(encoding="utf-8")
    local = [t for t in LINK.findall(text) if t.startswith("#")]
    missing = [link for link in local if link[1:] not in anchors(page)]
    for link in _links(page):
        target = _target(page, link)
        if not target.exists():
            if str(target.relative_to(ROOT)) not in PENDING:
                missing.append(link)
        elif "#" in link and target.suffix == ".md" and \
                link.split("#", 1)[1] not in anchors(target):
            missing.append(link)
    assert not missing, (f"{page.relative_to(ROOT)} links to files or headings that do not "
                         f"exist: {missing}")


def test_every_docs_page_is_linked_from_the_readme_or_the_docs_index():
    linked = {_target(page, link) for page in (ROOT / "README.md", ROOT / "docs" / "README.md")
              for link in _links(page)}
    pages = [page for page in PAGES if page.parent != ROOT]
    assert (ROOT / "docs" / "README.md") in pages, "docs/README.md, the index, is missing"
    orphans = [str(page.relative_to(ROOT)) for page in pages
               if page.resolve() not in linked and page.name != "README.md"]
    assert not orphans, f"docs pages no reader can reach from the README or docs/README.md: " \
                        f"{orphans}"
    assert (ROOT / "docs" / "README.md").resolve() in linked  # the README links the index


def test_link_checks_find_dead_links_and_orphans(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("[a](other.md#x) [b](https://example.org) [c](#here) [d](gone.md)\n")
    (tmp_path / "other.md").write_text("x\n")
    assert _links(page) == ["other.md#x", "gone.md"]
    assert [_target(page, link).exists() for link in _links(page)] == [True, False]
    (tmp_path / "h.md").write_text("# The `cpu` backend\n\n## Can't be trusted, measured\n")
    assert anchors(tmp_path / "h.md") == {"the-cpu-backend", "cant-be-trusted-measured"}


def test_old_harness_paths_are_gone_from_the_documentation():
    # issue 14 split harness/ by concern; the old module names must not send readers astray
    old = re.compile(r"harness/(calibration|results|sweep)\.py|harness\.(calibration|sweep)\b"
                     r"(?!\.)")
    for page in PAGES:
        found = old.findall(page.read_text(encoding="utf-8"))
        assert not found, f"{page.relative_to(ROOT)} names old harness modules: {found}"


# -- python ------------------------------------------------------------------------------

def _is_test_file(block: Block) -> bool:
    return re.search(r"^def test_\w+\(", block.text, re.MULTILINE) is not None


def _python_pages() -> list[Path]:
    return [page for page in PAGES if any(b.label == PYTHON and not _is_test_file(b)
                                          for b in blocks(page))]


@pytest.mark.parametrize("page", _python_pages(), ids=lambda p: str(p.relative_to(ROOT)))
def test_python_blocks_run_in_order_in_one_namespace(page, tmp_path, monkeypatch):
    from hwbench.errors import BackendUnavailableError

    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "__readme__"}
    for block in blocks(page):
        if block.label != PYTHON or _is_test_file(block):
            continue
        code = compile(block.text, block.where, "exec")
        try:
            exec(code, namespace)
        except BackendUnavailableError as exc:
            pytest.skip(f"{block.where} needs a backend this machine lacks: {exc}")


def undefined_names(source: str, filename: str = "<block>") -> set[str]:
    """Names a block reads but neither binds nor imports, and that are not builtins."""
    import builtins
    import symtable

    module = symtable.symtable(source, filename, "exec")
    bound = {s.get_name() for s in module.get_symbols()
             if s.is_assigned() or s.is_imported() or s.is_namespace()}
    read: set[str] = set()
    tables = [module]
    while tables:
        table = tables.pop()
        tables.extend(table.get_children())
        for symbol in table.get_symbols():
            if symbol.is_referenced() and (table is module or symbol.is_global()):
                read.add(symbol.get_name())
    return {name for name in read - bound if not hasattr(builtins, name)}


def _starts_with_import(block: Block) -> bool:
    import ast

    body = ast.parse(block.text).body
    return bool(body) and isinstance(body[0], ast.Import | ast.ImportFrom)


STANDALONE = [b for b in _of(PYTHON) if _starts_with_import(b)]


@pytest.mark.parametrize("block", STANDALONE, ids=_ids(STANDALONE))
def test_python_blocks_that_start_with_imports_stand_alone(block):
    # a block that opens with its imports looks complete: a reader copies it alone, so it
    # must define everything it uses (the run above shares one namespace per page)
    missing = undefined_names(block.text, block.where)
    assert not missing, f"{block.where} uses names it never defines or imports: {missing}"


def test_undefined_names_finds_missing_imports_and_variables():
    source = ("import hwbench\nx = np.zeros(3)\nq = hwbench.quantize(m, calibration=samples)\n"
              "def f():\n    return y + len(x)\nfor i in range(2):\n    print(i)\n")
    assert undefined_names(source) == {"np", "m", "samples", "y"}


TEST_FILES = [b for b in _of(PYTHON) if _is_test_file(b)]


@pytest.mark.parametrize("block", TEST_FILES, ids=_ids(TEST_FILES))
def test_python_test_files_pass_under_pytest(block, tmp_path):
    # in a subprocess: pyopencl aborts an interpreter that imports it twice
    (tmp_path / "test_from_readme.py").write_text(block.text, encoding="utf-8")
    plugin = [] if _plugin_installed() else ["-p", "hwbench.pytest_plugin"]
    benchmark = []
    if re.search(r"\bbenchmark\b", block.text):  # the example times with pytest-benchmark
        pytest.importorskip("pytest_benchmark", reason="pytest-benchmark is not installed "
                            "(pip install '.[test]')")
        benchmark = ["--benchmark-disable"]  # each benchmark runs once: checked, not timed
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", *plugin,
         *benchmark, "test_from_readme.py"],
        cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{block.where}:\n{done.stdout}\n{done.stderr}"
    assert re.search(r"\d+ passed", done.stdout), done.stdout


def _plugin_installed() -> bool:
    from importlib.metadata import distributions

    return any(ep.group == "pytest11" and ep.value == "hwbench.pytest_plugin"
               for dist in distributions() for ep in dist.entry_points)


def _env() -> dict[str, str]:
    """This checkout's hwbench first, as in the tests that run it."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(
        os.pathsep)
    return env


# -- shell and console -------------------------------------------------------------------

@dataclass(frozen=True)
class Command:
    block: Block
    argv: tuple[str, ...]

    @property
    def text(self) -> str:
        return " ".join(self.argv)


def _command_lines(block: Block) -> list[str]:
    """The command lines of a shell block (continuations joined) or of a console block
    (its ``$ `` lines)."""
    text = block.text.replace("\\\n", " ")
    lines = text.splitlines()
    if block.label == CONSOLE:
        lines = [line[2:] for line in lines if line.startswith("$ ")]
    return [line for line in lines if line.strip() and not line.lstrip().startswith("#")]


def commands(block: Block) -> list[Command]:
    """Every simple command of a block: lines split at ``&&``, ``||``, ``;`` and ``|``,
    comments dropped, ``$NAME`` replaced by what an earlier ``NAME=value`` set."""
    found, variables = [], {}
    for line in _command_lines(block):
        for name, value in variables.items():
            line = line.replace(f"${{{name}}}", value).replace(f"${name}", value)
        lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|<>")
        lexer.whitespace_split = True
        lexer.commenters = "#"
        argv: list[str] = []
        for token in [*lexer, ";"]:
            if token in (";", "&&", "||", "|"):
                if argv:
                    assignment = re.fullmatch(r"([A-Za-z_]\w*)=(.*)", argv[0])
                    if assignment and len(argv) == 1:
                        variables[assignment.group(1)] = assignment.group(2)
                    else:
                        found.append(Command(block, tuple(argv)))
                argv = []
            else:
                argv.append(token)
    return found


SHELL_COMMANDS = [c for b in _of(*SHELL, CONSOLE) for c in commands(b)]


def _hwbench_argv(argv: tuple[str, ...]) -> list[str] | None:
    """The arguments after ``hwbench`` / ``python -m hwbench.cli``, else None."""
    if argv[0] == "hwbench":
        return list(argv[1:])
    if argv[0].startswith("python") and argv[1:3] == ("-m", "hwbench.cli"):
        return list(argv[3:])
    return None


def _pip(argv: tuple[str, ...]) -> list[str] | None:
    if argv[0] in ("pip", "pip3"):
        return list(argv[1:])
    if argv[0].startswith("python") and argv[1:3] == ("-m", "pip"):
        return list(argv[3:])
    return None


def _not_run(argv: tuple[str, ...]) -> str | None:
    """Why a setup command is shown and not run, or None."""
    pip = _pip(argv)
    if pip and pip[0] == "download":
        return NOT_RUN["pip download"]
    if argv[0].startswith("python") and argv[1:3] == ("-m", "venv"):
        return NOT_RUN["venv"]
    if argv[0] in (".", "source") and argv[1:] and argv[1].endswith("activate"):
        return NOT_RUN["activate"]
    return NOT_RUN.get(argv[0]) if argv[0] in ("echo", "ray") else None


def classify(command: Command) -> str:
    """"run", "parse", "pip", "pytest" or "not run: why"; ValueError when unknown."""
    argv = command.argv
    hw = _hwbench_argv(argv)
    if hw is not None:
        return "run" if hw and hw[0] in CHEAP_SUBCOMMANDS and "$(" not in command.text \
            else "parse"
    pip = _pip(argv)
    if pip and pip[0] == "install":
        return "pip"
    if argv[0].startswith("python") and argv[1:3] == ("-m", "pytest"):
        return "pytest"
    why = _not_run(argv)
    if why:
        return f"not run: {why}"
    raise ValueError(f"{command.block.where}: command {command.text!r} is not one this test "
                     "can run or check: add it to the test, or show it as `text`")


@pytest.mark.parametrize("command", SHELL_COMMANDS,
                         ids=[f"{c.block.where}:{'-'.join(c.argv[:2])}" for c in SHELL_COMMANDS])
def test_shell_command(command, tmp_path):
    kind = classify(command)
    if kind == "run":
        _run_hwbench(command, tmp_path)
    elif kind == "parse":
        _check_hwbench_line(command)
    elif kind == "pip":
        _check_pip_install(command)
    elif kind == "pytest":
        _check_pytest_line(command)
    else:
        assert kind.startswith("not run: ")


def _run_hwbench(command: Command, tmp_path: Path) -> None:
    argv = [str(ROOT / arg) if _in_repository(arg) else arg
            for arg in _hwbench_argv(command.argv)]
    done = subprocess.run([sys.executable, "-m", "hwbench.cli", *argv], cwd=tmp_path,
                          env=_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{command.block.where}: {command.text}\n{done.stdout}\n" \
                                 f"{done.stderr}"


def _check_hwbench_line(command: Command) -> None:
    """Parse with the real CLI parser, then check what the values name."""
    from hwbench.cli import build_parser

    argv = [arg for arg in _hwbench_argv(command.argv) if "$(" not in arg]
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:
        pytest.fail(f"{command.block.where}: `{command.text}` does not parse (exit {exc.code})")
    _check_named_values(args, command)


def _check_named_values(args: argparse.Namespace, command: Command) -> None:
    """What a line names must exist: backends, models, peers, precisions, ops, files."""
    from hwbench.backends import expand_backends
    from hwbench.harness.suites import model_suite
    from hwbench.harness.suites.kernel_suite import OPS
    from hwbench.harness.suites.peers import MODEL_PEERS, PEERS

    where = f"{command.block.where}: `{command.text}`"
    if getattr(args, "backend", None) and args.command != "train":
        expand_backends(args.backend)
    if args.command == "run":
        model_suite.expand_models(args.model)
        assert set(args.precision) <= set(model_suite.PRECISIONS), where
        assert {p.partition(":")[0] for p in args.peers} <= set(MODEL_PEERS), where
    if args.command == "kernels":
        assert set(args.op) <= set(OPS), where
        assert {p.partition(":")[0] for p in args.peers} <= set(PEERS), where
    for name in ("spec", "results", "old", "new"):
        value = getattr(args, name, None)
        for path in value if isinstance(value, list) else [value] if value else []:
            if _in_repository(path):
                assert (ROOT / path).exists(), f"{where}: {path} does not exist"
    if args.command == "sweep" and (args.spec or args.overrides):
        from hwbench.harness.sweep.spec import load_spec

        assert load_spec(ROOT / args.spec if args.spec else None, args.overrides).points


def _in_repository(path: str) -> bool:
    """A path into this repository (examples/..., results/...), not one the reader names
    (SPEC.toml, new.json): those are placeholders."""
    return "/" in path and (ROOT / path.split("/")[0]).is_dir()


def _extras() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return set(project["project"]["optional-dependencies"])


def _check_pip_install(command: Command) -> None:
    named = [m.group(1) for arg in _pip(command.argv)
             for m in [re.fullmatch(r"(?:\.|hwbench)\[([^\]]*)\]", arg)] if m]
    assert named, f"{command.block.where}: `{command.text}` installs no hwbench extra"
    declared = _extras()
    for group in named:
        for extra in filter(None, (e.strip() for e in group.split(","))):
            assert extra in declared, (f"{command.block.where}: extra {extra!r} is not in "
                                       f"pyproject.toml ({', '.join(sorted(declared))})")


_PYTEST_HELP: list[str] = []


def _check_pytest_line(command: Command) -> None:
    """Every option is one pytest (with hwbench's and pytest-benchmark's plugins) knows,
    every path exists; the command itself runs suites too long for this test."""
    if not _PYTEST_HELP:
        plugin = [] if _plugin_installed() else ["-p", "hwbench.pytest_plugin"]
        done = subprocess.run([sys.executable, "-m", "pytest", "--help", *plugin], cwd=ROOT,
                              env=_env(), capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr
        _PYTEST_HELP.append(done.stdout)
    known = set(re.findall(r"(--[\w-]+)", _PYTEST_HELP[0]))
    for arg in command.argv[3:]:
        option = arg.split("=")[0]
        if option.startswith("--"):
            if option.startswith("--benchmark"):
                pytest.importorskip("pytest_benchmark", reason="pytest-benchmark is not "
                                    "installed (pip install '.[test]')")
            assert option in known, f"{command.block.where}: pytest has no option {option}"
        elif not arg.startswith("-"):
            assert (ROOT / arg).exists(), f"{command.block.where}: {arg} does not exist"


def test_command_splitting_and_classification():
    block = Block(ROOT / "README.md", 1, "sh",
                  "S=out/x\npython3 -m venv .venv && . .venv/bin/activate && "
                  "pip install '.[cpu]'  # note\nhwbench compare $S new.json \\\n  --x\n"
                  "rm -rf /\n")
    found = commands(block)
    assert [c.argv for c in found] == [
        ("python3", "-m", "venv", ".venv"), (".", ".venv/bin/activate"),
        ("pip", "install", ".[cpu]"), ("hwbench", "compare", "out/x", "new.json", "--x"),
        ("rm", "-rf", "/")]
    assert [classify(c) for c in found[:4]] == [
        "not run: creates a virtual environment", "not run: activates a virtual environment",
        "pip", "parse"]
    with pytest.raises(ValueError, match="not one this test can run or check"):
        classify(found[4])
    console = Block(ROOT / "README.md", 1, CONSOLE, "$ hwbench list\nnumpy yes\n")
    assert [c.argv for c in commands(console)] == [("hwbench", "list")]


def test_every_shell_command_is_classified():
    for command in SHELL_COMMANDS:
        classify(command)  # raises for a command the test cannot check


# -- usage -------------------------------------------------------------------------------

def _subparsers() -> dict[str, argparse.ArgumentParser]:
    from hwbench.cli import build_parser

    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def synopses(block: Block) -> list[tuple[str, str]]:
    """``(subcommand, its synopsis text)`` for each ``hwbench SUB ...`` of a usage block;
    indented lines continue the one before."""
    found: list[list[str]] = []
    for line in block.text.splitlines():
        line = line.split("  #")[0]
        if line.startswith("hwbench "):
            found.append([line])
        elif line.strip():
            assert found and line.startswith(" "), f"{block.where}: stray line {line!r}"
            found[-1].append(line)
    return [(lines[0].split()[1], " ".join(lines)) for lines in found]


USAGE_BLOCKS = _of(USAGE)
# an option, and the alternatives a synopsis lists for its value: `--dataflow ws|os|is`
OPTION = re.compile(r"(?<![\w-])(--?[a-z][\w-]*)(?:[ =]([\w.:-]+(?:\|[\w.:-]+)+))?")


@pytest.mark.parametrize("block", USAGE_BLOCKS, ids=_ids(USAGE_BLOCKS))
def test_usage_names_real_subcommands_options_and_choices(block):
    parsers = _subparsers()
    assert synopses(block), f"{block.where}: no `hwbench SUBCOMMAND` line"
    for sub, text in synopses(block):
        assert sub in parsers, f"{block.where}: no subcommand {sub!r}"
        options = {o: a for a in parsers[sub]._actions for o in a.option_strings}
        for option, values in re.findall(OPTION, text):
            assert option in options, f"{block.where}: `hwbench {sub}` has no option {option}"
            choices = options[option].choices
            if values and choices:
                for value in values.split("|"):
                    assert value in choices, (f"{block.where}: `hwbench {sub} {option}` "
                                              f"does not accept {value!r} ({choices})")


# -- toml --------------------------------------------------------------------------------

TOML_BLOCKS = _of(TOML)


@pytest.mark.parametrize("block", TOML_BLOCKS, ids=_ids(TOML_BLOCKS))
def test_toml_blocks_load(block, tmp_path):
    table = tomllib.loads(block.text)
    if {"simulate", "run"} & set(table):  # a sweep spec: beside the example files it names
        from hwbench.harness.sweep.spec import load_spec

        shutil.copytree(ROOT / "examples" / "sweeps", tmp_path, dirs_exist_ok=True)
        spec = tmp_path / "from-readme.toml"
        spec.write_text(block.text, encoding="utf-8")
        assert load_spec(spec).points


# -- what the extras bring -----------------------------------------------------------------

LINUX_X86 = {"sys_platform": "linux", "platform_system": "Linux", "platform_machine": "x86_64"}


def _torch_requirements(extra: str, environment: dict[str, str]) -> list:
    from packaging.requirements import Requirement

    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    found = []
    for text in project["project"]["optional-dependencies"][extra]:
        requirement = Requirement(text)
        if requirement.name == "torch" and (
                requirement.marker is None
                or requirement.marker.evaluate({**environment, "extra": extra})):
            found.append(requirement)
    return found


def test_peers_extra_asks_for_pytorchs_cpu_build_on_linux_x86():
    # PyPI's Linux x86-64 torch is the CUDA build (~3 GB of NVIDIA libraries and Triton on
    # a machine without a GPU); the CPU build is the +cpu local version
    from packaging.version import Version

    torch = _torch_requirements("peers", LINUX_X86)
    assert len(torch) == 1
    assert Version("2.13.0+cpu") in torch[0].specifier
    for cuda_build in ("2.13.0", "2.14.1", "2.15.0"):
        assert Version(cuda_build) not in torch[0].specifier, torch[0]


def test_peers_extra_takes_pypis_torch_where_it_is_a_cpu_build():
    from packaging.version import Version

    mac = {"sys_platform": "darwin", "platform_system": "Darwin", "platform_machine": "arm64"}
    torch = _torch_requirements("peers", mac)
    assert len(torch) == 1 and Version("2.14.1") in torch[0].specifier
    assert _torch_requirements("peers-cuda", LINUX_X86)  # the CUDA build, when asked for


def test_torch_peer_reports_which_build_it_is(monkeypatch):
    import types

    from hwbench.harness.suites.peers import TorchPeer, torch_build

    def fake_torch(cuda, hip=None):
        return types.SimpleNamespace(
            __version__="2.13.0", version=types.SimpleNamespace(cuda=cuda, hip=hip),
            backends=types.SimpleNamespace(mkldnn=types.SimpleNamespace(is_available=bool)))

    assert torch_build(fake_torch(None)) == "CPU"
    assert torch_build(fake_torch("13.0")) == "CUDA 13.0"
    assert torch_build(fake_torch(None, "7.0")) == "ROCm 7.0"
    monkeypatch.setitem(sys.modules, "torch", fake_torch("13.0"))
    assert TorchPeer.versions()["torch_build"] == "CUDA 13.0"
