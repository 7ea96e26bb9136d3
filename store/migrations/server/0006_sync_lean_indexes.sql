-- Fewer index entries for every report a station syncs (a station back from
-- days offline sends tens of thousands in a row).
--
-- No query reads reports by key (a key's story is its history), and reports
-- and keys are never deleted: reports_key goes.
DROP INDEX reports_key;
-- Only the conflicts of a station are counted (reconciliation): the index
-- holds conflicts only, not every report.
DROP INDEX reports_station;
CREATE INDEX reports_station_conflict ON reports (station_id) WHERE outcome = 'conflict';
-- Every query of product_keys by station asks for its leased keys: keys the
-- station used (and keys it recorded from a USB key list) leave the index.
DROP INDEX product_keys_station;
CREATE INDEX product_keys_leased ON product_keys (station_id, edition_id) WHERE state = 'leased';
