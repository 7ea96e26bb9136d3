package store_test

import (
	"fmt"
	"testing"

	"github.com/google/uuid"

	"keystation/store"
)

// The station's report IDs are UUIDs that grow in the order the reports
// were recorded (version 7), so the outbox and the server's reports index
// take them at the end.
func TestReportIDsGrow(t *testing.T) {
	f := newStationFix(t, 3)
	f.grant("pro", 2_000_000_000_001, 50, 3)
	prev := ""
	for i := range 50 {
		sn := fmt.Sprintf("SN-%03d", i)
		id := f.record(f.mustAssign(sn, "pro"), sn, store.AttemptActivated, "", "Licensed")
		u, err := uuid.Parse(id)
		if err != nil || u.Version() != 7 {
			t.Fatalf("report %d: ID %q (%v), want a version 7 UUID", i, id, err)
		}
		if id <= prev {
			t.Fatalf("report %d: ID %s does not come after %s", i, id, prev)
		}
		prev = id
	}
}
