-- Profiles and flows: the processor's state, as profiles.db holds it in SQLite (sqlite/profiles.rs and
-- sqlite/flows.rs), with what several workers sharing it need besides: a version on every profile, which a
-- batch's commit checks and raises (another worker's change in between is a conflict, and the batch runs
-- again), and a checkpoint per partition of the log.
CREATE TABLE identities (
    kind       TEXT   NOT NULL,
    value      TEXT   NOT NULL,
    profile_id BIGINT NOT NULL,
    PRIMARY KEY (kind, value)
);
CREATE INDEX identities_by_profile ON identities (profile_id);
CREATE TABLE profiles (
    id      BIGINT PRIMARY KEY,
    state   BYTEA  NOT NULL,
    version BIGINT NOT NULL
);
CREATE TABLE profile_events (
    profile_id BIGINT NOT NULL,
    seq        BIGINT NOT NULL,
    PRIMARY KEY (profile_id, seq)
);
CREATE TABLE merges (
    id           BIGSERIAL PRIMARY KEY,
    into_profile BIGINT NOT NULL,
    from_profile BIGINT NOT NULL,
    at           BIGINT NOT NULL,
    seq          BIGINT NOT NULL,
    message_id   TEXT   NOT NULL
);
CREATE INDEX merges_by_into ON merges (into_profile);
CREATE TABLE tombstones (
    hash      BYTEA  PRIMARY KEY,
    erased_at BIGINT NOT NULL,
    erase_seq BIGINT NOT NULL
);
-- How far each partition of the log has been processed (partition 0 alone when the log is not partitioned).
CREATE TABLE checkpoints (
    partition INTEGER PRIMARY KEY,
    seq       BIGINT  NOT NULL
);
CREATE TABLE counters (
    name  TEXT   PRIMARY KEY,
    value BIGINT NOT NULL
);
CREATE TABLE flow_states (
    profile_id BIGINT PRIMARY KEY,
    state      BYTEA  NOT NULL
);
CREATE TABLE timers (
    profile_id BIGINT PRIMARY KEY,
    due        BIGINT NOT NULL
);
CREATE INDEX timers_by_due ON timers (due, profile_id);
CREATE TABLE outbox (
    seq        BIGSERIAL PRIMARY KEY,
    key        TEXT    NOT NULL UNIQUE,
    profile_id BIGINT  NOT NULL,
    connector  TEXT    NOT NULL,
    body       BYTEA   NOT NULL,
    created_at BIGINT  NOT NULL,
    attempts   INTEGER NOT NULL DEFAULT 0,
    due_at     BIGINT  NOT NULL,
    state      TEXT    NOT NULL DEFAULT 'pending',
    result     TEXT,
    error      TEXT
);
CREATE INDEX outbox_pending_seq ON outbox (seq) WHERE state = 'pending';
CREATE INDEX outbox_by_profile ON outbox (profile_id);
CREATE INDEX outbox_dead_seq ON outbox (seq) WHERE state = 'dead';
CREATE TABLE runs (
    id         TEXT    PRIMARY KEY,
    profile_id BIGINT  NOT NULL,
    flow       TEXT    NOT NULL,
    version    INTEGER NOT NULL,
    state      TEXT    NOT NULL,
    started_at BIGINT  NOT NULL,
    updated_at BIGINT  NOT NULL,
    body       BYTEA   NOT NULL
);
CREATE INDEX runs_by_profile ON runs (profile_id, started_at);
CREATE INDEX runs_by_flow ON runs (flow, started_at);
CREATE INDEX runs_awaiting_approval ON runs (updated_at, id) WHERE state = 'approval';
CREATE TABLE segment_members (
    segment    TEXT   NOT NULL,
    profile_id BIGINT NOT NULL,
    PRIMARY KEY (segment, profile_id)
);
CREATE TABLE step_counts (
    flow    TEXT    NOT NULL,
    version INTEGER NOT NULL,
    step    TEXT    NOT NULL,
    count   BIGINT  NOT NULL,
    PRIMARY KEY (flow, version, step)
);
CREATE TABLE flow_stats (
    flow    TEXT   NOT NULL,
    step    TEXT   NOT NULL,
    measure TEXT   NOT NULL,
    count   BIGINT NOT NULL,
    PRIMARY KEY (flow, step, measure)
);
CREATE TABLE segment_backfills (
    segment      TEXT   PRIMARY KEY,
    source_hash  TEXT   NOT NULL,
    next_profile BIGINT NOT NULL,
    done         BIGINT NOT NULL,
    total        BIGINT NOT NULL,
    started_at   BIGINT NOT NULL,
    finished_at  BIGINT
);
CREATE TABLE segment_history (
    segment TEXT   NOT NULL,
    day     TEXT   NOT NULL,
    count   BIGINT NOT NULL,
    PRIMARY KEY (segment, day)
);
CREATE TABLE broadcasts (
    id           TEXT   PRIMARY KEY,
    name         TEXT   NOT NULL,
    segment      TEXT   NOT NULL,
    status       TEXT   NOT NULL,
    send_at      BIGINT NOT NULL,
    created_by   TEXT   NOT NULL,
    created_at   BIGINT NOT NULL,
    total        BIGINT NOT NULL,
    done         BIGINT NOT NULL,
    next_profile BIGINT NOT NULL,
    finished_at  BIGINT
);
-- The audit trail: append-only. Nothing deletes a record; the one change allowed is an erasure's redaction,
-- which blanks what a record says about the person and keeps the rest.
CREATE TABLE audit (
    seq        BIGSERIAL PRIMARY KEY,
    at         BIGINT  NOT NULL,
    kind       TEXT    NOT NULL,
    flow       TEXT,
    run        TEXT,
    profile_id BIGINT,
    detail     JSONB   NOT NULL,
    redacted   BOOLEAN NOT NULL DEFAULT false
);
CREATE INDEX audit_by_flow ON audit (flow, seq);
CREATE INDEX audit_by_run ON audit (run, seq);
CREATE INDEX audit_by_profile ON audit (profile_id, seq);
CREATE INDEX audit_by_time ON audit (at);
CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'the audit log is append-only';
    END IF;
    IF NOT (OLD.redacted = false AND NEW.redacted = true AND NEW.seq = OLD.seq AND NEW.at = OLD.at
            AND NEW.kind = OLD.kind AND NEW.flow IS NOT DISTINCT FROM OLD.flow
            AND NEW.run IS NOT DISTINCT FROM OLD.run AND NEW.profile_id IS NOT DISTINCT FROM OLD.profile_id) THEN
        RAISE EXCEPTION 'the audit log is append-only; only an erasure may redact a record';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER audit_append_only BEFORE UPDATE OR DELETE ON audit
    FOR EACH ROW EXECUTE FUNCTION audit_append_only();
-- What each flow's delivered actions cost, per currency: apart from the outbox, whose rows go with an erased
-- person (money spent stays spent).
CREATE TABLE spend (
    flow     TEXT   NOT NULL,
    currency TEXT   NOT NULL,
    micros   BIGINT NOT NULL,
    actions  BIGINT NOT NULL,
    PRIMARY KEY (flow, currency)
);
CREATE TABLE flow_pauses (
    flow      TEXT   PRIMARY KEY,
    paused_at BIGINT NOT NULL
);
CREATE TABLE definitions (
    kind       TEXT    NOT NULL,
    id         TEXT    NOT NULL,
    version    INTEGER NOT NULL,
    source     TEXT    NOT NULL,
    created_at BIGINT  NOT NULL,
    deleted    BOOLEAN NOT NULL DEFAULT false,
    PRIMARY KEY (kind, id, version)
);
