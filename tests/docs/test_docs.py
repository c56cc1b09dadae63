"""The README and the documentation site: their code runs, their promises hold, the site builds.

- Every ```` ```python ```` block of ``README.md`` and of the pages under ``docs/`` runs as a
  script of its own (``sys.executable block.py`` in a fresh folder), as a reader would save
  and run it, and must exit 0 (issue 31: the README's example crashed when saved as a file).
  A block that cannot run here (a remote archive, SLURM, a real S3 bucket, files the reader
  brings) has ``<!-- not run: why -->`` on the line right above its fence; those are counted,
  and the test fails if fewer than :data:`MIN_BLOCKS_RUN` blocks ran, so that it cannot pass
  by running none.
- The README fits on a screen or five (at most 250 lines), every name of
  ``auroradask.__all__`` has an entry in the API reference, every figure of
  ``docs/_static/gallery/`` is in the gallery, and every relative link of the pages leads to a
  file.
- ``sphinx-build -W`` builds the site (marker ``docs``): skipped where Sphinx is missing,
  unless ``AURORADASK_REQUIRE_DOCS=1``, as ``.ci/run`` sets it.
"""

from __future__ import annotations

import importlib.util
import os
import re
import signal
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

import auroradask

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
README = ROOT / "README.md"
API_PAGE = DOCS / "reference" / "api.md"
GALLERY = DOCS / "gallery.md"
GALLERY_FIGURES = DOCS / "_static" / "gallery"
SCREENSHOTS = {"label-page.png", "dashboard.png"}  # pages in Chromium, not matplotlib figures

# the blocks that run today; raise it when a page gains one, never lower it to make a test pass
MIN_BLOCKS_RUN = 8
README_MAX_LINES = 250
BLOCK_TIMEOUT_S = 240  # a block takes under a minute on 2 loaded cores

