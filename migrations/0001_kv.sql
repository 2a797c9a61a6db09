-- opale-apim store schema, version 1 (applied by the binary at start,
-- in one transaction, under an advisory lock; see src/store/postgres/schema.rs).
-- Every record of the `Store` trait is one row: keys and values are the
-- same bytes sled holds (JSON records; client secrets as SHA-256 digests).
CREATE TABLE kv (
    key   bytea PRIMARY KEY,
    value bytea NOT NULL
);
-- The revision: bumped by every registry transaction (`Store::transact`),
-- read by a node to know whether its snapshot is current.
CREATE TABLE store_revision (
    id       integer PRIMARY KEY CHECK (id = 1),
    revision bigint  NOT NULL
);
INSERT INTO store_revision (id, revision) VALUES (1, 0);
