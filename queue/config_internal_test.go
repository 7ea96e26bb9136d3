package queue

import "testing"

// A long backlog goes in bounded requests unless told otherwise: never more
// than the server takes.
func TestConfigDefaultsBoundRequests(t *testing.T) {
	for _, tc := range []struct {
		in               Config
		reports, maxByte int
	}{
		{Config{}, DefaultSyncReports, DefaultSyncBytes},
		{Config{MaxReports: 7, MaxBytes: 1000}, 7, 1000},
		{Config{MaxReports: MaxSyncReports + 1}, MaxSyncReports, DefaultSyncBytes},
	} {
		c := tc.in
		c.defaults()
		if c.MaxReports != tc.reports || c.MaxBytes != tc.maxByte {
			t.Errorf("%+v: MaxReports %d MaxBytes %d, want %d and %d", tc.in, c.MaxReports, c.MaxBytes, tc.reports, tc.maxByte)
		}
	}
	if DefaultSyncReports > MaxSyncReports || DefaultSyncBytes > 16<<20 {
		t.Fatalf("DefaultSyncReports = %d, DefaultSyncBytes = %d: more than the server takes", DefaultSyncReports, DefaultSyncBytes)
	}
}
