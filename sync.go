package keystation

import (
	"regexp"
	"time"
)

// The sync protocol between a station and the server (DESIGN.md, "Sync
// protocol"): one idempotent round trip, repeated. The station sends its unsent
// reports (in order, batched), the unused keys it holds, the grants it has
// received, and the buffer levels it wants; the server applies the reports
// exactly once by report ID, grants keys up to the target levels, re-sends
// grants not yet acknowledged, lists the keys the station must drop, and
// returns its clock. A lost response costs nothing: the next round trip
// repeats it safely.

// MaxSyncReports is the most reports one sync request may carry.
const MaxSyncReports = 1000

// MaxBufferTarget is the largest buffer a station may ask for per edition.
const MaxBufferTarget = 1000

// EnrolRequest enrols a station with a token a supervisor created.
type EnrolRequest struct {
	Token    string `json:"token"`
	Name     string `json:"name"`
	Hostname string `json:"hostname,omitempty"`
}

// EnrolResponse carries the station's own credential: it is shown once and
// kept (sealed) in the station's database.
type EnrolResponse struct {
	StationID  int64     `json:"stationId"`
	Name       string    `json:"name"`
	Credential string    `json:"credential"` // "Authorization: Bearer <credential>" from now on
	ServerTime time.Time `json:"serverTime"`
	Editions   []Edition `json:"editions"`
}

// SyncReport is a report as a station queues it: the report, plus, for keys
// that did not come from the server (a key list on a USB stick), the key
// itself and where it came from so the server can record it.
type SyncReport struct {
	Report
	Edition string `json:"edition"`
	// Key and Provenance are set only for keys the server did not issue.
	Key        string      `json:"key,omitempty"`
	Provenance *Provenance `json:"provenance,omitempty"`
}

// Provenance says where a station got a key it did not lease from the server.
type Provenance struct {
	File   string `json:"file"`   // file name of the key list
	SHA256 string `json:"sha256"` // of the key list
	Line   int    `json:"line,omitempty"`
}

// SyncRequest is one round trip from a station.
type SyncRequest struct {
	StationTime time.Time    `json:"stationTime"`
	Reports     []SyncReport `json:"reports"`
	// Holding lists the keyIds of the unused keys the station holds from the
	// server (its leased buffer); the server answers with those no longer
	// the station's in Revoked.
	Holding []KeyID `json:"holding"`
	// Acks lists keyIds of grants the station has committed.
	Acks []KeyID `json:"acks"`
	// Release lists keyIds of unused leased keys the station gives back.
	Release []KeyID `json:"release,omitempty"`
	// Targets is the buffer level wanted per edition slug.
	Targets map[string]int `json:"targets"`
	// Backlog is how many reports wait in the outbox beyond this batch.
	Backlog int `json:"backlog"`
}

// Report outcomes on the server, per report ID.
const (
	SyncApplied   = "applied"   // took effect now
	SyncDuplicate = "duplicate" // had taken effect before: nothing more happened
	SyncConflict  = "conflict"  // kept and flagged for a supervisor, not applied (invariant 6)
	SyncRejected  = "rejected"  // malformed: kept in the station's outbox with the reason
)

// SyncResult is the server's answer for one report.
type SyncResult struct {
	ID      string `json:"id"`
	Status  string `json:"status"`
	Code    string `json:"code,omitempty"`
	Message string `json:"message,omitempty"`
}

// SyncGrant is a key leased to the station.
type SyncGrant struct {
	KeyID   KeyID  `json:"keyId"`
	Key     string `json:"key"`
	Edition string `json:"edition"`
}

// SyncResponse is the server's answer to one round trip.
type SyncResponse struct {
	ServerTime time.Time    `json:"serverTime"`
	Results    []SyncResult `json:"results"`
	Grants     []SyncGrant  `json:"grants"`
	Revoked    []KeyID      `json:"revoked"`
	Editions   []Edition    `json:"editions"`
	// Levels is what the server counts as leased and unused per edition
	// after this round trip.
	Levels map[string]int `json:"levels"`
}

// Reconciliation counts a station's keys on the server.
type Reconciliation struct {
	StationID   int64 `json:"stationId"`
	Leased      int   `json:"leased"`      // leased and unused now
	Used        int   `json:"used"`        // consumed by reports from this station
	Activated   int   `json:"activated"`   // activated by this station
	Failed      int   `json:"failed"`      // burnt by this station
	Returned    int   `json:"returned"`    // released by the station or reclaimed by a supervisor
	Conflicting int   `json:"conflicting"` // reports kept and flagged as conflicts
}

var uuidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// Validate checks a report a station sends, naming the fields that are wrong.
func (r SyncReport) Validate() error {
	f := map[string]string{}
	if !uuidRE.MatchString(r.ID) {
		f["id"] = "must be a UUID"
	}
	if !r.KeyID.Valid() {
		f["keyId"] = "must be the 13-digit keyId"
	}
	r.Machine.Validate(f)
	CheckText(f, "osVersion", r.OSVersion, MaxOSVersionLen, r.Edition == "")
	if r.Edition != "" && !slugRE.MatchString(r.Edition) {
		f["edition"] = "not an edition slug"
	}
	if len(r.Message) > MaxMessageLen {
		f["resultMessage"] = "too long"
	}
	if len(r.Code) > 64 {
		f["resultCode"] = "too long"
	}
	if len(r.Operator) > MaxUsernameLen {
		f["operator"] = "too long"
	}
	if r.Key != "" {
		if _, err := ParseProductKey(r.Key); err != nil {
			f["key"] = ErrorMessage(err)
		}
		if r.Provenance == nil {
			f["provenance"] = "required with a key the server did not issue"
		}
	} else if r.Provenance != nil {
		f["key"] = "required with a provenance"
	}
	if r.Provenance != nil && (len(r.Provenance.File) > 256 || len(r.Provenance.SHA256) > 64) {
		f["provenance"] = "too long"
	}
	if r.Success && r.Hardware == nil {
		f["hardware"] = "required for a success report"
	}
	if r.Hardware != nil && (len(r.Hardware.Memory) > 64 || len(r.Hardware.Disks) > 64 || len(r.Hardware.MACs) > 64) {
		f["hardware"] = "too many entries"
	}
	if r.At.IsZero() {
		f["at"] = "required"
	}
	if len(f) > 0 {
		return FieldError(f)
	}
	return nil
}
