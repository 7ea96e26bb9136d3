package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"keystation/internal/testutil"
)

// result is one concurrency level's figures.
type result struct {
	clients   int
	wall      time.Duration
	ok        int
	errs      map[string]int  // answer code (or "no-answer") → count
	lat       []time.Duration // of successful requests, sorted
	serverCPU time.Duration
	clientCPU time.Duration
	otherCPU  time.Duration // every other process on the machine
}

func (r result) errors() int {
	n := 0
	for _, v := range r.errs {
		n += v
	}
	return n
}

func (r result) pct(p float64) time.Duration {
	if len(r.lat) == 0 {
		return 0
	}
	i := int(float64(len(r.lat)-1) * p)
	return r.lat[i]
}

// askFunc sends request i of worker w through c and returns whether it
// succeeded, or the name of its error. Each worker has a keep-alive
// connection of its own (testutil.Conn: plain HTTP/1.1 without net/http's
// client machinery, so that the load generator takes less of the CPU it
// shares with the server).
type askFunc func(ctx context.Context, c *testutil.Conn, w, i int) (ok bool, errName string)

// measure runs clients workers, each sending requests one after the other
// for d, and returns the figures.
func (b *bench) measure(ctx context.Context, clients int, d time.Duration, ask askFunc) result {
	return b.measureAt(ctx, b.proc.Addr, clients, d, ask)
}

// measureAt is measure against the server at addr.
func (b *bench) measureAt(ctx context.Context, addr string, clients int, d time.Duration, ask askFunc) result {
	c := testutil.NewClient(addr, b.op.Username, b.op.Password, clients)
	defer c.CloseIdle()
	type workerResult struct {
		ok   int
		errs map[string]int
		lat  []time.Duration
	}
	wr := make([]workerResult, clients)
	cpu0, _ := b.proc.CPUTime()
	ucpu0 := selfCPU()
	all0 := machineCPU()
	start := time.Now()
	deadline := start.Add(d)
	var wg sync.WaitGroup
	for w := range clients {
		wg.Go(func() {
			c := c.Dial()
			defer c.Close()
			r := workerResult{errs: map[string]int{}, lat: make([]time.Duration, 0, 4096)}
			for i := 0; ctx.Err() == nil; i++ {
				t0 := time.Now()
				if !t0.Before(deadline) {
					break
				}
				ok, name := ask(ctx, c, w, i)
				if ok {
					r.ok++
					r.lat = append(r.lat, time.Since(t0))
				} else {
					r.errs[name]++
				}
			}
			wr[w] = r
		})
	}
	wg.Wait()
	res := result{clients: clients, wall: time.Since(start), errs: map[string]int{}}
	cpu1, _ := b.proc.CPUTime()
	res.serverCPU, res.clientCPU = cpu1-cpu0, selfCPU()-ucpu0
	if all0 > 0 {
		res.otherCPU = max(0, machineCPU()-all0-res.serverCPU-res.clientCPU)
	}
	for _, r := range wr {
		res.ok += r.ok
		res.lat = append(res.lat, r.lat...)
		for k, v := range r.errs {
			res.errs[k] += v
		}
	}
	slices.Sort(res.lat)
	return res
}

// machineCPU is the CPU time every process has used since boot (0 when
// /proc/stat cannot be read).
func machineCPU() time.Duration {
	raw, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(raw), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0
	}
	var ticks int64
	for i, v := range f[1:9] {
		if i == 3 || i == 4 { // idle, iowait
			continue
		}
		n, _ := strconv.ParseInt(v, 10, 64)
		ticks += n
	}
	return time.Duration(ticks) * time.Second / 100 // USER_HZ
}

// table prints results as a table.
func (b *bench) table(rs []result) {
	tw := tabwriter.NewWriter(b.out, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "clients\trequests ok\tper second\tp50\tp90\tp99\tmax\terrors\tserver CPU\tkbench CPU\tother CPU\t")
	noisy := false
	for _, r := range rs {
		pc := func(d time.Duration) float64 { return 100 * d.Seconds() / r.wall.Seconds() }
		fmt.Fprintf(tw, "%d\t%d\t%.0f\t%s\t%s\t%s\t%s\t%d\t%.0f%%\t%.0f%%\t%.0f%%\t\n", r.clients, r.ok, float64(r.ok)/r.wall.Seconds(),
			ms(r.pct(0.50)), ms(r.pct(0.90)), ms(r.pct(0.99)), ms(r.pct(1)), r.errors(),
			pc(r.serverCPU), pc(r.clientCPU), pc(r.otherCPU))
		noisy = noisy || pc(r.otherCPU) > 20
	}
	tw.Flush()
	for _, r := range rs {
		if len(r.errs) == 0 {
			continue
		}
		names := make([]string, 0, len(r.errs))
		for k, v := range r.errs {
			names = append(names, fmt.Sprintf("%s %d", k, v))
		}
		sort.Strings(names)
		fmt.Fprintf(b.out, "  errors at %d clients: %s\n", r.clients, strings.Join(names, ", "))
	}
	fmt.Fprintf(b.out, "  (CPU: percent of one core, %d%% is the whole machine; other CPU is every other process)\n", 100*runtime.NumCPU())
	if noisy {
		fmt.Fprintln(b.out, "  NOTE: other processes used the CPUs during this section: its figures are low and noisy")
	}
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond)) }

func errName(a testutil.Answer, err error) string {
	if err != nil {
		return "no-answer"
	}
	if a.Code == "" {
		return "HTTP-" + strconv.Itoa(a.Status)
	}
	return a.Code
}

