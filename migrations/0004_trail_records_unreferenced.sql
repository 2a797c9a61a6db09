-- opale-apim store schema, version 4: trail_records loses its foreign key
-- to trail_nodes. The key was checked once per inserted record (a trigger
-- locking the node's trail_nodes row each time) and cost PostgreSQL about
-- as much CPU as the rest of the record's insert (measured with pgbench:
-- 7-record batches, 355 -> 215 us per transaction; docs/benchmarks.md).
-- The shipping statement checks once per batch that the node is
-- registered (src/audit/cluster/sql.rs), and only a node's own shipper
-- writes its rows.
ALTER TABLE trail_records DROP CONSTRAINT IF EXISTS trail_records_node_fkey;
