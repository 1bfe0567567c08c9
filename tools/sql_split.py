"""Move the definitions out of a numbered migration written the old way into their repeatable files.

    python tools/sql_split.py sql/0028_business.sql [--dry-run]

For each statement of the migration (`sql/README.md` says where things live):
- `CREATE [OR REPLACE] FUNCTION public.f`: replaces the definition in `sql/functions/f.sql` (a new file when
  there is none), as `CREATE OR REPLACE`; `GRANT`/`REVOKE ... ON FUNCTION public.f` go with it;
- `CREATE [OR REPLACE] VIEW public.v`: likewise into `sql/views/v.sql`, with `GRANT`/`REVOKE ... ON public.v`;
- `CREATE POLICY "p" ON public.t` (and a `DROP POLICY IF EXISTS "p"` just for it): into `sql/policies/t.sql`;
- `CREATE [OR REPLACE] TRIGGER x ... EXECUTE FUNCTION public.f()`: into `sql/functions/f.sql`, as
  `CREATE OR REPLACE TRIGGER`;
- `DROP FUNCTION`/`DROP VIEW`/`DROP POLICY` of something not created again in the migration stay in it (a
  removal is a schema change) and its definition leaves the repeatable files, so a fresh database does not
  create it again.
What the tool cannot move (a definition inside a `DO` block, `ALTER FUNCTION ... RENAME`, a moved function
that the rest of the migration still names, which now exists only after it) is printed, and the exit status
is 1, for a person to finish by hand. Then run `tests/test_repeatable_migrations.py`."""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import sqltext  # (the tools folder is not a package: found through the path above)
from sqltext import Statement, bare

_ON_FUNCTION = re.compile(r"\bON\s+FUNCTION\s+((?:\w+\.)?\w+)\s*\(", re.I)
_ON_RELATION = re.compile(
    r"^\s*(?:GRANT|REVOKE)\b.*?\bON\s+(?:TABLE\s+)?((?:\w+\.)?\w+)\s+(?:TO|FROM)\b", re.I | re.S
)
_EXECUTES = re.compile(r"EXECUTE\s+(?:FUNCTION|PROCEDURE)\s+((?:\w+\.)?\w+)\s*\(", re.I)
_DROP_VIEW = re.compile(r"^\s*DROP\s+VIEW\s+(?:IF\s+EXISTS\s+)?((?:\w+\.)?\w+)", re.I)
_DROP_TRIGGER = re.compile(r"^\s*DROP\s+TRIGGER\s+(?:IF\s+EXISTS\s+)?(\w+)\s+ON\s+((?:\w+\.)?\w+)", re.I)
_DEFINES_ANYWHERE = re.compile(
    r"^\s*CREATE\s+(?:OR\s+REPLACE\s+)?(?:CONSTRAINT\s+)?(FUNCTION|VIEW|TRIGGER|POLICY)\b", re.I | re.M
)
_MODES = {"in", "out", "inout", "variadic"}
# Aliases as PostgreSQL names the types (so a REVOKE line reads as the catalog does, and does not change for
# a mere spelling).
_TYPE_NAMES = {
    "int": "integer",
    "int4": "integer",
    "int8": "bigint",
    "int2": "smallint",
    "bool": "boolean",
    "decimal": "numeric",
    "timestamptz": "timestamp with time zone",
    "varchar": "character varying",
    "float8": "double precision",
}


def or_replace(text: str, kind: str) -> str:
    return re.sub(
        rf"^(\s*)CREATE\s+(?:OR\s+REPLACE\s+)?{kind}\b",
        rf"\1CREATE OR REPLACE {kind}",
        text,
        count=1,
        flags=re.I,
    )


