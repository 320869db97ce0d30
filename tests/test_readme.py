"""The README stays short and true: its size, its links, and its results table as the code writes it."""
import re
import runpy

from conftest import REPO_ROOT

README = (REPO_ROOT / "README.md").read_text(encoding="utf-8")


def test_readme_is_at_most_10_kb():
    assert len(README.encode("utf-8")) <= 10 * 1024


def test_every_local_link_and_image_in_the_readme_exists():
    targets = re.findall(r"\]\(([^)#\s]+)\)", README)
    local = [t for t in targets if not t.startswith(("http://", "https://"))]
    assert local, "no local links found"
    missing = [t for t in local if not (REPO_ROOT / t).exists()]
    assert not missing, missing


def test_the_results_table_is_the_one_the_weight_folders_give():
    results = runpy.run_path(str(REPO_ROOT / "docs" / "results_table.py"))
    assert results["with_table"](README, results["table"]()) == README, "run: python docs/results_table.py --write"


def test_every_command_in_the_readme_names_a_script_that_exists():
    scripts = set(re.findall(r"python (?:-m )?((?:train|docs|benchmarks)[/.][\w/.]+)", README))
    assert scripts
    for script in scripts:
        path = REPO_ROOT / (script if script.endswith(".py") else script.replace(".", "/") + ".py")
        assert path.exists(), script
