-- Fewer index entries to write on the allocation path. Online allocations
-- have no station, so the station indexes only hold rows that have one; the
-- machine listing uses the partial binding indexes of 0003, so the first
-- machine time indexes go.
DROP INDEX machines_last_seen;
DROP INDEX machines_first_seen;
DROP INDEX product_keys_station;
DROP INDEX product_keys_station_edition;
CREATE INDEX product_keys_station ON product_keys (station_id, state, edition_id) WHERE station_id IS NOT NULL;
DROP INDEX key_history_station;
CREATE INDEX key_history_station ON key_history (station_id, reason) WHERE station_id IS NOT NULL;
DROP INDEX reports_station;
CREATE INDEX reports_station ON reports (station_id, outcome) WHERE station_id IS NOT NULL;
DROP INDEX reports_station_received;
CREATE INDEX reports_station_received ON reports (station_id, received_at) WHERE station_id IS NOT NULL;