def argument_types(create: str) -> str | None:
    """The input argument types of a `CREATE FUNCTION` header (for its `REVOKE`), or None when unsure."""
    start = create.index("(")
    depth, i = 0, start
    while i < len(create):
        depth += {"(": 1, ")": -1}.get(create[i], 0)
        if depth == 0:
            break
        i += 1
    params, depth, cur = [], 0, ""
    for c in create[start + 1 : i]:
        if c == "," and depth == 0:
            params.append(cur)
            cur = ""
            continue
        depth += {"(": 1, ")": -1}.get(c, 0)
        cur += c
    if cur.strip():
        params.append(cur)
    types = []
    for p in params:
        p = re.split(r"\s+DEFAULT\s+|\s*=\s*", p.strip(), maxsplit=1, flags=re.I)[0]
        words = p.split()
        mode = words[0].lower() if words and words[0].lower() in _MODES else "in"
        if mode != "in":
            words = words[1:]
        if mode == "out":
            continue
        if len(words) < 2:
            return None  # an unnamed parameter: its type and a name cannot be told apart here
        typ = " ".join(words[1:]).lower()
        types.append(_TYPE_NAMES.get(typ, typ))
    return ", ".join(types)


def _header(name: str) -> str:
    return (
        f"-- public.{name}: its current definition, applied again whenever this file changes (edit it "
        "here).\n\n"
    )


def _replace_statement(path: Path, matches: object, new_text: str, header: str) -> str:
    """`path` with the statement `matches(statement) is True` replaced by `new_text`, or new_text appended
    (after `header` when the file is new). Returns what was done."""
    assert callable(matches)
    if not path.exists():
        path.write_text(header + new_text + "\n")
        return f"created {path}"
    script = path.read_text()
    for s in sqltext.split(script):
        if matches(s):
            # The new statement's comment, if it has one, replaces the old one's.
            has_comment = new_text.lstrip().startswith("--")
            begin = s.start if has_comment else script.index(s.text, s.start)
            path.write_text(script[:begin] + new_text.strip() + script[s.end :])
            return f"replaced the definition in {path}"
    path.write_text(script.rstrip("\n") + "\n" + new_text + "\n")
    return f"appended to {path}"


def _remove_statements(path: Path, matches: object) -> bool:
    assert callable(matches)
    if not path.exists():
        return False
    script = path.read_text()
    spans = [(s.start, s.end) for s in sqltext.split(script) if matches(s)]
    for start, end in reversed(spans):
        script = script[:start] + script[end:].lstrip("\n")
    path.write_text(script)
    return bool(spans)


