"""The decision log's tables and indexes, for SQLite and (derived from it) PostgreSQL."""

from __future__ import annotations

_SQLITE_SCHEMA = """
CREATE TABLE IF NOT EXISTS log_entries (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    writer           TEXT NOT NULL,
    seq              INTEGER NOT NULL,
    kind             TEXT NOT NULL,
    decision_id      TEXT NOT NULL,
    created_at       TEXT NOT NULL,
    caller           TEXT NOT NULL,
    ruleset          TEXT,
    ruleset_version  TEXT,
    bundle_revision  TEXT,
    decision_type    TEXT,
    execution_status TEXT,
    org_id           TEXT,
    latency_ms       REAL,
    body             TEXT NOT NULL,
    prev_hash        TEXT NOT NULL,
    hash             TEXT NOT NULL,
    UNIQUE (writer, seq)
);
CREATE TABLE IF NOT EXISTS log_fired (entry_id INTEGER NOT NULL, rule_id TEXT NOT NULL, won INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS log_denied (entry_id INTEGER NOT NULL, policy TEXT NOT NULL, violation_id TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS blobs (sha256 TEXT PRIMARY KEY, content BLOB NOT NULL);
"""

_POSTGRES_SCHEMA = (
    _SQLITE_SCHEMA.replace("INTEGER PRIMARY KEY AUTOINCREMENT", "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY")
    .replace("entry_id INTEGER", "entry_id BIGINT")
    .replace("BLOB", "BYTEA")
    .replace(" REAL,", " DOUBLE PRECISION,")
)

_COMMON_SCHEMA = """
CREATE UNIQUE INDEX IF NOT EXISTS log_entries_one_decision ON log_entries (decision_id) WHERE kind = 'decision';
CREATE INDEX IF NOT EXISTS log_entries_decision_id ON log_entries (decision_id);
CREATE INDEX IF NOT EXISTS log_entries_created_at ON log_entries (created_at);
CREATE INDEX IF NOT EXISTS log_fired_rule ON log_fired (rule_id, entry_id);
CREATE INDEX IF NOT EXISTS log_denied_policy ON log_denied (policy, entry_id);
CREATE INDEX IF NOT EXISTS log_denied_id ON log_denied (violation_id, entry_id);
CREATE TABLE IF NOT EXISTS versions (
    version         TEXT PRIMARY KEY,
    first_loaded_at TEXT NOT NULL,
    last_loaded_at  TEXT NOT NULL,
    loads           INTEGER NOT NULL,
    rulesets        TEXT NOT NULL,
    git             TEXT
);
CREATE TABLE IF NOT EXISTS pending_approvals (
    decision_id  TEXT PRIMARY KEY,
    entry_id     BIGINT NOT NULL,
    ruleset      TEXT NOT NULL,
    requested_by TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    expires_at   TEXT NOT NULL,
    status       TEXT NOT NULL,
    resolved_at  TEXT,
    resolved_by  TEXT
);
CREATE INDEX IF NOT EXISTS pending_approvals_open ON pending_approvals (status, created_at);
CREATE TABLE IF NOT EXISTS revoked_sessions (
    sid        TEXT PRIMARY KEY,
    expires_at BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS revoked_sessions_expiry ON revoked_sessions (expires_at);
CREATE TABLE IF NOT EXISTS version_files (
    version TEXT NOT NULL,
    path    TEXT NOT NULL,
    sha256  TEXT NOT NULL,
    PRIMARY KEY (version, path)
);
CREATE TABLE IF NOT EXISTS export_cursors (
    sink   TEXT NOT NULL,
    writer TEXT NOT NULL,
    seq    BIGINT NOT NULL,
    PRIMARY KEY (sink, writer)
);
CREATE TABLE IF NOT EXISTS action_outbox (
    decision_id  TEXT NOT NULL,
    action_index INTEGER NOT NULL,
    writer       TEXT NOT NULL,
    action_type  TEXT NOT NULL,
    body         TEXT NOT NULL,
    state        TEXT NOT NULL,
    attempts     INTEGER NOT NULL,
    next_at      TEXT NOT NULL,
    last_error   TEXT,
    created_at   TEXT NOT NULL,
    settled_at   TEXT,
    PRIMARY KEY (decision_id, action_index)
);
CREATE INDEX IF NOT EXISTS action_outbox_due ON action_outbox (writer, state, next_at);
CREATE TABLE IF NOT EXISTS export_checkpoints (
    sink        TEXT NOT NULL,
    name        TEXT NOT NULL,
    exported_at TEXT NOT NULL,
    PRIMARY KEY (sink, name)
);
"""

# columns added since the first release: a log created before has its tables altered when opened for writing
ADDED_COLUMNS = (("log_entries", "latency_ms", "REAL"),)  # a decision's end-to-end ms, for the dashboard

SQLITE_SCHEMA = _SQLITE_SCHEMA + _COMMON_SCHEMA
POSTGRES_SCHEMA = (
    _POSTGRES_SCHEMA
    + _COMMON_SCHEMA
    + "".join(
        f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {column} {kind.replace('REAL', 'DOUBLE PRECISION')};\n"
        for table, column, kind in ADDED_COLUMNS
    )
)
