"""Split a PostgreSQL script into statements and name what each one defines (dev tool, no dependencies).

Used by `tools/sql_split.py` to move definitions out of numbered migrations into their repeatable files.
Quotes, dollar quotes and comments are honoured, so a `;` inside a function body does not end it."""

from __future__ import annotations

import re
from dataclasses import dataclass

_DOLLAR = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)?\$")


@dataclass(frozen=True)
class Statement:
    """One statement: `comment` is the block of `--` lines right above it, `text` runs to its `;`."""

    comment: str
    text: str
    start: int  # offset of the comment (or of the text when there is none) in the script
    end: int  # offset just past the `;`


def split(script: str) -> list[Statement]:
    """The statements of `script`, in order (a trailing statement without `;` is kept)."""
    out: list[Statement] = []
    i, n, begin = 0, len(script), 0
    while i < n:
        c = script[i]
        if script.startswith("--", i):
            j = script.find("\n", i)
            i = n if j < 0 else j + 1
        elif script.startswith("/*", i):
            depth, i = 1, i + 2
            while i < n and depth:
                if script.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                elif script.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                else:
                    i += 1
        elif c in "'\"":
            j = i + 1
            while j < n:
                if script[j] == c and script[j + 1 : j + 2] == c:
                    j += 2
                elif script[j] == c:
                    break
                else:
                    j += 1
            i = j + 1
        elif c == "$" and (m := _DOLLAR.match(script, i)) and not (i and script[i - 1].isalnum()):
            close = script.find(m.group(0), m.end())
            i = n if close < 0 else close + len(m.group(0))
        elif c == ";":
            out.append(_statement(script, begin, i + 1))
            begin = i = i + 1
        else:
            i += 1
    if script[begin:].strip() and _code(script[begin:]).strip():
        out.append(_statement(script, begin, n))
    return out


def _code(chunk: str) -> str:
    """`chunk` without its leading blank and `--` lines."""
    lines = chunk.splitlines(keepends=True)
    k = 0
    while k < len(lines) and (not lines[k].strip() or lines[k].lstrip().startswith("--")):
        k += 1
    return "".join(lines[k:])


def _statement(script: str, begin: int, end: int) -> Statement:
    chunk = script[begin:end]
    code = _code(chunk)
    head = chunk[: len(chunk) - len(code)]
    # The comment is the run of `--` lines directly above the statement (a blank line ends it).
    lines = head.splitlines(keepends=True)
    k = len(lines)
    while k and lines[k - 1].lstrip().startswith("--"):
        k -= 1
    comment = "".join(lines[k:])
    start = begin + len("".join(lines[:k]))
    return Statement(comment, code.rstrip(), start, end)


_IDENT = r'(?:"[^"]+"|[A-Za-z_][A-Za-z0-9_$]*)'
_QNAME = rf"((?:{_IDENT}\.)?{_IDENT})"
FUNCTION = re.compile(rf"^\s*CREATE\s+(?:OR\s+REPLACE\s+)?FUNCTION\s+{_QNAME}\s*\(", re.I)
VIEW = re.compile(rf"^\s*CREATE\s+(?:OR\s+REPLACE\s+)?VIEW\s+{_QNAME}", re.I)
POLICY = re.compile(rf"^\s*CREATE\s+POLICY\s+({_IDENT})\s+ON\s+{_QNAME}", re.I)
TRIGGER = re.compile(
    rf"^\s*CREATE\s+(?:OR\s+REPLACE\s+)?(?:CONSTRAINT\s+)?TRIGGER\s+({_IDENT})\s.*?\bON\s+{_QNAME}",
    re.I | re.S,
)
DROP_FUNCTION = re.compile(rf"^\s*DROP\s+FUNCTION\s+(?:IF\s+EXISTS\s+)?{_QNAME}", re.I)
DROP_POLICY = re.compile(rf"^\s*DROP\s+POLICY\s+(?:IF\s+EXISTS\s+)?({_IDENT})\s+ON\s+{_QNAME}", re.I)
RENAME_FUNCTION = re.compile(
    rf"^\s*ALTER\s+FUNCTION\s+{_QNAME}\s*\(.*?\)\s*RENAME\s+TO\s+({_IDENT})", re.I | re.S
)
GRANT_FUNCTION = re.compile(rf"^\s*(?:GRANT|REVOKE)\b.*?\bON\s+FUNCTION\s+{_QNAME}\s*\(", re.I | re.S)


def bare(name: str) -> str:
    """`public.foo` or `"foo"` as `foo` (the schema dropped, quotes removed)."""
    last = re.split(r"\.(?=(?:[^\"]*\"[^\"]*\")*[^\"]*$)", name)[-1]
    return last[1:-1] if last.startswith('"') else last.lower()


def defines(text: str) -> tuple[str, str, str] | None:
    """(kind, name, table) of what a CREATE statement defines: kind is function, view, policy or trigger;
    table is the policy's or trigger's table (else empty). None for anything else."""
    if m := FUNCTION.match(text):
        return ("function", bare(m.group(1)), "")
    if m := VIEW.match(text):
        return ("view", bare(m.group(1)), "")
    if m := POLICY.match(text):
        return ("policy", bare(m.group(1)), bare(m.group(2)))
    if m := TRIGGER.match(text):
        return ("trigger", bare(m.group(1)), bare(m.group(2)))
    return None
