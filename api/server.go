// Package api is the sync server's HTTP interface: the station key API of
// seed 000, health, and (as later work adds them) the sync protocol, the
// supervisors' admin API and the licensing APIs. It uses the standard
// ServeMux with method patterns, one *_handlers.go file per resource, shared
// JSON helpers and one map from error code to HTTP status; internal error text
// never reaches a client.
package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"math"
	"net"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"keystation"
	"keystation/auth"
)

// Store is what the API needs of the server's store; each resource declares
// its part next to its handlers.
type Store interface {
	auth.UserSource
	HealthStore
	KeyStore
	SyncStore
	AdminStore
}

// Server is the HTTP handler of the sync server.
type Server struct {
	Store  Store
	Auth   *auth.Authenticator
	Logger *slog.Logger
	Now    func() time.Time

	mux     *http.ServeMux
	methods map[string][]string // path → methods, for 405 answers

	adm adminState // the supervisors' admin API (admin_handlers.go)
}

// NewServer wires the routes.
func NewServer(st Store, a *auth.Authenticator, log *slog.Logger) *Server {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{Store: st, Auth: a, Logger: log, Now: time.Now, mux: http.NewServeMux(), methods: map[string][]string{}}
	s.routes()
	return s
}

func (s *Server) routes() {
	s.handle("GET", "/healthz", s.handleHealth)
	s.keyRoutes()
	s.syncRoutes()
	s.adminRoutes()
	s.licensingRoutes()
	for path, methods := range s.methods {
		allow := strings.Join(methods, ", ")
		s.mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Allow", allow)
			writeJSON(w, http.StatusMethodNotAllowed, envelope{Code: "METHOD_NOT_ALLOWED", Message: "use " + allow + " for " + r.URL.Path})
		})
	}
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.error(w, r, keystation.Errorf(keystation.ENOTFOUND, "no such endpoint: %s", r.URL.Path))
	})
}

// handle registers h for method and path; the path's other methods get a
// JSON 405. path is a ServeMux pattern without the method ("/x/{id}/{$}").
func (s *Server) handle(method, path string, h http.HandlerFunc) {
	s.mux.HandleFunc(method+" "+path, h)
	s.methods[path] = append(s.methods[path], method)
}

type ctxKey int

const requestIDKey ctxKey = 1

// ServeHTTP logs each request and turns panics into 500 answers.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	id := r.Header.Get("X-Request-ID")
	if id == "" || len(id) > 64 {
		var b [8]byte
		rand.Read(b[:])
		id = hex.EncodeToString(b[:])
	}
	w.Header().Set("X-Request-ID", id)
	rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
	r = r.WithContext(context.WithValue(r.Context(), requestIDKey, id))
	defer func() {
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler {
				panic(p)
			}
			s.Logger.Error("panic in handler", "request", id, "panic", p, "stack", string(debug.Stack()))
			if !rec.wrote {
				writeJSON(rec, http.StatusInternalServerError, envelope{Code: keystation.EINTERNAL, Message: "internal error"})
			}
		}
		lvl := slog.LevelDebug
		if rec.status >= 500 {
			lvl = slog.LevelError
		} else if rec.status >= 400 {
			lvl = slog.LevelInfo
		}
		s.Logger.Log(r.Context(), lvl, "request", "request", id, "method", r.Method, "path", r.URL.Path,
			"status", rec.status, "duration", time.Since(start), "remote", clientIP(r))
	}()
	s.mux.ServeHTTP(rec, r)
}

type statusRecorder struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (r *statusRecorder) WriteHeader(code int) {
	if !r.wrote {
		r.status, r.wrote = code, true
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	r.wrote = true
	return r.ResponseWriter.Write(b)
}

// error answers with err's code, status and user-safe message; internal
// errors are logged with the request ID and answered as "internal error".
func (s *Server) error(w http.ResponseWriter, r *http.Request, err error) {
	s.errorWith(w, r, err, nil)
}

func (s *Server) errorWith(w http.ResponseWriter, r *http.Request, err error, failure *keystation.Failure) {
	code := keystation.ErrorCode(err)
	if code == keystation.EINTERNAL {
		id, _ := r.Context().Value(requestIDKey).(string)
		s.Logger.Error("internal error", "request", id, "path", r.URL.Path, "err", err)
	}
	if wait := keystation.ErrorRetryAfter(err); wait > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
	}
	writeJSON(w, StatusOf(code), envelope{Code: code, Message: keystation.ErrorMessage(err),
		Fields: keystation.ErrorFields(err), Failure: failure})
}

func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