def split_migration(migration: Path, sql_dir: Path, dry_run: bool = False) -> tuple[list[str], list[str]]:
    """Do the move; return (what was done, what a person must finish)."""
    script = migration.read_text()
    statements = sqltext.split(script)
    done: list[str] = []
    todo: list[str] = []
    moved: list[Statement] = []
    moved_functions: set[str] = set()
    created = {(d[0], d[1], d[2]) for s in statements if (d := sqltext.defines(s.text))}
    plan: list[tuple[Statement, str, object]] = []  # (statement, repeatable file, how)

    for s in statements:
        d = sqltext.defines(s.text)
        if d and d[0] == "function":
            name = d[1]
            moved_functions.add(name)
            plan.append((s, f"functions/{name}.sql", ("function", name)))
        elif d and d[0] == "view":
            plan.append((s, f"views/{d[1]}.sql", ("view", d[1])))
        elif d and d[0] == "policy":
            plan.append((s, f"policies/{d[2]}.sql", ("policy", d[1], d[2])))
        elif d and d[0] == "trigger":
            fn = _EXECUTES.search(s.text)
            if not fn:
                todo.append(f"trigger {d[1]}: no EXECUTE FUNCTION found, move it by hand")
                continue
            plan.append((s, f"functions/{bare(fn.group(1))}.sql", ("trigger", d[1], d[2])))
        elif m := _ON_FUNCTION.search(s.text):
            if re.match(r"^\s*(GRANT|REVOKE)\b", s.text, re.I):
                plan.append((s, f"functions/{bare(m.group(1))}.sql", ("grant",)))
        elif (m := sqltext.DROP_POLICY.match(s.text)) and (
            "policy",
            bare(m.group(1)),
            bare(m.group(2)),
        ) in created:
            moved.append(s)  # the DROP POLICY IF EXISTS that goes with the CREATE POLICY below it
        elif m := sqltext.DROP_POLICY.match(s.text):
            plan.append((s, f"policies/{bare(m.group(2))}.sql", ("drop policy", bare(m.group(1)))))
        elif (m := sqltext.DROP_FUNCTION.match(s.text)) and not any(
            c[0] == "function" and c[1] == bare(m.group(1)) for c in created
        ):
            plan.append((s, f"functions/{bare(m.group(1))}.sql", ("drop function",)))
        elif (m := _DROP_VIEW.match(s.text)) and ("view", bare(m.group(1)), "") not in created:
            plan.append((s, f"views/{bare(m.group(1))}.sql", ("drop view",)))
        elif (m := _DROP_TRIGGER.match(s.text)) and any(
            c[0] == "trigger" and c[1] == bare(m.group(1)) for c in created
        ):
            moved.append(s)  # dropped to be created again: CREATE OR REPLACE TRIGGER in its file does it
        elif (m := _DROP_TRIGGER.match(s.text)) and not any(
            c[0] == "trigger" and c[1] == bare(m.group(1)) for c in created
        ):
            todo.append(
                f"{m.group(1)} on {m.group(2)} is dropped: take it out of its function's file by hand"
            )
        elif sqltext.RENAME_FUNCTION.match(s.text):
            todo.append(f"a rename stays in the migration, fix the files by hand: {s.text.splitlines()[0]}")
        elif _DEFINES_ANYWHERE.search(s.text):
            todo.append(f"a definition inside a statement the tool does not split: {s.text.splitlines()[0]}")

    # Grants on views: GRANT/REVOKE ON public.v where v is a view created here or with a file already.
    views = {p[2][1] for p in plan if p[2][0] == "view"} | {p.stem for p in (sql_dir / "views").glob("*.sql")}
    for s in statements:
        m = _ON_RELATION.match(s.text)
        if m and not _ON_FUNCTION.search(s.text) and bare(m.group(1)) in views:
            plan.append((s, f"views/{bare(m.group(1))}.sql", ("grant",)))

    if dry_run:
        for s, target, how in plan:
            done.append(f"would move {how[0]} {s.text.splitlines()[0][:80]!r} to sql/{target}")
    else:
        for s, target, how in plan:
            path = sql_dir / target
            path.parent.mkdir(exist_ok=True)
            kind = how[0]  # type: ignore[index]
            if kind == "function":
                name = how[1]  # type: ignore[index]
                text = s.comment + or_replace(s.text, "FUNCTION")
                types = argument_types(s.text)
                grant = (
                    f"\n\nREVOKE ALL ON FUNCTION public.{name}({types}) FROM PUBLIC, anon, authenticated;"
                    if types is not None
                    else ""
                )
                if types is None:
                    todo.append(f"{name}: write its REVOKE by hand (a parameter without a name)")
                header = _header(name)
                done.append(
                    _replace_statement(
                        path,
                        lambda st, n=name: (
                            (d := sqltext.defines(st.text)) is not None and d[:2] == ("function", n)
                        ),
                        text + ("" if path.exists() else grant),
                        header,
                    )
                )
                if types is not None:
                    # Its GRANT/REVOKE lines name the signature it has now (it may have new argument types).
                    held = path.read_text()
                    path.write_text(
                        re.sub(
                            rf"(ON\s+FUNCTION\s+public\.{name})\s*\([^)]*\)",
                            rf"\1({types})",
                            held,
                            flags=re.I,
                        )
                    )
            elif kind == "view":
                name = how[1]  # type: ignore[index]
                header = _header(name)
                done.append(
                    _replace_statement(
                        path,
                        lambda st, n=name: (
                            (d := sqltext.defines(st.text)) is not None and d[:2] == ("view", n)
                        ),
                        s.comment + or_replace(s.text, "VIEW"),
                        header,
                    )
                )
            elif kind == "policy":
                pname, table = how[1], how[2]  # type: ignore[index,misc]
                _remove_statements(
                    path,
                    lambda st, p=pname: (
                        bool(m := sqltext.DROP_POLICY.match(st.text)) and bare(m.group(1)) == p
                    ),
                )
                header = (
                    f"-- The row level security policies of public.{table}, applied again whenever this file "
                    f"changes (edit them\n-- here). Whether row level security is on is the table's, in the "
                    f"numbered files.\n\n"
                )
                quoted = pname if re.fullmatch(r"[a-z_][a-z0-9_]*", pname) else f'"{pname}"'
                done.append(
                    _replace_statement(
                        path,
                        lambda st, p=pname: (
                            (d := sqltext.defines(st.text)) is not None and d[:2] == ("policy", p)
                        ),
                        f"{s.comment}DROP POLICY IF EXISTS {quoted} ON public.{table};\n{s.text}",
                        header,
                    )
                )
            elif kind == "trigger":
                tname, table = how[1], how[2]  # type: ignore[index,misc]
                if not path.exists():
                    todo.append(f"trigger {tname}: its function's file {path} does not exist; add it by hand")
                    continue
                done.append(
                    _replace_statement(
                        path,
                        lambda st, t=tname, tb=table: (
                            (d := sqltext.defines(st.text)) is not None and d == ("trigger", t, tb)
                        ),
                        s.comment + or_replace(s.text, "TRIGGER"),
                        "",
                    )
                )
            elif kind == "grant":
                if path.exists() and s.text in path.read_text():
                    done.append(f"{s.text.splitlines()[0][:60]!r} already in {path}")
                elif path.exists():
                    path.write_text(path.read_text().rstrip("\n") + "\n" + s.text + "\n")
                    done.append(f"appended a grant to {path}")
                else:
                    todo.append(f"a grant for {target}, which has no file: move it by hand")
                    continue
            elif kind == "drop policy":
                pname = how[1]  # type: ignore[index]
                _remove_statements(
                    path,
                    lambda st, p=pname: bool(
                        ((m := sqltext.DROP_POLICY.match(st.text)) and bare(m.group(1)) == p)
                        or ((d := sqltext.defines(st.text)) is not None and d[:2] == ("policy", p))
                    ),
                )
                done.append(f"policy {pname} dropped: taken out of {path} (the DROP stays in the migration)")
                continue  # the DROP stays in the numbered file
            elif kind in ("drop function", "drop view"):
                if path.exists():
                    path.unlink()
                    done.append(f"{kind[5:]} dropped: removed {path} (the DROP stays in the migration)")
                continue
            moved.append(s)

        keep = script
        for s in sorted(moved, key=lambda st: st.start, reverse=True):
            name = sqltext.defines(s.text)
            note = f"-- (moved to its repeatable file: {name[0]} {name[1]})\n" if name else ""
            keep = keep[: s.start] + note + keep[s.end :].lstrip("\n")
        migration.write_text(keep)
        rest = "\n".join(s.text for s in sqltext.split(keep) if not sqltext.DROP_FUNCTION.match(s.text))
        for fn in sorted(moved_functions):
            if re.search(rf"\b{re.escape(fn)}\s*\(", rest):
                todo.append(
                    f"the migration still names {fn}(), which now is created only after it (repeatables run "
                    "after every numbered migration): if it calls it, move that use or keep the function's "
                    "first version in the migration"
                )
    return done, todo


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("migration", type=Path, help="the numbered migration to split, e.g. sql/0028_x.sql")
    ap.add_argument("--sql-dir", type=Path, default=None, help="the migrations folder (default: its folder)")
    ap.add_argument("--dry-run", action="store_true", help="say what would move, change nothing")
    args = ap.parse_args()
    done, todo = split_migration(args.migration, args.sql_dir or args.migration.parent, args.dry_run)
    for line in done:
        print(line)
    for line in todo:
        print(f"BY HAND: {line}", file=sys.stderr)
    return 1 if todo else 0


if __name__ == "__main__":
    sys.exit(main())
