package api_test

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestLogsNeverContainKey runs key requests with the store's and the API's
// loggers at debug level (JSON) and looks for the keys in the log.
func TestLogsNeverContainKey(t *testing.T) {
	var buf lockedBuffer
	log := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e := newKeyEnv(t, envOptions{logger: log})
	id, _ := e.acquire("SN1", osHome)
	e.acquire("SN1", osHome)
	e.acquire("SN2", osPro)
	a := e.post(pathReport, body(failureBase(id, "SN1"), nil))
	next, _ := a.grant(t)
	e.post(pathReport, body(successBase(next, "SN1"), nil))
	e.post(pathAcquire, body(acquireBase("SN3"), map[string]any{"osVersion": "Windows 11 Enterprise"}))
	e.post(pathAcquire, `{"sn": `)
	out := buf.String()
	if !strings.Contains(out, `"key assigned"`) || !strings.Contains(out, `"request"`) {
		t.Fatalf("the store and the API logged nothing at debug level:\n%s", out)
	}
	for _, k := range append(e.home, e.pro...) {
		for _, form := range []string{k.Plain(), strings.ReplaceAll(k.Plain(), "-", "")} {
			if strings.Contains(out, form) {
				t.Errorf("the log contains the key %s", k.Masked())
			}
		}
	}
}
