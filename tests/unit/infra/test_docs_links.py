"""The documentation's links and the code's citations of it lead somewhere: every relative link in the README,
docs/, bench/ and infra/ to a file that exists and, with an #anchor, to one of its headings (GitHub's anchors);
every `docs/<file>.md, "<Section>"` (or `#anchor`) in a comment or docstring to a section that exists."""

import ast
import io
import re
import tokenize
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
DOCUMENTS = sorted(
    [
        ROOT / "README.md",
        ROOT / "bench" / "README.md",
        *(ROOT / "docs").glob("*.md"),
        *(ROOT / "infra").rglob("README.md"),
    ]
)
CODE = sorted(
    path
    for folder in ("services", "infra", "bench", "tests")
    for path in (ROOT / folder).rglob("*.py")
    if "pb" not in path.relative_to(ROOT).parts[:3]
)

FENCE = re.compile(r"^\s*(```|~~~)")
HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
HTML_ANCHOR = re.compile(r"""<a\s+(?:name|id)=["']([^"']+)["']""")
# [text](target "title") and ![alt](target); then an optional citation of a section: [...](...), "Section"
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)(?:,\s*\"([^\"]+)\")?")
REFERENCE = re.compile(r"^\s{0,3}\[[^\]]+\]:\s+<?(\S+?)>?(?:\s+.*)?$", re.MULTILINE)
# docs/routing.md, "Live view" / docs/routing.md ("Live view") / docs/routing.md#live-view / infra/kafka/README.md
CITATION = re.compile(
    r"((?:docs|bench|infra(?:/[\w-]+)*)/[\w.-]+\.md|README\.md)(?:#([\w-]+))?(?:(?:,\s*|\s*\(\s*)\"([^\"]+)\")?"
)


def anchor(heading: str) -> str:
    """GitHub's anchor of a heading: links and emphasis to their text, lower case, punctuation dropped, each space
    a hyphen."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)
    text = re.sub(r"<[^>]+>", "", text).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """The anchors a Markdown file's headings (outside code blocks) and HTML anchors give, repeats numbered."""
    found: set[str] = set()
    seen: dict[str, int] = {}
    fenced = False
    for line in path.read_text(encoding="utf-8").splitlines():
        if FENCE.match(line):
            fenced = not fenced
            continue
        if fenced:
            continue
        found.update(HTML_ANCHOR.findall(line))
        if match := HEADING.match(line):
            base = anchor(match.group(2))
            n = seen.get(base, 0)
            seen[base] = n + 1
            found.add(base if n == 0 else f"{base}-{n}")
    return found


def prose(path: Path) -> str:
    """A Markdown file without its code blocks and inline code (links there are examples, not links)."""
    kept, fenced = [], False
    for line in path.read_text(encoding="utf-8").splitlines():
        if FENCE.match(line):
            fenced = not fenced
        elif not fenced:
            kept.append(re.sub(r"`[^`]*`", "", line))
    return "\n".join(kept)


def broken(source: Path, target: str, section: str | None, base: Path) -> str | None:
    """What is wrong with a link or citation from `source` (None when it leads somewhere)."""
    if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE):  # http:, https:, mailto:
        return None
    path_part, _, fragment = target.partition("#")
    path = (base / path_part).resolve() if path_part else source
    if not path.exists():
        return f"{target}: no such file"
    wanted = [a for a in (fragment, anchor(section) if section else "") if a]
    if wanted and path.suffix != ".md":
        return f"{target}: an anchor into a file that has no headings"
    missing = [a for a in wanted if a not in anchors(path)]
    if missing:
        shown = f'"{section}"' if section and anchor(section) in missing else f"#{missing[0]}"
        return f"{target}: no section {shown} in {path.name}"
    return None


def comments_and_docstrings(path: Path) -> list[tuple[int, str]]:
    source = path.read_text(encoding="utf-8")
    texts = [
        (t.start[0], t.string)
        for t in tokenize.generate_tokens(io.StringIO(source).readline)
        if t.type == tokenize.COMMENT
    ]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                if isinstance(body[0].value.value, str):
                    texts.append((body[0].lineno, body[0].value.value))
    return texts


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_of_the_documentation_leads_to_a_file_and_a_heading(document):
    text = prose(document)
    links = [(m.group(1), m.group(2)) for m in LINK.finditer(text)] + [(t, None) for t in REFERENCE.findall(text)]
    problems = [p for target, section in links if (p := broken(document, target, section, document.parent))]
    assert problems == [], f"{document.relative_to(ROOT)}: {problems}"


def test_every_citation_of_the_documentation_in_the_code_leads_to_a_section():
    problems = []
    for path in CODE:
        for line, text in comments_and_docstrings(path):
            for match in CITATION.finditer(text):
                target = match.group(1) + (f"#{match.group(2)}" if match.group(2) else "")
                if problem := broken(path, target, match.group(3), ROOT):
                    problems.append(f"{path.relative_to(ROOT)}:{line}: {problem}")
    assert problems == []


def test_the_readme_is_a_front_door_and_the_docs_carry_no_history():
    assert len((ROOT / "README.md").read_text(encoding="utf-8").splitlines()) <= 200
    history = re.compile(r"\b(?:sessions?|issues?)\s+#?\d+", re.IGNORECASE)
    found = [
        f"{path.relative_to(ROOT)}: {match.group()}"
        for path in [ROOT / "README.md", *(ROOT / "docs").glob("*.md")]
        for match in history.finditer(path.read_text(encoding="utf-8"))
    ]
    assert found == []


def test_anchors_are_githubs():
    assert anchor("Routing: active and standby") == "routing-active-and-standby"
    assert anchor("The `relais` command, step by step") == "the-relais-command-step-by-step"
    assert anchor("Try it as an [agent](docs/routing.md)") == "try-it-as-an-agent"
    assert anchor("Sécurité & données") == "sécurité--données"


def test_a_missing_section_or_file_is_found(tmp_path):
    (tmp_path / "a.md").write_text("# Title\n\n## Live view\n\n```\n## Not a heading\n```\n## Live view\n")
    source = tmp_path / "b.md"
    assert anchors(tmp_path / "a.md") == {"title", "live-view", "live-view-1"}
    assert broken(source, "a.md#live-view-1", None, tmp_path) is None
    assert broken(source, "a.md", "Live view", tmp_path) is None
    assert "no section" in (broken(source, "a.md", "Not a heading", tmp_path) or "")
    assert "no such file" in (broken(source, "c.md#title", None, tmp_path) or "")
