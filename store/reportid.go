package store

import "github.com/google/uuid"

// newReportID returns a new report UUID. Version 7: it begins with the time,
// so the IDs a station or server makes grow, and the reports' unique index
// on them takes each new one at its end, as a log does, rather than at a
// random place (a random page rewritten per report, on the station when it
// records and on the server when a backlog is synced). Still a UUID like
// any other for whoever reads it.
func newReportID() string {
	id, err := uuid.NewV7()
	if err != nil {
		return uuid.NewString()
	}
	return id.String()
}
