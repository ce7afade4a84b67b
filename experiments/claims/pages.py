"""Findings pages: docs/findings/<claim>.md from its hand-written intro and the numbers of its last run.

The intro (docs/findings/<claim>.intro.md) holds the method and the interpretation, no numbers. The numbers and
plots come from runs/claims/<claim>/findings.txt, as harness.finish writes it: lines of text, then one
"PNG: path" line per plot, then "took N s". The PNGs (found beside findings.txt) are copied into docs/img/, and
the page says the command that made the numbers and the day findings.txt was written.
"""
import argparse
import datetime
import os
import shutil
import sys

from experiments.io import write_atomic

FINDINGS = os.path.join("runs", "claims", "{name}", "findings.txt")
FOLDER = os.path.join("docs", "findings")
IMAGES = os.path.join("docs", "img")
INTRO = ".intro.md"


class PageError(ValueError):
    """A findings page cannot be made; the message is one line naming the file."""


def claims(root="."):
    """The claims that have an intro (docs/findings/<name>.intro.md), sorted."""
    folder = os.path.join(root, FOLDER)
    names = os.listdir(folder) if os.path.isdir(folder) else []
    return sorted(n[:-len(INTRO)] for n in names if n.endswith(INTRO))


def read_findings(path):
    """(text lines, PNG paths, seconds as written) of a findings.txt; PageError if missing or unfinished."""
    if not os.path.isfile(path):
        raise PageError(f"{path} not found: run the claim first (make findings)")
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    if not lines or not (lines[-1].startswith("took ") and lines[-1].endswith(" s")):
        raise PageError(f"{path}: the last line is not 'took N s', so the run did not finish")
    body, pngs = lines[:-1], []
    while body and body[-1].startswith("PNG: "):
        pngs.insert(0, body.pop()[len("PNG: "):])
    return body, pngs, lines[-1][len("took "):-len(" s")]


def page(name, intro, text, images, written, seconds):
    """The Markdown of one findings page: the intro, then the run's numbers and its plots."""
    parts = [intro.rstrip("\n"), "",
             "## Measured", "",
             f"Numbers from `python -m experiments.claims.{name}` (runs/claims/{name}/findings.txt, written "
             f"{written}; the run took {seconds} s). `make findings` writes this section again from a new run.", "",
             "```text", *text, "```", ""]
    for image in images:
        parts += [f"![{os.path.splitext(image)[0]}](../img/{image})", ""]
    return "\n".join(parts).rstrip("\n") + "\n"


def render(name, root="."):
    """Write root/docs/findings/<name>.md and copy its PNGs into root/docs/img; returns the page's path."""
    findings = os.path.join(root, FINDINGS.format(name=name))
    text, pngs, seconds = read_findings(findings)
    intro_path = os.path.join(root, FOLDER, name + INTRO)
    if not os.path.isfile(intro_path):
        raise PageError(f"{intro_path} not found: a findings page needs the claim's intro")
    with open(intro_path, encoding="utf-8") as f:
        intro = f.read()
    mtime = os.path.getmtime(findings)
    written = datetime.datetime.fromtimestamp(mtime, datetime.timezone.utc).date().isoformat()
    images = []
    for png in pngs:
        source = os.path.join(os.path.dirname(findings), os.path.basename(png))   # harness writes PNGs to OUT
        if not os.path.isfile(source):
            raise PageError(f"{source} not found (listed in {findings})")
        os.makedirs(os.path.join(root, IMAGES), exist_ok=True)
        shutil.copyfile(source, os.path.join(root, IMAGES, os.path.basename(png)))
        images.append(os.path.basename(png))
    path = os.path.join(root, FOLDER, name + ".md")
    write_atomic(path, page(name, intro, text, images, written, seconds).encode())
    return path


def parser():
    """The flags of `python -m experiments.claims.pages`."""
    p = argparse.ArgumentParser(
        prog="python -m experiments.claims.pages",
        description="Write docs/findings/<claim>.md for each claim from docs/findings/<claim>.intro.md and "
                    "runs/claims/<claim>/findings.txt, copying the run's PNGs into docs/img/ (make findings).")
    p.add_argument("names", nargs="*", metavar="CLAIM",
                   help="claims to write pages for (default: every claim with an intro in docs/findings/)")
    p.add_argument("--root", default=".", help="the repository root the paths are relative to (default: .)")
    return p


def main(argv=None):
    args = parser().parse_args(argv)
    try:
        names = args.names or claims(args.root)
        if not names:
            raise PageError(f"no {INTRO} files in {os.path.join(args.root, FOLDER)}")
        for name in names:
            print(render(name, args.root))
    except (PageError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
