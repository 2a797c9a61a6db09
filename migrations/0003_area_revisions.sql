-- opale-apim store schema, version 3: one revision per area (the first
-- segment of a key: reg, oauth, tx, …), bumped by every `Store::transact`
-- commit that writes into the area, so that a transmission or a notice
-- claim no longer moves the registry's revision. The registry's count
-- carries over. `store_revision` stays for nodes of the previous version
-- during a rolling upgrade (docs/cluster.md "Upgrading").
CREATE TABLE area_revision (
    area     text   PRIMARY KEY,
    revision bigint NOT NULL
);
INSERT INTO area_revision (area, revision)
    SELECT 'reg', revision FROM store_revision WHERE id = 1;