PYTHON_INFO = re.compile(
    r"^(?:python3?|py)$|^\{(?:code-block|code|sourcecode)\}\s+(?:python3?|py)$"
)
NOT_RUN = re.compile(r"^\s*<!--\s*not run:\s*(?P<reason>\S.*?)\s*-->\s*$")
FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>`{3,}|~{3,})(?P<info>.*)$")


@dataclass
class Block:
    path: Path
    line: int  # of the opening fence, 1-based
    code: str
    not_run: str | None  # the reason, where the block is marked not to run

    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def pages() -> list[Path]:
    """README.md and every markdown page of the docs (not the build output)."""
    found = [README]
    for path in sorted(DOCS.rglob("*.md")):
        if not {"_build", "generated"} & set(path.relative_to(DOCS).parts):
            found.append(path)
    return found


def python_blocks(path: Path, text: str | None = None) -> list[Block]:
    """The Python code blocks of a markdown page, with the not-run mark above each, if any.

    Fences are ```` ``` ```` or ``~~~``, three or more, closed by the same character at least
    as long; a fence indented in a list item has its indent taken off its code. MyST options
    (``:class: ...`` lines) at the top of a ``{code-block}`` are not code.
    """
    lines = (path.read_text(encoding="utf-8") if text is None else text).splitlines()
    blocks = []
    i = 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if not opening:
            i += 1
            continue
        indent, fence = len(opening["indent"]), opening["fence"]
        end = i + 1
        while end < len(lines):
            closing = FENCE.match(lines[end])
            if (
                closing
                and closing["fence"][0] == fence[0]
                and len(closing["fence"]) >= len(fence)
                and not closing["info"].strip()
            ):
                break
            end += 1
        info = opening["info"].strip()
        if PYTHON_INFO.match(info):
            body = [
                line[indent:] if line[:indent].isspace() else line for line in lines[i + 1 : end]
            ]
            while body and info.startswith("{") and re.match(r"^:\w[\w-]*:", body[0]):
                body.pop(0)
            mark = NOT_RUN.match(lines[i - 1]) if i > 0 else None
            blocks.append(
                Block(path, i + 1, textwrap.dedent("\n".join(body)) + "\n", mark and mark["reason"])
            )
        i = end + 1
    return blocks


def all_blocks() -> list[Block]:
    return [block for path in pages() for block in python_blocks(path)]


def test_the_extractor_finds_blocks_and_honours_marks():
    """A page with each kind of fence: the Python ones are found, the marked one is not run."""
    page = textwrap.dedent(
        """\
        # A page

        ```python
        print("one")
        ```

        <!-- not run: needs an S3 bucket -->
        ```python
        raise SystemExit(1)
        ```

        ```bash
        rm -rf /
        ```

        - in a list:

          ````{code-block} python
          :caption: two

          print("two")
          ````

        ```text
        ```python
        ```

        <!-- not run: a mark with a blank line after it does not count -->

        ```py
        print("three")
        ```
        """
    )
    blocks = python_blocks(README, page)
    assert [b.line for b in blocks] == [3, 8, 18, 30]
    assert [b.not_run for b in blocks] == [None, "needs an S3 bucket", None, None]
    assert blocks[0].code == 'print("one")\n'
    assert blocks[2].code.strip() == 'print("two")'
    assert blocks[3].code == 'print("three")\n'


def test_every_page_block_is_run_or_says_why_not():
    blocks = all_blocks()
    marked = [b for b in blocks if b.not_run]
    for block in marked:
        assert len(block.not_run.split()) >= 2, f"{block.where()}: say why it is not run"
    assert len(blocks) - len(marked) >= MIN_BLOCKS_RUN, (
        f"only {len(blocks) - len(marked)} Python blocks would run (of {len(blocks)}; "
        f"{len(marked)} marked not run): at least {MIN_BLOCKS_RUN} should"
    )
    readme = [b for b in blocks if b.path == README and not b.not_run]
    assert readme, "the README's 30-second example is not run"


def _run_script(folder: Path, env: dict[str, str]) -> tuple[int | None, str]:
    """Run ``folder/block.py``; (exit code or None on a timeout, stderr). The script runs in a
    process group of its own, killed whole afterwards, so that the worker processes of a
    cluster it started (and of a script that hangs, such as one without its ``__main__``
    guard) never outlive it."""
    process = subprocess.Popen(
        [sys.executable, "block.py"],
        cwd=folder,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        _, stderr = process.communicate(timeout=BLOCK_TIMEOUT_S)
        code = process.returncode
    except subprocess.TimeoutExpired:
        code, stderr = None, ""
    finally:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.communicate()
    return code, stderr


@pytest.mark.slow  # every block is a fresh Python process, most start dask: minutes on 2 cores
def test_every_python_block_runs_as_a_script(tmp_path):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.setdefault("MPLBACKEND", "Agg")
    env["TQDM_DISABLE"] = "1"
    ran, failures = 0, []
    blocks = all_blocks()
    for n, block in enumerate(blocks):
        if block.not_run:
            continue
        folder = tmp_path / f"block{n}"
        folder.mkdir()
        (folder / "block.py").write_text(block.code, encoding="utf-8")
        code, stderr = _run_script(folder, env)
        if code is None:
            failures.append(f"{block.where()}: still running after {BLOCK_TIMEOUT_S} s")
            continue
        ran += 1
        if code != 0:
            failures.append(f"{block.where()}: exit {code}\n{stderr[-3000:]}")
    marked = sum(1 for b in blocks if b.not_run)
    print(f"{ran} blocks run, {marked} marked not run, of {len(blocks)}")
    assert not failures, "\n\n".join(failures)
    assert ran >= MIN_BLOCKS_RUN, f"{ran} blocks ran, fewer than {MIN_BLOCKS_RUN}"


def test_readme_fits_in_250_lines():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines"


def test_readme_keeps_the_two_commands():
    text = README.read_text(encoding="utf-8")
    assert (
        "python3.11 -m venv .venv && .venv/bin/pip install . && .venv/bin/auroradask classify"
        in text
    )
    assert 'python3.11 -m venv .venv && .venv/bin/pip install ".[test]" && .venv/bin/pytest' in text


def api_entries() -> list[str]:
    """The names listed in the autosummary directives of the API reference."""
    entries, inside = [], False
    for line in API_PAGE.read_text(encoding="utf-8").splitlines():
        if line.startswith(".. autosummary::"):
            inside = True
        elif line.startswith("```"):
            inside = False
        elif inside and re.match(r"^ {3}\w+$", line):
            entries.append(line.strip())
    return entries