// runAcquire measures allocations: every request is for a machine never seen,
// so the server assigns a key and commits it durably before answering.
func runAcquire(ctx context.Context, b *bench) error {
	var rs []result
	for li, n := range b.cfg.clients {
		type got struct {
			id int64
			sn string
		}
		keys := make([][]got, n)
		r := b.measure(ctx, n, b.cfg.duration, func(ctx context.Context, c *testutil.Conn, w, i int) (bool, string) {
			sn := "KB-A" + strconv.Itoa(li) + "-" + strconv.Itoa(w) + "-" + strconv.Itoa(i)
			a, err := c.Acquire(ctx, testutil.Machine{SN: sn, Model: benchModel, OSVersion: benchOS})
			if err != nil || !a.OK() {
				return false, errName(a, err)
			}
			keys[w] = append(keys[w], got{a.KeyID, sn})
			return true, ""
		})
		before := len(b.keyIDs)
		for _, ks := range keys {
			for _, k := range ks {
				b.noteKey(k.id, k.sn)
			}
		}
		if fresh := len(b.keyIDs) - before; fresh != r.ok {
			fmt.Fprintf(b.out, "  %d clients: %d successful requests but %d distinct new keyIds\n", n, r.ok, fresh)
		}
		rs = append(rs, r)
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	b.table(rs)
	fmt.Fprintln(b.out, "  target: ≥10,000 allocations/s at 64 clients, p99 < 20 ms")
	if err := b.httpFloor(ctx); err != nil {
		return err
	}
	if b.doubles == 0 {
		fmt.Fprintf(b.out, "  no double allocation: %d successful allocations, %d distinct keyIds (warm-up included)\n", b.allocs, len(b.keyIDs))
	}
	for _, r := range rs {
		if r.errs["POOL_EMPTY"] > 0 {
			fmt.Fprintf(b.out, "  the pool ran out: run with a larger -keys (now %d)\n", b.cfg.keys)
			break
		}
	}
	return nil
}

// runReacquire measures machines asking again for the key they hold: no key
// leaves the pool, but the server still authenticates, looks the machine up
// and records that it was seen.
func runReacquire(ctx context.Context, b *bench) error {
	maxc := slices.Max(b.cfg.clients)
	machines := make([]testutil.Machine, maxc*16)
	want := make([]int64, len(machines))
	for i := range machines {
		machines[i] = testutil.Machine{SN: "KB-R-" + strconv.Itoa(i), Model: benchModel, OSVersion: benchOS}
	}
	// Give each machine its key first.
	c := testutil.NewClient(b.proc.Addr, b.op.Username, b.op.Password, maxc)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failed error
	for w := range maxc {
		wg.Go(func() {
			for i := w; i < len(machines); i += maxc {
				a, err := c.Acquire(ctx, machines[i])
				if err != nil || !a.OK() {
					mu.Lock()
					failed = fmt.Errorf("machine %s: %s %v", machines[i].SN, a, err)
					mu.Unlock()
					return
				}
				want[i] = a.KeyID
			}
		})
	}
	wg.Wait()
	c.CloseIdle()
	if failed != nil {
		return failed
	}
	for i, id := range want {
		b.noteKey(id, machines[i].SN)
	}
	var rs []result
	for _, n := range b.cfg.clients {
		r := b.measure(ctx, n, b.cfg.duration, func(ctx context.Context, c *testutil.Conn, w, i int) (bool, string) {
			k := (w + i*n) % len(machines)
			a, err := c.Acquire(ctx, machines[k])
			if err != nil || !a.OK() {
				return false, errName(a, err)
			}
			if a.KeyID != want[k] {
				return false, "KEY_CHANGED"
			}
			return true, ""
		})
		rs = append(rs, r)
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	b.table(rs)
	fmt.Fprintf(b.out, "  %d machines, each answered with the key it holds (KEY_CHANGED counts any other answer)\n", len(machines))
	return nil
}

// httpFloor prints, for scale, what the same clients get from a handler in
// this process that decodes the request and answers a fixed key: no
// storage, no sign-in, no encryption. On a shared 2-core machine this is
// roughly the most any server could reach with net/http over loopback.
func (b *bench) httpFloor(ctx context.Context) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	answer := []byte(`{"code":"OK","message":"a home key was assigned to this machine","data":{"keyId":3301234567890,"key":"VK7JG-NPHTM-C97JM-9MPGT-3V66T"}}`)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Username, Password, SN, Model, OSVersion string
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.SN == "" {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(answer)
	})}
	go srv.Serve(ln)
	defer srv.Close()
	n := slices.Max(b.cfg.clients)
	r := b.measureAt(ctx, ln.Addr().String(), n, min(b.cfg.duration, 3*time.Second), func(ctx context.Context, c *testutil.Conn, w, i int) (bool, string) {
		a, err := c.Acquire(ctx, testutil.Machine{SN: "KB-F-" + strconv.Itoa(w) + "-" + strconv.Itoa(i), Model: benchModel, OSVersion: benchOS})
		if err != nil || !a.OK() {
			return false, errName(a, err)
		}
		return true, ""
	})
	fmt.Fprintf(b.out, "  for scale: the same %d clients against a handler in kbench that only decodes the request and answers a fixed key\n"+
		"  (no storage, no sign-in, no encryption): %.0f requests/s, p99 %s, using %.0f%% CPU of 200%%\n",
		n, float64(r.ok)/r.wall.Seconds(), ms(r.pct(0.99)), 100*float64(r.clientCPU)/float64(r.wall))
	return nil
}
