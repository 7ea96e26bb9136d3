-- A machine's fingerprint now begins with its serial number's keyed hash
-- (OpenServer rewrites the fingerprints of existing machines, see
-- fingerprint.go), so the fingerprint's unique index also finds machines by
-- serial number, and the second random index every new machine paid for
-- goes. The sn_hash column stays (new machines get the prefix), unindexed.
DROP INDEX machines_sn_hash;
