"""The phone app's REST API: profile, PIN, contacts, history, plans, payment methods and billing.

Every route takes the user token, and every read and write of the user's rows runs as role `authenticated`
with the token's claims (`ledger.reads.as_user`), so the founding row level security policies confine it to
the user: another user's row is simply not there (404), whatever id or filter is asked for.

The routes are mounted by `routes.setup_app_api`; importing one module of the package (the conversation
driver uses `analytics.spending_told`) does not import them all."""
