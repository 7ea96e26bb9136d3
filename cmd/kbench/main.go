// Command kbench prints KeyStation's benchmark figures ("make bench"). It
// builds the sync server, starts it as a subprocess on a temporary data
// directory with its default, durable commits, imports a large key pool
// through "syncserver keys import", and measures the station key API over
// loopback HTTP: allocations per second, latency percentiles, errors, the
// server's CPU use and peak memory. It prints figures and targets; it never
// passes or fails on them (it exits non-zero only when it cannot run, or when
// it sees a key handed out twice).
//
// Each measurement is a section; -only runs some of them:
//
//	go run ./cmd/kbench [-duration 5s] [-clients 1,16,64] [-keys 200000] [-only acquire,reacquire]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"keystation/internal/testutil"
)

// section is one group of figures. Add new measurements here.
type section struct {
	name  string
	about string
	run   func(ctx context.Context, b *bench) error
}

var sections = []section{
	{"acquire", "each request a new machine: a real allocation with a durable commit", runAcquire},
	{"reacquire", "each request a machine that already holds its key (invariant 4's path)", runReacquire},
}

// config is kbench's command line.
type config struct {
	duration time.Duration
	clients  []int
	keys     int
	only     map[string]bool
	server   string
	data     string
	keep     bool
}

// bench is the server under test and what the sections share.
type bench struct {
	cfg  config
	out  io.Writer
	bin  string
	data string
	proc *testutil.Proc
	op   testutil.Credential
	// keyIDs holds every keyId handed out to a new machine so far, across
	// sections: a key handed out twice is a bug, whatever the figures.
	keyIDs  map[int64]string
	allocs  int // keys handed to new machines, counted once per answer
	doubles int
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cfg, err := parseFlags(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "kbench: %v\n", err)
		return 2
	}
	b := &bench{cfg: cfg, out: stdout, keyIDs: map[int64]string{}}
	defer b.close(stderr)
	if err := b.setup(ctx); err != nil {
		fmt.Fprintf(stderr, "kbench: %v\n", err)
		return 1
	}
	for _, s := range sections {
		if len(cfg.only) > 0 && !cfg.only[s.name] {
			continue
		}
		fmt.Fprintf(stdout, "\n== %s: %s\n", s.name, s.about)
		if err := s.run(ctx, b); err != nil {
			fmt.Fprintf(stderr, "kbench: %s: %v\n", s.name, err)
			return 1
		}
		if ctx.Err() != nil {
			return 1
		}
	}
	b.printServer()
	if b.doubles > 0 {
		fmt.Fprintf(stdout, "\nERROR: %d keys were handed to two machines\n", b.doubles)
		return 1
	}
	return 0
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	fs := flag.NewFlagSet("kbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg config
	var clients, only string
	fs.DurationVar(&cfg.duration, "duration", 5*time.Second, "how long each concurrency level runs")
	fs.StringVar(&clients, "clients", "1,16,64", "concurrency levels, comma-separated")
	fs.IntVar(&cfg.keys, "keys", 200_000, "keys imported into the home pool")
	fs.StringVar(&only, "only", "", "run only these sections, comma-separated ("+sectionNames()+")")
	fs.StringVar(&cfg.server, "server", "", "syncserver binary to run (default: go build one)")
	fs.StringVar(&cfg.data, "data", "", "directory for the data, the key list and the server log; must be new (default: a temporary one, removed at the end)")
	fs.BoolVar(&cfg.keep, "keep", false, "keep the data directory")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: kbench [flags]\n\nPrints KeyStation's benchmark figures. Sections: %s\n\n", sectionNames())
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	for _, f := range strings.Split(clients, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return cfg, fmt.Errorf("-clients: %q is not a positive number", f)
		}
		cfg.clients = append(cfg.clients, n)
	}
	if only != "" {
		cfg.only = map[string]bool{}
		for _, n := range strings.Split(only, ",") {
			n = strings.TrimSpace(n)
			if !strings.Contains(","+sectionNames()+",", ","+n+",") {
				return cfg, fmt.Errorf("-only: no section %q (have %s)", n, sectionNames())
			}
			cfg.only[n] = true
		}
	}
	if cfg.duration <= 0 || cfg.keys < 1 {
		return cfg, errors.New("-duration and -keys must be positive")
	}
	return cfg, nil
}

func sectionNames() string {
	names := make([]string, len(sections))
	for i, s := range sections {
		names[i] = s.name
	}
	return strings.Join(names, ",")
}

