"""What the API roles (Supabase's `anon` and `authenticated`, and PUBLIC) can reach in `public` beyond the
app's own grants.

The migrations take Supabase's default grants back, but one blanket `GRANT ALL ON ALL TABLES IN SCHEMA public
TO authenticated`, a common instruction in Supabase guides, gives them all back: a user could then read their
`pin_hash` (four digits are guessed offline in seconds) or call a money function as themselves. `ongea-pesa
check` reports such grants with the statements that take them back (`revocations`)."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

API_ROLES = ("anon", "authenticated", "public")

# What a signed-in user may do in public at table level, exactly: (table, privilege) pairs. The column
# grants of `profiles` (sql/0005, 0007) are the user's too, all but the secret columns below.
USER_TABLE_GRANTS = {
    ("transactions", "SELECT"),
    ("balance_history", "SELECT"),
    ("mpesa_transactions", "SELECT"),
    ("subscriptions", "SELECT"),
    ("voice_sessions", "SELECT"),
    ("voice_session_turns", "SELECT"),  # 0024: the turns of their own sessions (row level security)
    ("voice_session_openings", "SELECT"),  # 0025: what they had when their own sessions began (RLS)
    ("subscription_plans", "SELECT"),
    ("spending", "SELECT"),  # sql/0023: a security-invoker view over the user's own transactions
    ("api_key_events", "SELECT"),  # sql/0026: the audit log of their own keys (row level security)
    ("trusted_payees", "SELECT"),  # sql/0026: their own trusted payees (row level security)
    ("businesses", "SELECT"),  # sql/0028: the businesses they are a member of (row level security)
    ("business_members", "SELECT"),  # sql/0028: their membership; the whole team for owners, admins, viewers
    *((t, p) for t in ("payment_methods", "contacts") for p in ("SELECT", "INSERT", "UPDATE", "DELETE")),
}
TABLE_PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER")
SEQUENCE_PRIVILEGES = ("USAGE", "SELECT", "UPDATE")

# Functions a signed-in user may call: the business policies' own (sql/0028), which tell the caller only
# their own role in a business.
USER_FUNCTIONS = {"business_member_role(uuid)", "business_reader_role(uuid)"}

# Columns no API role may read or write, whatever the table's other column grants.
SECRET_COLUMNS = (("profiles", "pin_hash"), ("api_keys", "key_hash"))

_NOT_FROM_AN_EXTENSION = """NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = '{catalog}'::regclass
                                     AND d.objid = {oid} AND d.deptype = 'e')"""


@dataclass(frozen=True)
class Grant:
    """A privilege an API role holds that the app never gave it."""

    role: str
    privilege: str
    kind: str  # "table", "sequence", "function" or "column"
    name: str  # public.t, public.f(args), or public.t (column) for a column

    def __str__(self) -> str:
        if self.kind == "function":
            return f"{self.role} {self.privilege} on {self.name}"
        if self.kind == "column":
            return f"{self.role} {self.privilege} on column {self.name}"
        return f"{self.role} {self.privilege} on {self.kind} {self.name}"


async def exposure(conn: asyncpg.Connection) -> list[Grant]:
    """Every privilege anon, authenticated or PUBLIC holds in `public` beyond the app's explicit grants
    (extensions' objects left out: they are not ours)."""
    present = {r["rolname"] for r in await conn.fetch("SELECT rolname FROM pg_roles")}
    roles = [r for r in API_ROLES if r == "public" or r in present]
    found: list[Grant] = []
    rows = await conn.fetch(
        f"""SELECT quote_ident(c.relname) AS relname, c.relkind, a.privilege_type,
                   CASE WHEN a.grantee = 0 THEN 'public' ELSE pg_get_userbyid(a.grantee) END AS role
            FROM pg_class c,
                 aclexplode(coalesce(c.relacl, acldefault(
                     (CASE WHEN c.relkind = 'S' THEN 's' ELSE 'r' END)::"char", c.relowner))) a
            WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'S')
              AND {_NOT_FROM_AN_EXTENSION.format(catalog="pg_class", oid="c.oid")}
            ORDER BY c.relname, role, a.privilege_type"""
    )
    for r in rows:
        if r["role"] not in roles:
            continue
        sequence = r["relkind"] == "S"
        if r["privilege_type"] not in (SEQUENCE_PRIVILEGES if sequence else TABLE_PRIVILEGES):
            continue
        if not sequence and r["role"] == "authenticated":
            if (r["relname"], r["privilege_type"]) in USER_TABLE_GRANTS:
                continue
        kind = "sequence" if sequence else "table"
        found.append(Grant(r["role"], r["privilege_type"], kind, f"public.{r['relname']}"))
    columns = await conn.fetch(
        """SELECT c.relname, t.attname, a.privilege_type,
                  CASE WHEN a.grantee = 0 THEN 'public' ELSE pg_get_userbyid(a.grantee) END AS role
           FROM unnest($1::text[], $2::text[]) AS s(tbl, col)
           JOIN pg_class c ON c.relnamespace = 'public'::regnamespace AND c.relname = s.tbl
           JOIN pg_attribute t ON t.attrelid = c.oid AND t.attname = s.col,
                aclexplode(t.attacl) a
           WHERE a.privilege_type IN ('SELECT', 'UPDATE', 'INSERT', 'REFERENCES')
           ORDER BY 1, 2, 4, 3""",
        [t for t, _ in SECRET_COLUMNS],
        [c for _, c in SECRET_COLUMNS],
    )
    for r in columns:
        if r["role"] in roles:
            name = f"public.{r['relname']} ({r['attname']})"
            found.append(Grant(r["role"], r["privilege_type"], "column", name))
    # has_function_privilege: held through PUBLIC or a role granted to it counts too (anon and
    # authenticated are then named beside PUBLIC; revoking from PUBLIC is what takes it back).
    functions = await conn.fetch(
        f"""SELECT p.oid::regprocedure::text AS name, r.role
            FROM pg_proc p, unnest($1::text[]) AS r(role)
            WHERE p.pronamespace = 'public'::regnamespace
              AND {_NOT_FROM_AN_EXTENSION.format(catalog="pg_proc", oid="p.oid")}
              AND has_function_privilege(r.role, p.oid, 'EXECUTE')
            ORDER BY 1, 2""",
        roles,
    )
    for f in functions:
        if f["role"] == "authenticated" and f["name"] in USER_FUNCTIONS:
            continue
        found.append(Grant(f["role"], "EXECUTE", "function", f"public.{f['name']}"))
    return found


async def revocations(conn: asyncpg.Connection, found: list[Grant]) -> list[str]:
    """The statements that take `found` back and nothing else. A table-level REVOKE also takes the role's
    column grants of that privilege (PostgreSQL's rule), so the app's own column grants are given again."""
    statements: list[str] = []
    for g in found:
        role = "PUBLIC" if g.role == "public" else _quote(g.role)
        if g.kind == "function":
            statements.append(f"REVOKE EXECUTE ON FUNCTION {g.name} FROM {role};")
        elif g.kind == "column":
            table, column = g.name.removesuffix(")").split(" (")
            statements.append(f"REVOKE {g.privilege} ({_quote(column)}) ON {table} FROM {role};")
        else:
            what = "SEQUENCE " if g.kind == "sequence" else ""
            statements.append(f"REVOKE {g.privilege} ON {what}{g.name} FROM {role};")
            if g.kind == "table":
                columns = await _column_grants(conn, g.name, g.role, g.privilege)
                if columns:
                    names = ", ".join(_quote(c) for c in columns)
                    statements.append(f"GRANT {g.privilege} ({names}) ON {g.name} TO {role};")
    return statements


async def _column_grants(conn: asyncpg.Connection, table: str, role: str, privilege: str) -> list[str]:
    """The columns of `table` on which `role` holds `privilege` by a column grant, secret ones left out."""
    rows = await conn.fetch(
        """SELECT t.attname FROM pg_attribute t, aclexplode(t.attacl) a
           WHERE t.attrelid = $1::regclass AND t.attnum > 0 AND NOT t.attisdropped
             AND a.privilege_type = $3
             AND a.grantee = CASE WHEN $2 = 'public' THEN 0
                                  ELSE (SELECT oid FROM pg_roles WHERE rolname = $2) END
           ORDER BY t.attnum""",
        table,
        role,
        privilege,
    )
    name = table.removeprefix("public.")
    return [r["attname"] for r in rows if (name, r["attname"]) not in SECRET_COLUMNS]


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'
