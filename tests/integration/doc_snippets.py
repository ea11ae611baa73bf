#!/usr/bin/env python3
"""Checks that the C++ code blocks of the documentation are the code of compiled examples.

Every ```cpp block in README.md and docs/**/*.md that follows a marker line

    <!-- snippet: examples/guide/01_generators.cpp#lazy -->

must equal, byte for byte, the region of that file between `// [snippet: lazy]` and the next
`// [end snippet]` (the marker lines themselves excluded, the region's common indentation removed).
Without `#name` the block must equal the whole file. A missing file, a missing or unterminated region,
a marker not followed by a ```cpp block, or a difference fails the check with a message naming the
Markdown file and line.

Usage: doc_snippets.py <source dir> [--update]
--update rewrites each marked block from its source instead of checking it (after editing an example).
"""
import difflib
import pathlib
import re
import sys

MARKER = re.compile(r"^<!-- snippet: ([^#\s]+)(?:#([\w.-]+))? -->$")
REGION_BEGIN = re.compile(r"^\s*// \[snippet: ([\w.-]+)\]\s*$")
REGION_END = re.compile(r"^\s*// \[end snippet\]\s*$")


def dedent(lines):
    indents = [len(l) - len(l.lstrip(" ")) for l in lines if l.strip()]
    cut = min(indents) if indents else 0
    return [l[cut:] if l.strip() else l.lstrip(" ") for l in lines]


def regions(path):
    """name -> text of every region in a source file; raises ValueError on a malformed file."""
    found = {}
    current = None
    body = []
    for number, line in enumerate(path.read_text().splitlines(keepends=True), 1):
        begin = REGION_BEGIN.match(line)
        if begin:
            if current is not None:
                raise ValueError(f"{path}:{number}: region '{begin.group(1)}' starts inside region '{current}'")
            current, body = begin.group(1), []
            if current in found:
                raise ValueError(f"{path}:{number}: region '{current}' defined twice")
        elif REGION_END.match(line):
            if current is None:
                raise ValueError(f"{path}:{number}: '[end snippet]' without a region")
            found[current] = "".join(dedent(body))
            current = None
        elif current is not None:
            body.append(line)
    if current is not None:
        raise ValueError(f"{path}: region '{current}' is not terminated by '// [end snippet]'")
    return found


def blocks(md):
    """(line number, source path, region or None, block text) for every marked block of a Markdown file."""
    lines = md.read_text().splitlines(keepends=True)
    i = 0
    while i < len(lines):
        m = MARKER.match(lines[i].rstrip("\n"))
        if not m:
            if lines[i].startswith("<!-- snippet:"):
                raise ValueError(f"{md}:{i + 1}: malformed snippet marker: {lines[i].strip()}")
            i += 1
            continue
        at = i + 1
        if i + 1 >= len(lines) or lines[i + 1].rstrip("\n") != "```cpp":
            raise ValueError(f"{md}:{at}: the snippet marker must be followed by a ```cpp line")
        j = i + 2
        while j < len(lines) and lines[j].rstrip("\n") != "```":
            j += 1
        if j == len(lines):
            raise ValueError(f"{md}:{at}: the code block after the snippet marker is not closed")
        yield at, m.group(1), m.group(2), "".join(lines[i + 2 : j])
        i = j + 1


def expected_text(root, source, region, cache):
    """The text a block marked with `source#region` must have; raises ValueError naming the problem."""
    path = root / source
    if not path.is_file():
        raise ValueError(f"no such file: {source}")
    if region is None:
        return path.read_text()
    if path not in cache:
        cache[path] = regions(path)
    if region not in cache[path]:
        raise ValueError(f"{source} has no region '{region}' (// [snippet: {region}])")
    return cache[path][region]


def update(root, md):
    """Rewrites every marked block of `md` from its source."""
    lines = md.read_text().splitlines(keepends=True)
    out, cache = [], {}
    i = 0
    for at, source, region, text in list(blocks(md)):
        begin = at + 1  # index of the first line of the block's body
        out.extend(lines[i:begin])
        out.append(expected_text(root, source, region, cache))
        i = begin + len(text.splitlines())
    out.extend(lines[i:])
    md.write_text("".join(out))


def main():
    root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else ".").resolve()
    if "--update" in sys.argv[2:]:
        for md in [root / "README.md"] + sorted((root / "docs").rglob("*.md")):
            update(root, md)
        return 0
    docs = [root / "README.md"] + sorted((root / "docs").rglob("*.md"))
    checked, errors, cache = 0, [], {}
    for md in docs:
        try:
            for at, source, region, text in blocks(md):
                where = f"{md.relative_to(root)}:{at}"
                try:
                    expected = expected_text(root, source, region, cache)
                except ValueError as e:
                    errors.append(f"{where}: {e}")
                    continue
                if text != expected:
                    diff = "".join(difflib.unified_diff(expected.splitlines(keepends=True), text.splitlines(keepends=True),
                                                        f"{source}#{region or ''}", where))
                    errors.append(f"{where}: the block differs from {source}{'#' + region if region else ''}:\n{diff}")
                    continue
                checked += 1
        except ValueError as e:
            errors.append(str(e))
    if errors:
        print("\n".join(errors), file=sys.stderr)
        print(f"doc_snippets: {len(errors)} problem(s); {checked} snippet(s) match", file=sys.stderr)
        return 1
    if checked == 0:
        print("doc_snippets: no snippet markers found", file=sys.stderr)
        return 1
    print(f"doc_snippets: {checked} snippet(s) match their sources")
    return 0


if __name__ == "__main__":
    sys.exit(main())
