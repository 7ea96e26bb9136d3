package keystation

import (
	"strings"
	"time"
	"unicode/utf8"
)

// Limits on fields that come from outside.
const (
	MaxSNLen        = 128
	MaxModelLen     = 128
	MaxOSVersionLen = 256
	MaxMessageLen   = 8192
	MaxUsernameLen  = 64
)

// Machine identifies a PC: serial number + model determine it uniquely.
type Machine struct {
	SN    string `json:"sn"`
	Model string `json:"model"`
}

// Validate checks sn and model and returns the offending fields.
func (m Machine) Validate(f map[string]string) {
	CheckText(f, "sn", m.SN, MaxSNLen, true)
	CheckText(f, "model", m.Model, MaxModelLen, true)
}

// ID is the machine id shown to supervisors (seed 001 machine_id).
func (m Machine) ID() string { return m.Model + "/" + m.SN }

// CheckText records in f what is wrong with the text field v, if anything.
func CheckText(f map[string]string, name, v string, max int, required bool) {
	switch {
	case required && strings.TrimSpace(v) == "":
		f[name] = "required"
	case len(v) > max:
		f[name] = "too long"
	case !utf8.ValidString(v):
		f[name] = "not valid UTF-8"
	case strings.ContainsAny(v, "\x00\r\n"):
		f[name] = "contains control characters"
	}
}

// Report is the result of one activation attempt: seed 000's report body plus
// what the sync protocol needs for exactly-once apply.
type Report struct {
	// ID is a UUID chosen by the station when it commits the report to its
	// outbox; the server applies each ID at most once. Online reports may
	// leave it empty.
	ID        string    `json:"id,omitempty"`
	KeyID     KeyID     `json:"keyId"`
	Machine   Machine   `json:"machine"`
	OSVersion string    `json:"osVersion"`
	Success   bool      `json:"resultStatus"`
	Message   string    `json:"resultMessage"`        // verbatim from the activation service
	Code      string    `json:"resultCode,omitempty"` // raw error code verbatim
	Hardware  *Hardware `json:"hardware,omitempty"`
	Operator  string    `json:"operator,omitempty"`
	Station   string    `json:"station,omitempty"`
	Simulated bool      `json:"simulated,omitempty"`
	At        time.Time `json:"at"`
}

// Grant is a key handed out: seed 000's {keyId, key}.
type Grant struct {
	KeyID   KeyID      `json:"keyId"`
	Key     ProductKey `json:"-"`
	Edition string     `json:"edition"`
}
