package keystation_test

import (
	"strings"
	"testing"

	"keystation"
)

func TestCheckTransitionLegal(t *testing.T) {
	legal := []struct {
		from, to keystation.KeyState
	}{
		{"", keystation.StateAvailable}, // import
		{"", keystation.StateAssigned},  // unknown key reported by a station
		{"", keystation.StateActivated},
		{"", keystation.StateFailed},
		{keystation.StateAvailable, keystation.StateLeased},
		{keystation.StateAvailable, keystation.StateAssigned},
		{keystation.StateAvailable, keystation.StateRevoked},
		{keystation.StateLeased, keystation.StateAssigned},
		{keystation.StateLeased, keystation.StateAvailable},
		{keystation.StateLeased, keystation.StateRevoked},
		{keystation.StateAssigned, keystation.StateActivated},
		{keystation.StateAssigned, keystation.StateFailed},
		{keystation.StateAssigned, keystation.StateAvailable},
		{keystation.StateAssigned, keystation.StateRevoked},
		{keystation.StateFailed, keystation.StateAvailable},
		{keystation.StateFailed, keystation.StateRevoked},
		{keystation.StateActivated, keystation.StateRevoked},
	}
	for _, tc := range legal {
		t.Run(string(tc.from)+"→"+string(tc.to), func(t *testing.T) {
			if err := keystation.CheckTransition(tc.from, tc.to); err != nil {
				t.Fatalf("CheckTransition(%q, %q): %v", tc.from, tc.to, err)
			}
		})
	}
}

func TestCheckTransitionIllegal(t *testing.T) {
	illegal := []struct {
		from, to keystation.KeyState
	}{
		{"", keystation.StateLeased},
		{"", keystation.StateRevoked},
		{keystation.StateAvailable, keystation.StateAvailable},
		{keystation.StateAvailable, keystation.StateActivated},
		{keystation.StateAvailable, keystation.StateFailed},
		{keystation.StateLeased, keystation.StateLeased},
		{keystation.StateLeased, keystation.StateActivated},
		{keystation.StateLeased, keystation.StateFailed},
		{keystation.StateAssigned, keystation.StateAssigned},
		{keystation.StateAssigned, keystation.StateLeased},
		{keystation.StateActivated, keystation.StateAvailable},
		{keystation.StateActivated, keystation.StateAssigned},
		{keystation.StateActivated, keystation.StateFailed},
		{keystation.StateActivated, keystation.StateLeased},
		{keystation.StateActivated, keystation.StateActivated},
		{keystation.StateFailed, keystation.StateAssigned},
		{keystation.StateFailed, keystation.StateActivated},
		{keystation.StateFailed, keystation.StateLeased},
		{keystation.StateFailed, keystation.StateFailed},
		{keystation.StateRevoked, keystation.StateAvailable},
		{keystation.StateRevoked, keystation.StateAssigned},
		{keystation.StateRevoked, keystation.StateRevoked},
		{keystation.StateAvailable, "bogus"},
		{"bogus", keystation.StateAvailable},
	}
	for _, tc := range illegal {
		t.Run(string(tc.from)+"→"+string(tc.to), func(t *testing.T) {
			err := keystation.CheckTransition(tc.from, tc.to)
			if err == nil {
				t.Fatalf("CheckTransition(%q, %q) allowed", tc.from, tc.to)
			}
			if c := keystation.ErrorCode(err); c != keystation.EILLEGALSTATE {
				t.Fatalf("code = %s, want %s", c, keystation.EILLEGALSTATE)
			}
			from := string(tc.from)
			if from == "" {
				from = "(new)"
			}
			if msg := err.Error(); !strings.Contains(msg, from) || !strings.Contains(msg, string(tc.to)) {
				t.Errorf("error %q does not name both states", msg)
			}
		})
	}
}

// TestCheckTransitionExhaustive checks every pair of states against the
// lifecycle of DESIGN.md: anything not listed there is refused.
func TestCheckTransitionExhaustive(t *testing.T) {
	allowed := map[[2]keystation.KeyState]bool{}
	for _, p := range [][2]keystation.KeyState{
		{"", "available"}, {"", "assigned"}, {"", "activated"}, {"", "failed"},
		{"available", "leased"}, {"available", "assigned"}, {"available", "revoked"},
		{"leased", "assigned"}, {"leased", "available"}, {"leased", "revoked"},
		{"assigned", "activated"}, {"assigned", "failed"}, {"assigned", "available"}, {"assigned", "revoked"},
		{"failed", "available"}, {"failed", "revoked"},
		{"activated", "revoked"},
	} {
		allowed[p] = true
	}
	from := append([]keystation.KeyState{""}, keystation.KeyStates...)
	for _, f := range from {
		for _, to := range keystation.KeyStates {
			err := keystation.CheckTransition(f, to)
			if want := allowed[[2]keystation.KeyState{f, to}]; (err == nil) != want {
				t.Errorf("CheckTransition(%q, %q) = %v, want allowed=%v", f, to, err, want)
			}
		}
	}
}

func TestKeyStateValid(t *testing.T) {
	for _, s := range keystation.KeyStates {
		if !s.Valid() {
			t.Errorf("%q not valid", s)
		}
	}
	for _, s := range []keystation.KeyState{"", "Available", "burnt"} {
		if s.Valid() {
			t.Errorf("%q valid", s)
		}
	}
}
