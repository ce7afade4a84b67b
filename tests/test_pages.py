"""Findings pages from findings.txt, and the docs' links and code references (all inside the repository)."""
import calendar
import glob
import os
import re
import subprocess
import sys

import pytest

from experiments.claims import pages

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MARKDOWN = [os.path.join(ROOT, "README.md"), *sorted(glob.glob(os.path.join(ROOT, "docs", "**", "*.md"), recursive=True))]
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)[^)]*\)")                 # [text](target) and ![alt](target)
REFERENCE = re.compile(r"`((?:manual|torch_ref|experiments|tests|benchmarks)/[\w/]+\.py)(?:::?([\w.]+))?`")
FINDINGS = ["closed form vs torch autograd (float64), max relative difference: 3.57e-16",
            "  steps to target (median, reached/seeds) by depth: 2:36(2/2) 3:-(0/2)"]


def prose(path):
    """The Markdown file's text without fenced code blocks and inline code spans (links there are not links)."""
    with open(path, encoding="utf-8") as f:
        text = re.sub(r"```.*?```", "", f.read(), flags=re.S)
    return re.sub(r"`[^`\n]*`", "", text)


def fake_claim(root, name="demo", took="took 12.5 s", when=(2026, 11, 28, 12, 0, 0)):
    """An intro, a findings.txt (PNG listed under another folder, as after --out) and its PNG under root."""
    out = os.path.join(root, "runs", "claims", name)
    os.makedirs(out)
    os.makedirs(os.path.join(root, "docs", "findings"))
    with open(os.path.join(root, "docs", "findings", f"{name}.intro.md"), "w") as f:
        f.write("# Demo claim\n\nThe method, in words.\n")
    with open(os.path.join(out, "demo_plot.png"), "wb") as f:
        f.write(b"\x89PNG fake")
    findings = os.path.join(out, "findings.txt")
    with open(findings, "w") as f:
        f.write("\n".join(FINDINGS + ["PNG: /elsewhere/demo_plot.png", took]) + "\n")
    stamp = calendar.timegm(when)
    os.utime(findings, (stamp, stamp))
    return findings


def test_page_holds_the_intro_the_numbers_the_command_the_date_and_the_images(tmp_path):
    fake_claim(str(tmp_path))
    path = pages.render("demo", str(tmp_path))
    assert path == os.path.join(str(tmp_path), "docs", "findings", "demo.md")
    text = open(path, encoding="utf-8").read()
    assert text.startswith("# Demo claim\n\nThe method, in words.\n")
    for line in FINDINGS:
        assert line in text.splitlines()
    assert "`python -m experiments.claims.demo`" in text
    assert "written 2026-11-28" in text and "took 12.5 s" in text
    assert "![demo_plot](../img/demo_plot.png)" in text
    with open(tmp_path / "docs" / "img" / "demo_plot.png", "rb") as f:
        assert f.read() == b"\x89PNG fake"


def test_the_cli_defaults_to_every_claim_with_an_intro(tmp_path, capsys):
    fake_claim(str(tmp_path))
    assert pages.claims(str(tmp_path)) == ["demo"]
    assert pages.main(["--root", str(tmp_path)]) == 0
    assert capsys.readouterr().out.strip() == os.path.join(str(tmp_path), "docs", "findings", "demo.md")


def test_a_missing_findings_txt_is_one_error_line_naming_it(tmp_path, capsys):
    findings = fake_claim(str(tmp_path))
    os.remove(findings)
    assert pages.main(["--root", str(tmp_path), "demo"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and findings in err
    assert not os.path.exists(tmp_path / "docs" / "findings" / "demo.md")


def test_an_unfinished_run_or_a_missing_intro_is_refused(tmp_path):
    fake_claim(str(tmp_path), took="PNG: /elsewhere/demo_plot.png")
    with pytest.raises(pages.PageError, match="did not finish"):
        pages.render("demo", str(tmp_path))
    fake_claim(str(tmp_path / "other"), name="other")
    os.remove(tmp_path / "other" / "docs" / "findings" / "other.intro.md")
    with pytest.raises(pages.PageError, match=r"other\.intro\.md not found"):
        pages.render("other", str(tmp_path / "other"))


def test_every_claim_has_an_intro():
    modules = glob.glob(os.path.join(ROOT, "experiments", "claims", "*.py"))
    names = [m.group(1) for path in modules
             for m in [re.search(r'^NAME = "(\w+)"', open(path, encoding="utf-8").read(), re.M)] if m]
    assert names and sorted(names) == pages.claims(ROOT)


def test_readme_fits_in_10_kb():
    assert os.path.getsize(os.path.join(ROOT, "README.md")) <= 10240


@pytest.mark.parametrize("path", MARKDOWN, ids=lambda p: os.path.relpath(p, ROOT))
def test_every_link_resolves_to_a_file_inside_the_repository(path):
    for target in LINK.findall(prose(path)):
        assert not re.match(r"[a-z]+:", target), f"{target}: links stay inside the repository"
        if target.startswith("#"):
            continue
        resolved = os.path.normpath(os.path.join(os.path.dirname(path), target.split("#")[0]))
        assert resolved.startswith(ROOT + os.sep), f"{target} leaves the repository"
        assert os.path.exists(resolved), f"{target} does not exist"


@pytest.mark.parametrize("path", MARKDOWN, ids=lambda p: os.path.relpath(p, ROOT))
def test_every_code_and_test_reference_exists(path):
    with open(path, encoding="utf-8") as f:
        references = REFERENCE.findall(re.sub(r"```.*?```", "", f.read(), flags=re.S))
    for file, name in references:
        assert os.path.isfile(os.path.join(ROOT, file)), f"{file} does not exist"
        source = open(os.path.join(ROOT, file), encoding="utf-8").read()
        for part in filter(None, name.split(".")):
            assert re.search(rf"^\s*(?:def|class) {part}\b|^{part} = ", source, re.M), f"{file}: no {part}"


@pytest.mark.slow
@pytest.mark.parametrize("command, docs_pages", [("experiments.train", ["training.md"]),
                                             ("experiments.landscape", ["landscapes.md", "training.md"])])
def test_every_flag_of_a_command_is_documented(command, docs_pages):
    help_text = subprocess.run([sys.executable, "-m", command, "--help"], capture_output=True, text=True,
                               check=True, cwd=ROOT).stdout
    documented = "".join(open(os.path.join(ROOT, "docs", page), encoding="utf-8").read() for page in docs_pages)
    flags = set(re.findall(r"(?<![\w-])--[a-z][a-z-]*", help_text)) - {"--help"}
    missing = sorted(f for f in flags if f"`{f}" not in documented)
    assert flags and not missing, f"{command} flags not in docs/{docs_pages[0]}: {missing}"
