"""Every reference can be followed inside the repository, and the README stays a short front page.

No source, config, test or page cites the private design brief the project started from (its facts
live in docs/paper.md, docs/protocol.md and docs/design_notes.md), every ``docs/*.md`` or
``configs/**.yaml`` path that code, configs, tests, the README and the docs name exists, every
relative Markdown link (with its ``#anchor``) in the README, the docs and the benchmark logs
resolves, and every repository path the README and the docs quote as code (``anonpriv/...``,
``tests/...``, ...) exists.
The README has at most ``README_MAX_LINES`` lines, links every page of ``docs/``, and its project
layout names only folders and files that exist.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SKIP_DIRS = {".venv", ".git", "runs", "results", "node_modules", "__pycache__", "build", "dist"}
# Spelled in two pieces so that this file does not match itself.
BRIEF = re.compile(r"\b" + "DES" + r"IGN\b|\.\./shared/")
PATH = re.compile(r"(?<![\w./-])((?:docs|configs)/[\w./-]*?\.(?:md|yaml))(?:#([\w-]+))?")
LINK = re.compile(r"\]\(([^)\s]+)\)")
CODE = re.compile(r"`([^`\s]+)`")
TOP_FOLDERS = ("anonpriv", "baselines", "benchmarks", "configs", "docs", "results", "tests")
PLACEHOLDER = re.compile(r"[*<>{}?$|]")
README_MAX_LINES = 220


def _files(*suffixes: str) -> list[Path]:
    """The repository's files with these suffixes, outside environments, run outputs and caches."""
    found = []
    for folder, dirs, names in os.walk(ROOT):
        dirs[:] = [d for d in dirs if d not in SKIP_DIRS and not d.endswith(".egg-info")]
        found += [Path(folder) / name for name in names if Path(name).suffix in suffixes]
    return sorted(found)


def _referring_files() -> list[Path]:
    """The code, configs, tests, README and docs pages whose references must resolve."""
    files = [ROOT / "README.md"]
    for folder, suffixes in (("anonpriv", (".py", ".yaml")), ("configs", (".yaml",)), ("tests", (".py",)),
                             ("docs", (".md",))):
        files += [p for p in _files(*suffixes) if p.relative_to(ROOT).parts[0] == folder]
    return files


def _pages() -> list[Path]:
    """The README and the docs pages."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def _quoted_repository_path(token: str) -> str | None:
    """``token`` (the text between backticks) when it names a file or folder of the repository:
    under a top-level folder, ending in a file suffix or ``/``, with no wildcard or placeholder."""
    token = token.rstrip(".,;:")
    if "/" not in token or token.split("/")[0] not in TOP_FOLDERS or PLACEHOLDER.search(token):
        return None
    return token if token.endswith("/") or re.search(r"\.\w+$", token) else None


def _anchors(page: Path) -> set[str]:
    """GitHub's heading anchors of a Markdown page (lower case, punctuation dropped, spaces to '-')."""
    anchors = set()
    in_code = False
    for line in page.read_text().splitlines():
        if line.startswith("```"):
            in_code = not in_code
        elif not in_code and line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            anchors.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return anchors


def test_nothing_cites_the_private_brief():
    hits = []
    for path in _files(".py", ".md", ".yaml", ".yml", ".toml", ".txt", ".cfg"):
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), start=1):
            if BRIEF.search(line):
                hits.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not hits, "references to the private brief (point them at docs/ instead):\n" + "\n".join(hits)


def test_named_docs_and_config_paths_exist():
    missing = []
    for path in _referring_files():
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            for target, anchor in PATH.findall(line):
                where = f"{path.relative_to(ROOT)}:{number}: {target}"
                if not (ROOT / target).is_file():
                    missing.append(where)
                elif anchor and target.endswith(".md") and anchor not in _anchors(ROOT / target):
                    missing.append(f"{where}#{anchor} (no such heading)")
    assert not missing, "paths named but not in the repository:\n" + "\n".join(missing)


def test_markdown_links_resolve():
    broken = []
    for page in _pages() + sorted((ROOT / "benchmarks").glob("*.md")):
        for number, line in enumerate(page.read_text().splitlines(), start=1):
            for link in LINK.findall(line):
                if re.match(r"[a-z]+:", link):  # http:, https:, mailto:
                    continue
                target, _, anchor = link.partition("#")
                file = (page.parent / target).resolve() if target else page
                if not file.exists():
                    broken.append(f"{page.relative_to(ROOT)}:{number}: {link}")
                elif anchor and file.suffix == ".md" and anchor not in _anchors(file):
                    broken.append(f"{page.relative_to(ROOT)}:{number}: {link} (no such heading)")
    assert not broken, "broken links:\n" + "\n".join(broken)


def test_the_docs_pages_exist_and_name_their_sources():
    paper = (ROOT / "docs" / "paper.md").read_text()
    assert "Aslam et al." in paper and "CVPR 2026" in paper and "authors' public code" in paper
    protocol = (ROOT / "docs" / "protocol.md").read_text()
    for source in ("Kumawat", "Nagahara", "Dave et al.", "Wu et al.", "PA-HMDB51"):
        assert source in protocol, source


def test_repository_paths_quoted_in_the_readme_and_docs_exist():
    missing = []
    for page in _pages():
        for number, line in enumerate(page.read_text().splitlines(), start=1):
            for token in CODE.findall(line):
                path = _quoted_repository_path(token)
                if path is not None and not (ROOT / path).exists():
                    missing.append(f"{page.relative_to(ROOT)}:{number}: {path}")
    assert not missing, "paths quoted but not in the repository:\n" + "\n".join(missing)


def test_the_readme_is_a_short_front_page():
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= README_MAX_LINES, (
        f"README.md has {len(lines)} lines, at most {README_MAX_LINES}: move the detail to a page of docs/ "
        "and link it")


def test_the_readme_links_every_docs_page():
    linked = {(ROOT / link.partition("#")[0]).resolve()
              for link in LINK.findall((ROOT / "README.md").read_text()) if not re.match(r"[a-z]+:", link)}
    unlinked = [page.name for page in sorted((ROOT / "docs").glob("*.md")) if page.resolve() not in linked]
    assert not unlinked, f"docs pages the README does not link: {unlinked}"


def test_the_readme_layout_names_what_exists():
    readme = (ROOT / "README.md").read_text()
    layout = re.search(r"^## Project layout\n.*?^```\n(.*?)^```", readme, re.MULTILINE | re.DOTALL)
    assert layout, "README.md has no '## Project layout' section with a code block"
    missing = []
    for line in layout.group(1).splitlines():
        name = line.split(" ", 1)[0]
        if "/" in name and not PLACEHOLDER.search(name) and not (ROOT / name).exists():
            missing.append(name)
    assert not missing, f"README's project layout names what is not in the repository: {missing}"
