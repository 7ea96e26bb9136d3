package keystation

// KeyState is where a product key is in its lifecycle (DESIGN.md):
//
//	available → leased(station) → assigned(machine) → activated | failed
//	available → assigned            (online requests)
//	failed    → available           (supervisor, or a failure not the key's fault)
//	leased    → available           (station releases it, supervisor reclaims a lost lease)
//	assigned  → available           (supervisor returns an unused key)
//	any       → revoked             (supervisor)
type KeyState string

const (
	StateAvailable KeyState = "available"
	StateLeased    KeyState = "leased"
	StateAssigned  KeyState = "assigned"
	StateActivated KeyState = "activated"
	StateFailed    KeyState = "failed"
	StateRevoked   KeyState = "revoked"
)

// KeyStates lists every state, in lifecycle order.
var KeyStates = []KeyState{StateAvailable, StateLeased, StateAssigned, StateActivated, StateFailed, StateRevoked}

// Valid reports whether s is a known state.
func (s KeyState) Valid() bool {
	for _, k := range KeyStates {
		if k == s {
			return true
		}
	}
	return false
}

// Reason codes recorded with each transition in a key's history, named after
// Microsoft OEM Activation 3.0 key states where they fit.
const (
	ReasonFulfilled = "Fulfilled"       // imported into a pool (OA3: key delivered to the OEM)
	ReasonLeased    = "Leased"          // granted to a station's offline buffer
	ReasonConsumed  = "Consumed"        // assigned to a machine (OA3: injected into a device)
	ReasonBound     = "Bound"           // activated on the machine (OA3: bound, reported)
	ReasonDefective = "Defective"       // activation failed, the key's fault: burnt
	ReasonReview    = "DefectiveReview" // unknown failure code, treated as the key's fault, flagged
	ReasonPCFault   = "PCFault"         // activation failed, the PC's or network's fault
	ReasonReturned  = "Returned"        // back to the pool (not the key's fault, or a supervisor)
	ReasonReleased  = "Released"        // a station gave a leased key back
	ReasonReclaimed = "Reclaimed"       // a supervisor reclaimed a lost station's lease
	ReasonRevoked   = "Revoked"         // a supervisor revoked the key
	ReasonConflict  = "Conflict"        // a station used a key it should not have (flagged)
)

var transitions = map[KeyState][]KeyState{
	"":             {StateAvailable, StateAssigned, StateActivated, StateFailed}, // import; unknown keys reported by stations
	StateAvailable: {StateLeased, StateAssigned, StateRevoked},
	StateLeased:    {StateAssigned, StateAvailable, StateRevoked},
	StateAssigned:  {StateActivated, StateFailed, StateAvailable, StateRevoked},
	StateFailed:    {StateAvailable, StateRevoked},
	StateActivated: {StateRevoked},
	StateRevoked:   {},
}

// CheckTransition returns an EILLEGALSTATE error when a key may not go from
// one state to the other.
func CheckTransition(from, to KeyState) error {
	for _, s := range transitions[from] {
		if s == to {
			return nil
		}
	}
	f := string(from)
	if f == "" {
		f = "(new)"
	}
	return Errorf(EILLEGALSTATE, "a key cannot go from %s to %s", f, to)
}
