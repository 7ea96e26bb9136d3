package station

import (
	"context"
	"sort"
	"time"

	"keystation/store"
)

// EditionBuffer is the stock of one edition on the station.
type EditionBuffer struct {
	Name      string `json:"name"`
	Available int    `json:"available"` // keys left (leased + USB)
	Leased    int    `json:"leased"`
	USB       int    `json:"usb"`
	Assigned  int    `json:"assigned"` // held by PCs not activated yet
	Target    int    `json:"target"`
	LowWater  int    `json:"lowWater"`
	Low       bool   `json:"low"` // low stock: below the low-water mark
}

// Status is a snapshot for the status bar and `station status`.
type Status struct {
	// Online: the server answered the last round trip or probe; Checked is
	// false when this process has not talked to the server (then Online
	// is false and unknown).
	Online    bool   `json:"online"`
	Checked   bool   `json:"checked"`
	Syncing   bool   `json:"syncing"`
	Enrolled  bool   `json:"enrolled"`
	StationID int64  `json:"stationId,omitempty"`
	Station   string `json:"station,omitempty"`
	Server    string `json:"server,omitempty"`

	LastSync      *time.Time `json:"lastSync"`
	LastSyncAge   string     `json:"lastSyncAge,omitempty"` // "3m20s"
	LastSyncError string     `json:"lastSyncError,omitempty"`
	NextSync      *time.Time `json:"nextSync,omitempty"`
	ClockSkewMS   int64      `json:"clockSkewMs"`

	Outbox    int `json:"outbox"`    // reports waiting for the server
	Attention int `json:"attention"` // reports refused by the server, needing attention
	Conflicts int `json:"conflicts"` // reports the server flagged
	Delivered int `json:"delivered"`

	Buffer   map[string]EditionBuffer `json:"buffer"`
	LowStock []string                 `json:"lowStock"`

	Driver    string `json:"driver"`
	Simulated bool   `json:"simulated"`
	BurnCap   int    `json:"burnCap"`
	Batch     *Batch `json:"batch,omitempty"`
}

// Status returns a snapshot of the station: server reachability, last sync
// and its age, outbox, keys left per edition with low-stock flags, clock
// skew, and whether activation is simulated.
func (c *Core) Status(ctx context.Context) (Status, error) {
	st, err := c.Store.Status(ctx)
	if err != nil {
		return Status{}, err
	}
	now := c.now()
	s := Status{Enrolled: st.Enrolment.Enrolled(), StationID: st.Enrolment.StationID, Station: st.Enrolment.Name, Server: st.Enrolment.ServerURL,
		LastSyncError: st.LastSyncError, ClockSkewMS: st.ClockSkew.Milliseconds(),
		Outbox: st.Outbox, Attention: st.Attention, Conflicts: st.Conflicts, Delivered: st.Delivered,
		Buffer: map[string]EditionBuffer{}, LowStock: []string{}, BurnCap: c.Store.BurnCap(), Batch: c.Batch()}
	if c.Driver != nil {
		s.Driver, s.Simulated = c.Driver.Name(), c.Driver.Simulated()
	}
	if !st.LastSync.IsZero() {
		t := st.LastSync
		s.LastSync, s.LastSyncAge = &t, now.Sub(t).Truncate(time.Second).String()
	}
	if c.Sync != nil {
		q := c.Sync.State()
		s.Online, s.Checked, s.Syncing = q.Online, q.Checked, q.Syncing
		if q.LastError != "" && !q.Online {
			s.LastSyncError = q.LastError
		}
		if !q.NextAttempt.IsZero() {
			t := q.NextAttempt
			s.NextSync = &t
		}
	}
	names := map[string]string{}
	for _, e := range st.Editions {
		names[e.Slug] = e.Name
	}
	for ed, b := range st.Buffer {
		s.Buffer[ed] = EditionBuffer{Name: names[ed], Available: b.Available, Leased: b.Leased, USB: b.USB, Assigned: b.Assigned,
			Target: b.Target, LowWater: b.LowWater, Low: b.Low}
		if b.Low {
			s.LowStock = append(s.LowStock, ed)
		}
	}
	sort.Strings(s.LowStock)
	return s, nil
}

// History lists recent activations with their result and sync state
// (waiting to sync, synced, conflict, rejected), newest first.
func (c *Core) History(ctx context.Context, f store.HistoryFilter) ([]store.ActivationRecord, error) {
	return c.Store.History(ctx, f)
}