def test_api_reference_lists_every_public_name():
    entries = api_entries()
    missing = sorted(set(auroradask.__all__) - set(entries))
    assert not missing, f"not in {API_PAGE.relative_to(ROOT)}: {missing}"
    unknown = sorted(set(entries) - set(auroradask.__all__))
    assert not unknown, f"in the API reference but not in auroradask.__all__: {unknown}"
    assert len(entries) == len(set(entries)), "a name is listed twice"


def test_gallery_shows_every_figure():
    text = GALLERY.read_text(encoding="utf-8")
    figures = sorted(GALLERY_FIGURES.glob("*.png"))
    assert figures
    missing = [f.name for f in figures if f"](_static/gallery/{f.name})" not in text]
    assert not missing, f"figures not in docs/gallery.md: {missing}"
    # small enough for a page that shows them all (the browser's screenshots are bigger)
    big = [
        f"{f.name}: {f.stat().st_size:,} B"
        for f in figures
        if f.stat().st_size > (250_000 if f.name in SCREENSHOTS else 150_000)
    ]
    assert not big, f"gallery figures too big for the web: {big}"


LINK = re.compile(r"(?<!!)\[[^\]]*\]\((?P<target>[^)\s]+)\)|!\[[^\]]*\]\((?P<image>[^)\s]+)\)")


def test_relative_links_of_the_pages_lead_to_files():
    """Links as GitHub follows them: relative to the page, to a file that exists."""
    broken = []
    for path in pages():
        text = path.read_text(encoding="utf-8")
        text = re.sub(r"```.*?```", "", text, flags=re.S)  # not inside code blocks
        for match in LINK.finditer(text):
            target = (match["target"] or match["image"]).split("#")[0]
            if (
                not target
                or re.match(r"^[a-z]+:", target)
                or "/" not in target
                and "." not in target
            ):
                continue  # a URL, an anchor on the page, or a Sphinx label such as cli-auroradask
            if not (path.parent / target).exists():
                broken.append(f"{path.relative_to(ROOT)}: {target}")
    assert not broken, "links to nothing:\n" + "\n".join(broken)


@pytest.mark.docs
def test_the_site_builds_with_warnings_as_errors(tmp_path):
    if importlib.util.find_spec("sphinx") is None:
        if os.environ.get("AURORADASK_REQUIRE_DOCS"):
            pytest.fail(
                "AURORADASK_REQUIRE_DOCS is set but Sphinx is missing: pip install '.[docs]'"
            )
        pytest.skip("Sphinx is not installed (pip install '.[docs]')")
    html = tmp_path / "html"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "sphinx",
            "-W",
            "-q",
            "-b",
            "html",
            "-d",
            str(tmp_path / "doctrees"),
            str(DOCS),
            str(html),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-5000:]
    assert (html / "index.html").is_file()
    # the CLI reference walked every command, the sub-commands of "model" included
    cli = (html / "reference" / "cli.html").read_text(encoding="utf-8")
    for command in (
        "classify",
        "info",
        "evaluate",
        "model convert",
        "model check",
        "model quantize",
        "montage",
    ):
        assert re.search(rf"<h\d>auroradask {command}<", cli), command
    assert "--keep-dashboard" in cli
    # every public name has its page
    generated = html / "reference" / "generated"
    missing = [n for n in auroradask.__all__ if not (generated / f"auroradask.{n}.html").is_file()]
    assert not missing, f"no API page for {missing}"
