package api

import (
	_ "embed"
	"net/http"
)

// openAPIDoc is the OpenAPI 3 description of every endpoint of the sync
// server's HTTP API; a test checks real answers against it.
//
//go:embed openapi.json
var openAPIDoc []byte

// OpenAPI returns the OpenAPI 3 document (JSON).
func OpenAPI() []byte { return openAPIDoc }

func (s *Server) openAPIRoutes() {
	s.handle("GET", "/api/v1/openapi.json", s.handleOpenAPI)
}

func (s *Server) handleOpenAPI(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "public, max-age=300")
	w.WriteHeader(http.StatusOK)
	w.Write(openAPIDoc)
}
