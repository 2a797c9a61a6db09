-- opale-apim store schema, version 2: the audit trail of a cluster
-- (docs/contract.md §7 and §10). Each node keeps its own hash chain in its local
-- segments (data_dir/trail) and ships every record, in order, here; the
-- rows of one node are that chain (same seq, time, body and chain value),
-- so any node can list, verify and export every node's records.

-- The nodes that ever wrote a chain, with the Ed25519 public key that
-- signs their checkpoints (key name and origin `opale-apim/trail/<node>`).
CREATE TABLE trail_nodes (
    node       text PRIMARY KEY,
    public_key bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
-- One row per record. `id` orders the listing of all nodes (newest first)
-- and pages it; (node, seq) is the chain. `hash` is the chain value after
-- the record: SHA-256(previous hash || seq LE || time_ms LE || body).
CREATE TABLE trail_records (
    id      bigserial PRIMARY KEY,
    node    text   NOT NULL REFERENCES trail_nodes (node),
    seq     bigint NOT NULL,
    time_ms bigint NOT NULL,
    body    bytea  NOT NULL,
    hash    bytea  NOT NULL,
    UNIQUE (node, seq)
);
-- The latest signed checkpoint of each node's chain (signed-note text),
-- written in the transaction that inserts the records it covers.
CREATE TABLE trail_checkpoints (
    node  text PRIMARY KEY REFERENCES trail_nodes (node),
    count bigint NOT NULL,
    note  text   NOT NULL
);
-- The purge checkpoint of each node's chain: verification starts there.
CREATE TABLE trail_purges (
    node  text PRIMARY KEY REFERENCES trail_nodes (node),
    count bigint NOT NULL,
    note  text   NOT NULL
);
