package api

import (
	"context"
	"net/http"
	"time"
)

// HealthStore is what GET /healthz needs.
type HealthStore interface {
	Ping(ctx context.Context) error
}

// handleHealth answers GET /healthz: 200 when the database answers.
func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) {
	if err := s.Store.Ping(r.Context()); err != nil {
		s.Logger.Error("health check: database", "err", err)
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "time": s.Now().UTC().Format(time.RFC3339)})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok", "time": s.Now().UTC().Format(time.RFC3339)})
}
