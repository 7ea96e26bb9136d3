package keylist

import (
	"encoding/csv"
	"io"
	"time"

	"keystation"
)

// ResultsHeader is the header row WriteResults writes.
var ResultsHeader = []string{"keyId", "key", "sn", "model", "status", "message", "time"}

// Result is the outcome of one key in batch mode.
type Result struct {
	KeyID   keystation.KeyID // 0 when unknown
	Key     keystation.ProductKey
	SN      string // serial number of the PC
	Model   string
	Status  string
	Message string
	Time    time.Time
}

// WriteResults writes rows as CSV under ResultsHeader. The key is written
// masked (keystation.MaskKey), the time as RFC 3339; a zero keyId or time is
// written as an empty field.
func WriteResults(w io.Writer, rows []Result) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(ResultsHeader); err != nil {
		return err
	}
	for _, r := range rows {
		id, at := "", ""
		if r.KeyID != 0 {
			id = r.KeyID.String()
		}
		if !r.Time.IsZero() {
			at = r.Time.Format(time.RFC3339)
		}
		rec := []string{id, keystation.MaskKey(r.Key.Plain()), r.SN, r.Model, r.Status, r.Message, at}
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}
