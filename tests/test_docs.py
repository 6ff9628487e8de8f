"""The README and docs/ against the code: every link resolves, every `make` target, `python -m` module and
source path they name exists, the README stays a front door, and `make notebook` sets valid params."""

import importlib.util
import json
import re
import shutil
import subprocess

import pytest
import yaml
from markdown_it import MarkdownIt

from stages import params
from tests.conftest import REPO

PAGES = [REPO / "README.md", REPO / "ARCHITECTURE.md", *sorted((REPO / "docs").glob("*.md"))]
PARSER = MarkdownIt("commonmark").enable("table")


def tokens(page):
    """Every token of the page, inline ones included."""
    for token in PARSER.parse(page.read_text(encoding="utf-8")):
        yield token
        yield from token.children or ()


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")


def anchors(page) -> set[str]:
    found = list(tokens(page))
    return {slug(found[i + 1].content) for i, token in enumerate(found) if token.type == "heading_open"}


def code(page) -> str:
    """The page's command blocks and inline code, one per line."""
    return "\n".join(t.content for t in tokens(page) if t.type in ("fence", "code_block", "code_inline"))


# `make <target>` as a command: first on a line (a block's line or an inline span) or after && ; |
MAKE = re.compile(r"(?:^\s*|&&\s*|;\s*|\|\s*)make ([a-z][\w-]*)", re.MULTILINE)


def makefile_targets() -> set[str]:
    return set(re.findall(r"^([\w.-]+):", (REPO / "Makefile").read_text(), re.MULTILINE))


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(REPO).as_posix())
def test_every_relative_link_resolves_to_a_file_and_heading(page):
    for token in tokens(page):
        target = token.attrGet("href") if token.type == "link_open" else token.attrGet("src")
        if not target or re.match(r"[a-z]+:", target):  # none, or https: and mailto:
            continue
        path, _, anchor = target.partition("#")
        resolved = (page.parent / path).resolve() if path else page
        assert resolved.exists(), f"{page.name}: {target} does not exist"
        if anchor:
            assert anchor in anchors(resolved), f"{page.name}: {target}: no such heading in {resolved.name}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(REPO).as_posix())
def test_every_make_target_module_and_source_path_named_exists(page):
    text = code(page)
    for target in MAKE.findall(text):
        assert target in makefile_targets(), f"{page.name}: `make {target}` is no target of the Makefile"
    for module in re.findall(r"\bpython -m ([\w.]*\w)\b(?![.<])", text):
        assert importlib.util.find_spec(module) is not None, f"{page.name}: `python -m {module}`: no such module"
    for path in re.findall(r"(?<![\w/.])((?:stages|benchmarks|tests|docs|\.github)/[\w./-]*\w)", text):
        assert (REPO / path).exists() or "<" in path, f"{page.name}: {path} does not exist"


def test_the_readme_is_a_front_door_with_the_result_on_its_first_screen():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert len(readme.encode("utf-8")) <= 8 * 1024
    first_screen = readme.split("\n## Two commands")[0]
    assert re.search(r"!\[[^\]]+\]\(reports/figures/\w+\.png\)", first_screen)
    # every accuracy it quotes is one the generated report prints
    report = (REPO / "reports" / "report.md").read_text(encoding="utf-8")
    quoted = re.findall(r"\d+\.\d\d%", first_screen)
    assert quoted and all(number in report for number in quoted), [n for n in quoted if n not in report]
    assert "make repro" in readme and "make test" in readme


def test_the_devcontainer_installs_with_a_make_target():
    text = (REPO / ".devcontainer" / "devcontainer.json").read_text()
    container = json.loads(re.sub(r"^\s*//.*$", "", text, flags=re.MULTILINE))  # JSON with comments
    for target in MAKE.findall(container["postCreateCommand"]):
        assert target in makefile_targets()


def notebook_overrides() -> list[str]:
    """What `make notebook` passes to `dvc exp run`: its recipe's first half, run as make would."""
    recipe = subprocess.run(["make", "-n", "notebook"], cwd=REPO, capture_output=True, text=True, check=True).stdout
    command = recipe[recipe.index("python -c"):].split("| xargs")[0].replace("\\\n", " ")
    command = f"{REPO / '.venv' / 'bin' / 'python'} {command.removeprefix('python ')}"
    out = subprocess.run(command, shell=True, cwd=REPO, capture_output=True, text=True, check=True).stdout
    assert "dvc exp run -n notebook" in recipe
    return out.split()


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_notebook_sets_the_notebooks_settings_as_valid_params(tmp_path):
    from dvc.utils.hydra import apply_overrides  # what `dvc exp run -S` does to params.yaml

    args = notebook_overrides()
    assert args[::2] == ["-S"] * (len(args) // 2)
    shutil.copy(REPO / "params.yaml", tmp_path / "params.yaml")
    apply_overrides(tmp_path / "params.yaml", args[1::2])
    before, after = params.load(REPO / "params.yaml"), params.load(tmp_path / "params.yaml")
    notebook = yaml.safe_load((REPO / "notebook.yaml").read_text())["experiments"]
    for name, exp in after.experiments.items():
        expected = before.experiments[name].model_copy(update=notebook.get(name, {}))
        assert exp == expected, name
    cnn = after.experiment("cnn_translated")
    assert (cnn.placement, cnn.learning_rate, cnn.batch_size, cnn.max_steps) == ("fixed", 0.0001, 50, 5302)
