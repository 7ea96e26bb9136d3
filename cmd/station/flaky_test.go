package main_test

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"keystation/queue"
	"keystation/station"
)

// flakyProxy is a loopback TCP proxy that, while flaky, refuses some
// connections, delays others, loses the server's answer after the server
// got the whole request (the report is applied, the station does not know),
// or cuts the answer short.
type flakyProxy struct {
	ln     net.Listener
	target string
	flaky  atomic.Bool
	mu     sync.Mutex
	rnd    *rand.Rand
	stats  map[string]int
	conns  map[net.Conn]bool
	wg     sync.WaitGroup
}

func newFlakyProxy(t *testing.T, target string, seed uint64) *flakyProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &flakyProxy{ln: ln, target: target, rnd: rand.New(rand.NewPCG(seed, 2)), stats: map[string]int{}, conns: map[net.Conn]bool{}}
	go p.serve()
	t.Cleanup(func() {
		ln.Close()
		p.mu.Lock()
		for c := range p.conns {
			c.Close()
		}
		p.mu.Unlock()
		p.wg.Wait()
	})
	return p
}

func (p *flakyProxy) url() string { return "http://" + p.ln.Addr().String() }

func (p *flakyProxy) pick() (mode string, delay time.Duration, cut int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.flaky.Load() {
		p.stats["clean"]++
		return "pass", 0, 0
	}
	delay = time.Duration(p.rnd.IntN(60)) * time.Millisecond
	switch r := p.rnd.IntN(100); {
	case r < 20:
		mode = "refuse"
	case r < 40:
		mode = "lose-answer"
	case r < 50:
		mode, cut = "cut-answer", int64(1+p.rnd.IntN(200))
	default:
		mode = "pass"
	}
	p.stats[mode]++
	return mode, delay, cut
}

func (p *flakyProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.handle(c)
		}()
	}
}

func (p *flakyProxy) handle(c net.Conn) {
	p.mu.Lock()
	p.conns[c] = true
	p.mu.Unlock()
	defer func() {
		c.Close()
		p.mu.Lock()
		delete(p.conns, c)
		p.mu.Unlock()
	}()
	mode, delay, cut := p.pick()
	time.Sleep(delay)
	if mode == "refuse" {
		return
	}
	up, err := net.Dial("tcp", p.target)
	if err != nil {
		return
	}
	defer up.Close()
	go func() {
		io.Copy(up, c)
		up.(*net.TCPConn).CloseWrite()
	}()
	switch mode {
	case "lose-answer":
		// Wait for the server to answer (it has applied the request),
		// then drop the answer and the connection.
		buf := make([]byte, 1)
		up.Read(buf)
	case "cut-answer":
		io.CopyN(c, up, cut)
	default:
		io.Copy(c, up)
	}
}

// TestFlakyNetworkConverges: with a network that drops and delays
// connections and loses answers, sync still converges: every report applied
// exactly once, counts equal on both sides.
func TestFlakyNetworkConverges(t *testing.T) {
	srv := startServer(t, map[string]int{"pro": 400, "home": 200})
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	proxy := newFlakyProxy(t, srv.addr, seed)
	ctx := context.Background()
	// One connection per request, so that each round trip meets the
	// network's mood afresh.
	a := openApp(t, t.TempDir(), queue.Config{HTTPTimeout: 2 * time.Second, MaxReports: 5,
		Transport: &http.Transport{DisableKeepAlives: true}})
	if _, err := a.a.Client.Enrol(ctx, proxy.url(), srv.enrolToken(1), "flaky line"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.a.Client.SyncOnce(ctx); err != nil {
		t.Fatal(err)
	}
	proxy.flaky.Store(true)
	failures := 0
	for i := range 40 {
		os := "Windows 11 Pro"
		if i%3 == 0 {
			os = "Windows 11 Home"
		}
		script := "success"
		if i%5 == 1 {
			script = "key-fault,success"
		}
		if res := a.activate(t, fmt.Sprintf("FLAKY-%03d", i), os, script); res.Outcome != station.OutcomeActivated {
			t.Fatalf("activation %d: %+v", i, res)
		}
		if _, err := a.a.Client.SyncOnce(ctx); err != nil {
			failures++
		}
	}
	// Still flaky: keep syncing (as Run would, without the waits) until a
	// sync completes.
	converged := false
	for range 200 {
		if _, err := a.a.Client.SyncOnce(ctx); err == nil {
			converged = true
			break
		}
		failures++
	}
	if !converged {
		t.Fatalf("sync did not converge over the flaky network (%v)", proxy.stats)
	}
	proxy.flaky.Store(false)
	if _, err := a.a.Client.SyncOnce(ctx); err != nil {
		t.Fatal(err)
	}
	counts := countStation(t, a)
	rec := reconcile(t, a, counts)
	serverChecks(t, srv.db(), rec.StationID, counts.reports)
	proxy.mu.Lock()
	t.Logf("%d failed syncs; connections %v; reconciliation %+v", failures, proxy.stats, rec)
	proxy.mu.Unlock()
	if failures == 0 {
		t.Error("the network was never flaky")
	}
}
