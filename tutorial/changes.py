"""What a chapter adds to the previous one: its new and changed parts, with the unchanged skeleton folded away.

A line diff of two chapters mixes the new idea with moved and reworded plumbing. Here each file is cut
into named parts instead: ``app.py`` into its top-level statements (the imports, each function with its
decorators and the comments above it, each constant, the ``__main__`` block), the page into its blocks
(each section, heading, form and list, and each statement of its script). A part is matched with the
previous chapter's part of the same name: new, changed (shown with its changed lines marked), unchanged
(the skeleton, folded), or gone.
"""
import ast
import difflib
import re
from dataclasses import dataclass, field

from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import DiffLexer

# Lines of a page that open a block of their own (closing tags and the elements inside a form do not).
PAGE_BLOCK = re.compile(r"<(head|header|section|form|ul|ol|dl|h[1-6]|p|div|table|script|nav|article|footer|main)\b"
                        r"|{%-? *(if|else|elif|endif|for|endfor|block|endblock)\b")


@dataclass
class Part:
    """One named piece of a file, and how it compares with the previous chapter's piece of that name."""

    name: str
    text: str
    state: str = "new"  # new, changed or same
    before: str = ""

    @property
    def html(self):
        """The part with its new lines marked (all of them when it is new), as highlighted, escaped HTML."""
        before = self.before.splitlines() if self.state == "changed" else []
        lines = list(difflib.unified_diff(before, self.text.splitlines(), lineterm="", n=10_000))[3:]
        return highlight("\n".join(lines) + "\n", DiffLexer(), HtmlFormatter())


@dataclass
class Changes:
    """A file's parts compared with the previous chapter's: what it adds, and the folded skeleton."""

    path: str
    parts: list = field(default_factory=list)
    gone: list = field(default_factory=list)

    @property
    def added(self):
        return [part for part in self.parts if part.state != "same"]

    @property
    def skeleton(self):
        return [part for part in self.parts if part.state == "same"]

    @property
    def skeleton_html(self):
        text = "\n\n".join(part.text for part in self.skeleton)
        return highlight(text + "\n", DiffLexer(), HtmlFormatter()) if text else ""

    def shown_lines(self):
        """How many lines the view shows unfolded, and how many the file has."""
        return sum(len(p.text.splitlines()) for p in self.added), sum(len(p.text.splitlines()) for p in self.parts)


def unique(parts):
    """Number repeated names ("if __name__", twice in a module) so each name means one part."""
    seen = {}
    for part in parts:
        seen[part.name] = seen.get(part.name, 0) + 1
        if seen[part.name] > 1:
            part.name = f"{part.name} ({seen[part.name]})"
    return parts


def python_name(node):
    """A part's name: ``def send_notification``, ``class Chat``, ``imports``, ``RETRY_DELAYS``, ``if __name__``."""
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        return f"def {node.name}"
    if isinstance(node, ast.ClassDef):
        return f"class {node.name}"
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        return "imports"
    if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
        return "docstring"
    if isinstance(node, (ast.Assign, ast.AnnAssign)):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        return ", ".join(ast.unparse(target) for target in targets)
    if isinstance(node, ast.If):
        return f"if {ast.unparse(node.test)}"
    return ast.unparse(node).splitlines()[0]


def python_parts(source):
    """``app.py`` cut into its top-level statements; consecutive imports are one part."""
    try:
        tree = ast.parse(source)
    except SyntaxError:  # a chapter being written: one part
        return [Part("app.py", source)]
    lines = source.splitlines()
    starts = []
    for node in tree.body:
        start = min([node.lineno] + [decorator.lineno for decorator in getattr(node, "decorator_list", [])]) - 1
        while start > 0 and lines[start - 1].lstrip().startswith("#"):  # the comment above belongs to it
            start -= 1
        starts.append((start, python_name(node)))
    parts = []
    for (start, name), (end, _) in zip(starts, starts[1:] + [(len(lines), None)], strict=True):
        text = "\n".join(lines[start:end]).strip("\n")
        imports = [part for part in parts if part.name == name == "imports"]
        if imports:  # one part, wherever they are (some must follow a monkey patch)
            imports[0].text += "\n" + text
        else:
            parts.append(Part(name, text))
    return unique(parts)


def block_name(line):
    """A page block's name: ``form#send``, ``section.demo``, ``h2 Rooms``, ``p``; or the template tag line."""
    tag = re.match(r"<(\w+)([^>]*)>", line)
    if tag is None:
        return line
    attributes = dict(re.findall(r'(\w+)="([^"]*)"', tag[2]))
    name = tag[1] + (f"#{attributes['id']}" if "id" in attributes else "")
    name += "".join(f".{c}" for c in attributes.get("class", "").split())
    if re.fullmatch(r"h[2-6]", tag[1]):  # a section's heading names it; h1 is the page's title
        name += " " + re.sub(r"<[^>]+>", "", line[tag.end():]).strip()
    return name


def script_statement_name(line):
    """A script statement's name: ``const socket``, ``socket.on("notification"``, ``$("send").onsubmit``."""
    line = re.sub(r";$", "", re.sub(r"\s*//.*$", "", line))
    name = re.split(r"\s=\s|=>|\{\s*$", line, maxsplit=1)[0].strip()
    if name.split(" ", 1)[0] in ("const", "let", "var"):
        return " ".join(name.split()[:2])
    return re.sub(r",?\s*(\([^()]*\))?\s*$", "", name) or line


def page_parts(source):
    """A page cut into its blocks, and its script into statements (a comment goes with the statement after it)."""
    parts = []
    in_script, script_indent, comment = False, None, None  # comment: a part holding only comments so far
    for line in source.splitlines():
        stripped = line.strip()
        indent = len(line) - len(line.lstrip())
        starts, name = False, stripped
        if in_script:
            if stripped.startswith("</script>"):
                in_script = False
            elif stripped and not stripped.startswith(("}", ")", "]", ".")) and indent <= (script_indent or indent):
                script_indent = indent
                if comment is not None and comment is parts[-1]:
                    if not stripped.startswith("//"):
                        comment.name, comment = script_statement_name(stripped), None
                elif stripped.startswith("//"):
                    starts, name = True, "// " + stripped[2:].strip()
                else:
                    starts, name = True, script_statement_name(stripped)
        elif PAGE_BLOCK.match(stripped):
            starts, name = True, block_name(stripped)
            if re.match(r"<script\b(?![^>]*\bsrc=)", stripped) and "</script>" not in stripped:
                in_script, script_indent = True, None
        if starts or not parts:
            parts.append(Part(name, line))
            comment = parts[-1] if in_script and name.startswith("// ") else None
        else:
            parts[-1].text += "\n" + line
    return unique(parts)


def compare(path, old_source, new_source, renames=()):
    """``path`` of the previous chapter (None for the first) against this chapter's, part by part.

    ``renames``: (old, new) pairs, such as the chapters' titles, that do not make a part changed.
    """
    cut = python_parts if path.endswith(".py") else page_parts
    parts = cut(new_source)
    if old_source is None:
        return Changes(path, parts)
    for old, new in renames:
        old_source = old_source.replace(old, new) if old and new else old_source
    before = {part.name: part.text for part in cut(old_source)}
    for part in parts:
        if part.name in before:
            part.state = "same" if before[part.name].strip() == part.text.strip() else "changed"
            part.before = before[part.name]
    names = {part.name for part in parts}
    return Changes(path, parts, [name for name in before if name not in names])