// setup builds and starts the server with an operator and a home pool of
// cfg.keys keys, and warms up the credential cache.
func (b *bench) setup(ctx context.Context) error {
	out := b.out
	fmt.Fprintf(out, "KeyStation benchmark — %s, %s/%s, %d CPUs; client and server share this machine\n",
		runtime.Version(), runtime.GOOS, runtime.GOARCH, runtime.NumCPU())
	if b.cfg.data != "" {
		b.data = b.cfg.data
		if _, err := os.Stat(filepath.Join(b.data, "db")); err == nil {
			return fmt.Errorf("-data %s already holds a database (db/): give a new directory", b.data)
		}
		if err := os.MkdirAll(b.data, 0o700); err != nil {
			return err
		}
	} else {
		dir, err := os.MkdirTemp("", "kbench-")
		if err != nil {
			return err
		}
		b.data = dir
	}
	b.bin = b.cfg.server
	if b.bin == "" {
		t0 := time.Now()
		bin, err := testutil.BuildSyncserver(ctx, b.data)
		if err != nil {
			return err
		}
		b.bin = bin
		fmt.Fprintf(out, "built %s in %s\n", testutil.SyncserverPackage, time.Since(t0).Round(time.Millisecond))
	}
	db := filepath.Join(b.data, "db")

	b.op = testutil.Credential{Username: "kbench", Password: "kbench-" + strconv.FormatInt(time.Now().UnixNano(), 36)}
	if _, err := testutil.RunCommand(ctx, b.bin, b.op.Password+"\n", "users", "add", b.op.Username,
		"--role", "operator", "--password-stdin", "--data", db); err != nil {
		return err
	}

	t0 := time.Now()
	keyFile := filepath.Join(b.data, "keys.txt")
	if err := testutil.WriteKeyFile(keyFile, testutil.GenerateKeys(b.cfg.keys, uint64(time.Now().UnixNano()))); err != nil {
		return err
	}
	gen := time.Since(t0)
	t0 = time.Now()
	if _, err := testutil.RunCommand(ctx, b.bin, "", "keys", "import", "--data", db, "--edition", "home", keyFile); err != nil {
		return err
	}
	imp := time.Since(t0)
	fmt.Fprintf(out, "imported %d home keys with \"syncserver keys import\" in %s (%.0f keys/s; generating the file took %s)\n",
		b.cfg.keys, imp.Round(time.Millisecond), float64(b.cfg.keys)/imp.Seconds(), gen.Round(time.Millisecond))

	p, err := testutil.StartServer(ctx, b.bin, db, filepath.Join(b.data, "server.log"), "--log-level", "warn")
	if err != nil {
		return err
	}
	b.proc = p
	fmt.Fprintf(out, "server: %s serve on %s (pid %d), data %s, durable commits (no request answered before its commit is fsynced)\n",
		filepath.Base(b.bin), p.Addr, p.PID(), db)

	// Warm-up: the first request pays for bcrypt and fills the credential
	// cache; a few more open the database's connections.
	c := testutil.NewClient(p.Addr, b.op.Username, b.op.Password, 1)
	defer c.CloseIdle()
	for i := range 20 {
		a, err := c.Acquire(ctx, testutil.Machine{SN: "KBENCH-WARMUP-" + strconv.Itoa(i), Model: benchModel, OSVersion: benchOS})
		if err != nil {
			return fmt.Errorf("warm-up: %w", err)
		}
		if !a.OK() {
			return fmt.Errorf("warm-up: %s", a)
		}
		b.noteKey(a.KeyID, "KBENCH-WARMUP-"+strconv.Itoa(i))
	}
	return nil
}

const (
	benchModel = "KBench Model 1"
	benchOS    = "Windows 11 Home"
)

// noteKey records a keyId handed to a new machine, counting one handed out
// before.
func (b *bench) noteKey(id int64, sn string) {
	b.allocs++
	if prev, dup := b.keyIDs[id]; dup {
		if b.doubles < 10 {
			fmt.Fprintf(b.out, "DOUBLE ALLOCATION: keyId %d handed to %s and to %s\n", id, prev, sn)
		}
		b.doubles++
		return
	}
	b.keyIDs[id] = sn
}

// printServer prints the server's peak memory and total CPU.
func (b *bench) printServer() {
	if b.proc == nil {
		return
	}
	hwm, err1 := b.proc.Status("VmHWM")
	rss, err2 := b.proc.Status("VmRSS")
	cpu, err3 := b.proc.CPUTime()
	if err := errors.Join(err1, err2, err3); err != nil {
		fmt.Fprintf(b.out, "\nserver: could not read /proc: %v\n", err)
		return
	}
	fmt.Fprintf(b.out, "\nserver: peak RSS (VmHWM) %.1f MiB, RSS now %.1f MiB, CPU used %s\n",
		float64(hwm)/1024, float64(rss)/1024, cpu.Round(time.Millisecond))
}

func (b *bench) close(stderr io.Writer) {
	if b.proc != nil {
		if err := b.proc.Stop(30 * time.Second); err != nil {
			fmt.Fprintf(stderr, "kbench: stopping the server: %v\n%s\n", err, b.proc.Tail(2000))
		}
	}
	if b.data != "" && !b.cfg.keep && b.cfg.data == "" {
		os.RemoveAll(b.data)
	} else if b.data != "" {
		fmt.Fprintf(b.out, "data kept in %s\n", b.data)
	}
}
