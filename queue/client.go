// Package queue delivers a station's outbox to the sync server and keeps its
// key buffer topped up: the station side of the sync protocol (DESIGN.md,
// "Sync protocol"), over HTTP with go-resty.
//
// A sync is a series of idempotent round trips: each sends the oldest
// waiting reports (in order, batched), the unused leased keys held, the
// grants to acknowledge and the buffer targets, and records the answer
// durably before the next. A lost answer costs nothing: the next round trip
// repeats it and the server answers "duplicate". Failures back off
// exponentially with jitter; resty itself never retries.
//
// The package depends on the domain types only: the outbox is any Outbox
// (store.StationDB in the station).
package queue

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/go-resty/resty/v2"

	"keystation"
)

// API paths on the sync server.
const (
	PathEnrol          = "/api/v1/stations/enrol"
	PathSync           = "/api/v1/sync"
	PathReconciliation = "/api/v1/sync/reconciliation"
	PathHealth         = "/healthz"
)

// MaxSyncReports is the most reports the client sends in one request, the
// server's limit (store.MaxSyncRequestReports). A server that accepts fewer
// refuses the request, and the client halves its batches.
const MaxSyncReports = 10000

// DefaultSyncReports is how many reports the client sends in one request
// unless Config says otherwise: the most the server takes. The server
// applies a request in few transactions, and each commit rewrites the index
// pages its reports touched, so fewer, larger requests cost the server less
// work per report. Memory stays bounded: the station encodes the next
// request while one is on its way, and the server decodes a request as it
// applies it, a few chunks ahead of its writer.
const DefaultSyncReports = MaxSyncReports

// DefaultSyncBytes is the most report JSON the client sends in one request
// unless Config says otherwise.
const DefaultSyncBytes = 16 << 20

// Outbox is what the sync client needs of the station's store.
type Outbox interface {
	// SyncEndpoint returns the server URL and the station's credential.
	SyncEndpoint(ctx context.Context) (serverURL, credential string, err error)
	// SaveEnrolment records an enrolment.
	SaveEnrolment(ctx context.Context, serverURL string, r keystation.EnrolResponse) error
	// NextSync builds the next request (oldest reports first).
	NextSync(ctx context.Context, maxReports, maxBytes int) (keystation.SyncRequest, error)
	// NextSyncRaw builds the next request from the reports after outbox
	// position after (0: the oldest waiting), with each report's JSON as
	// stored (req.Reports holds only their ID and KeyID), and returns the
	// position of its last report.
	NextSyncRaw(ctx context.Context, after int64, maxReports, maxBytes int) (req keystation.SyncRequest, bodies []json.RawMessage, last int64, err error)
	// ApplySync records the answer to req durably, in one transaction.
	ApplySync(ctx context.Context, req *keystation.SyncRequest, resp *keystation.SyncResponse, skew time.Duration) error
	// SyncFailed counts a failed attempt for the reports with these IDs.
	SyncFailed(ctx context.Context, ids []string, message string) error
	// RejectLocally takes a report the server refuses out of the queue,
	// needing attention.
	RejectLocally(ctx context.Context, id, code, message string) error
}

// Config tunes the client. Zero values take the defaults.
type Config struct {
	HTTPTimeout time.Duration // per request; 30 s
	MaxReports  int           // per request; DefaultSyncReports, at most MaxSyncReports
	MaxBytes    int           // of report JSON per request; DefaultSyncBytes
	BackoffMin  time.Duration // first wait after a failure; 1 s
	BackoffMax  time.Duration // longest wait; 2 min
	Interval    time.Duration // between syncs when all is well; 1 min
	UserAgent   string
	// Transport replaces the HTTP transport (tests).
	Transport http.RoundTripper
	// Progress, when set, is called after each round trip of SyncOnce with
	// the totals so far (long syncs show how far they are).
	Progress func(Summary)
}

func (c *Config) defaults() {
	if c.HTTPTimeout <= 0 {
		c.HTTPTimeout = 30 * time.Second
	}
	if c.MaxReports <= 0 {
		c.MaxReports = DefaultSyncReports
	}
	if c.MaxReports > MaxSyncReports {
		c.MaxReports = MaxSyncReports
	}
	if c.MaxBytes <= 0 {
		c.MaxBytes = DefaultSyncBytes
	}
	if c.BackoffMin <= 0 {
		c.BackoffMin = time.Second
	}
	if c.BackoffMax <= 0 {
		c.BackoffMax = 2 * time.Minute
	}
	if c.BackoffMax < c.BackoffMin {
		c.BackoffMax = c.BackoffMin
	}
	if c.Interval <= 0 {
		c.Interval = time.Minute
	}
	if c.UserAgent == "" {
		c.UserAgent = "keystation-station/1"
	}
}

// State is what the client knows of the server, for status displays.
type State struct {
	// Online is true when the last round trip (or probe) reached the server.
	Online bool `json:"online"`
	// Checked is false until this process has talked to the server.
	Checked     bool      `json:"checked"`
	Syncing     bool      `json:"syncing"`
	LastSuccess time.Time `json:"lastSuccess"`
	LastAttempt time.Time `json:"lastAttempt"`
	LastError   string    `json:"lastError,omitempty"`
	// Failures counts failed syncs in a row; NextAttempt is when Run tries
	// again.
	Failures    int           `json:"failures"`
	NextAttempt time.Time     `json:"nextAttempt"`
	ClockSkew   time.Duration `json:"clockSkew"`
}

// Summary counts what one SyncOnce did.
type Summary struct {
	Rounds     int           `json:"rounds"`
	Sent       int           `json:"sent"`       // reports sent (including re-sent)
	Applied    int           `json:"applied"`    // took effect now
	Duplicates int           `json:"duplicates"` // had taken effect before
	Conflicts  int           `json:"conflicts"`  // kept and flagged by the server
	Rejected   int           `json:"rejected"`   // refused, kept locally needing attention
	Grants     int           `json:"grants"`     // keys granted (including re-sent grants)
	Revoked    int           `json:"revoked"`    // keys the station must drop
	Backlog    int           `json:"backlog"`    // reports still waiting afterwards
	ClockSkew  time.Duration `json:"clockSkew"`
	Duration   time.Duration `json:"duration"`
}

// Client syncs one station with its server.
type Client struct {
	out Outbox
	cfg Config
	log *slog.Logger
	now func() time.Time
	rc  *resty.Client

	syncMu  sync.Mutex // one sync at a time
	trigger chan struct{}

	mu    sync.Mutex
	state State
}

// New returns a client of the outbox's server.
func New(out Outbox, cfg Config, log *slog.Logger) *Client {
	cfg.defaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	rc := resty.New().
		SetTimeout(cfg.HTTPTimeout).
		SetRetryCount(0). // our own backoff, never resty's
		SetHeader("User-Agent", cfg.UserAgent).
		SetResponseBodyLimit(MaxResponseBytes).
		SetRedirectPolicy(resty.NoRedirectPolicy()).
		SetDisableWarn(true).
		SetLogger(restyLogger{log})
	if cfg.Transport != nil {
		rc.SetTransport(cfg.Transport)
	}
	return &Client{out: out, cfg: cfg, log: log, now: time.Now, rc: rc, trigger: make(chan struct{}, 1)}
}

// SetClock replaces time.Now (tests).
func (c *Client) SetClock(now func() time.Time) { c.now = now }

// State returns what the client knows of the server.
func (c *Client) State() State {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state
}

// Trigger asks Run to sync soon (after an activation, or when a buffer falls
// below its low-water mark). It never blocks. While backing off after a
// failure, the sync waits for the backoff to end.
func (c *Client) Trigger() {
	select {
	case c.trigger <- struct{}{}:
	default:
	}
}

// OfflineError is a round trip that did not reach the server.
type OfflineError struct{ Err error }

func (e *OfflineError) Error() string { return "the sync server cannot be reached: " + e.Err.Error() }
func (e *OfflineError) Unwrap() error { return e.Err }

// IsOffline reports whether err means the server could not be reached
// (network, timeout, or the server unavailable).
func IsOffline(err error) bool {
	var oe *OfflineError
	if errors.As(err, &oe) {
		return true
	}
	var se *ServerError
	return errors.As(err, &se) && (se.Status == http.StatusServiceUnavailable || se.Status == http.StatusBadGateway || se.Status == http.StatusGatewayTimeout)
}

func joinURL(base, path string) (string, error) {
	base = strings.TrimRight(strings.TrimSpace(base), "/")
	if !strings.HasPrefix(base, "http://") && !strings.HasPrefix(base, "https://") {
		return "", keystation.FieldError(map[string]string{"server": "must start with http:// or https://"})
	}
	return base + path, nil
}

// do sends one request and returns the HTTP status and body.
func (c *Client) do(ctx context.Context, method, url, credential string, body []byte) (int, []byte, error) {
	r := c.rc.R().SetContext(ctx).SetHeader("Accept", "application/json")
	if credential != "" {
		r.SetAuthToken(credential)
	}
	if body != nil {
		// A reader, not the slice: resty copies a []byte body twice (into a
		// pooled buffer, then into the request); net/http takes a
		// *bytes.Reader as it is, with its length.
		r.SetHeader("Content-Type", "application/json").SetBody(bytes.NewReader(body))
	}
	resp, err := r.Execute(method, url)
	if err != nil {
		if ctx.Err() != nil {
			return 0, nil, ctx.Err()
		}
		return 0, nil, &OfflineError{Err: scrub(err, credential)}
	}
	return resp.StatusCode(), resp.Body(), nil
}

// scrub keeps a credential out of error texts.
func scrub(err error, credential string) error {
	if credential == "" || !strings.Contains(err.Error(), credential) {
		return err
	}
	return errors.New(strings.ReplaceAll(err.Error(), credential, "***"))
}

// Enrol enrols the station with a token a supervisor created and stores the
// station's credential.
func (c *Client) Enrol(ctx context.Context, serverURL, token, name string) (keystation.EnrolResponse, error) {
	url, err := joinURL(serverURL, PathEnrol)
	if err != nil {
		return keystation.EnrolResponse{}, err
	}
	if strings.TrimSpace(token) == "" {
		return keystation.EnrolResponse{}, keystation.FieldError(map[string]string{"token": "required"})
	}
	host, _ := os.Hostname()
	body, _ := json.Marshal(keystation.EnrolRequest{Token: strings.TrimSpace(token), Name: strings.TrimSpace(name), Hostname: host})
	status, raw, err := c.do(ctx, http.MethodPost, url, "", body)
	if err != nil {
		return keystation.EnrolResponse{}, err
	}
	r, err := DecodeEnrolResponse(status, raw)
	if err != nil {
		return keystation.EnrolResponse{}, err
	}
	if err := c.out.SaveEnrolment(ctx, strings.TrimRight(strings.TrimSpace(serverURL), "/"), r); err != nil {
		return keystation.EnrolResponse{}, err
	}
	c.log.Info("station enrolled", "station", r.StationID, "name", r.Name, "server", serverURL)
	return r, nil
}

// Ping checks that the server answers GET /healthz; it updates State.
func (c *Client) Ping(ctx context.Context) error {
	base, cred, err := c.out.SyncEndpoint(ctx)
	if err != nil {
		return err
	}
	url, err := joinURL(base, PathHealth)
	if err != nil {
		return err
	}
	status, _, err := c.do(ctx, http.MethodGet, url, cred, nil)
	if err == nil && status != http.StatusOK {
		err = &ServerError{Status: status, Code: codeForStatus(status), Message: "health check failed"}
	}
	c.mu.Lock()
	c.state.Checked, c.state.Online = true, err == nil
	if err != nil {
		c.state.LastError = err.Error()
	}
	c.mu.Unlock()
	return err
}

// Reconciliation asks the server for its counts of this station's keys.
func (c *Client) Reconciliation(ctx context.Context) (keystation.Reconciliation, error) {
	base, cred, err := c.out.SyncEndpoint(ctx)
	if err != nil {
		return keystation.Reconciliation{}, err
	}
	url, err := joinURL(base, PathReconciliation)
	if err != nil {
		return keystation.Reconciliation{}, err
	}
	status, raw, err := c.do(ctx, http.MethodGet, url, cred, nil)
	if err != nil {
		return keystation.Reconciliation{}, err
	}
	return DecodeReconciliation(status, raw)
}

// roundTrip sends one sync request and decodes the answer.
func (c *Client) roundTrip(ctx context.Context, url, cred string, req *keystation.SyncRequest) (keystation.SyncResponse, time.Duration, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return keystation.SyncResponse{}, 0, err
	}
	return c.send(ctx, url, cred, body)
}

// send posts an encoded sync request and decodes the answer.
func (c *Client) send(ctx context.Context, url, cred string, body []byte) (keystation.SyncResponse, time.Duration, error) {
	sent := c.now()
	status, raw, err := c.do(ctx, http.MethodPost, url, cred, body)
	if err != nil {
		return keystation.SyncResponse{}, 0, err
	}
	received := c.now()
	resp, err := DecodeSyncResponse(status, raw)
	if err != nil {
		return keystation.SyncResponse{}, 0, err
	}
	return resp, clockSkew(resp.ServerTime, sent, received), nil
}

// batch is a sync request ready to send: the request (its Reports hold only
// their ID and KeyID), its body, and the outbox position of its last report.
type batch struct {
	req  keystation.SyncRequest
	body []byte
	last int64
}

// nextBatch reads and encodes the request of the reports after outbox
// position after (0: the oldest waiting).
func (c *Client) nextBatch(ctx context.Context, after int64, limit int) (batch, error) {
	req, bodies, last, err := c.out.NextSyncRaw(ctx, after, limit, c.cfg.MaxBytes)
	if err != nil {
		return batch{}, err
	}
	body, err := EncodeSyncRequest(&req, bodies)
	return batch{req: req, body: body, last: last}, err
}

// EncodeSyncRequest is json.Marshal(req) with reports, each report's JSON as
// stored, in place of req.Reports: the station's reports go out as they were
// queued, without being decoded and encoded again.
func EncodeSyncRequest(req *keystation.SyncRequest, reports []json.RawMessage) ([]byte, error) {
	head := *req
	head.Reports = []keystation.SyncReport{}
	b, err := json.Marshal(head)
	if err != nil {
		return nil, err
	}
	// stationTime, the only field before reports, is a time: this is the
	// reports field.
	const empty = `"reports":[]`
	i := bytes.Index(b, []byte(empty))
	if i < 0 {
		return nil, errors.New("queue: a sync request without its reports field")
	}
	i += len(empty) - 1
	size := len(b) + len(reports)
	for _, r := range reports {
		size += len(r)
	}
	out := append(make([]byte, 0, size), b[:i]...)
	for j, r := range reports {
		if j > 0 {
			out = append(out, ',')
		}
		out = append(out, r...)
	}
	return append(out, b[i:]...), nil
}

// prefetched is the next request, read and encoded while the one before is
// on its way.
type prefetched struct {
	done chan struct{}
	b    batch
	err  error
}

func (c *Client) prefetch(ctx context.Context, after int64, limit int) *prefetched {
	p := &prefetched{done: make(chan struct{})}
	go func() {
		defer close(p.done)
		p.b, p.err = c.nextBatch(ctx, after, limit)
	}()
	return p
}

func (p *prefetched) wait() (batch, error) {
	<-p.done
	return p.b, p.err
}

// recorder records the server's answers durably (Outbox.ApplySync), in the
// order they came, in the background: the next request goes out while the
// last answer is being recorded. After a failure it records nothing more.
type recorder struct {
	out  Outbox
	done chan struct{} // closed once every answer handed over is recorded

	mu  sync.Mutex
	err error
}

func newRecorder(out Outbox) *recorder {
	r := &recorder{out: out, done: make(chan struct{})}
	close(r.done)
	return r
}

// record hands over an answer; only the sync loop calls it.
func (r *recorder) record(ctx context.Context, req *keystation.SyncRequest, resp *keystation.SyncResponse, skew time.Duration) {
	prev, done := r.done, make(chan struct{})
	r.done = done
	go func() {
		defer close(done)
		<-prev
		if r.failed() != nil {
			return
		}
		if err := r.out.ApplySync(ctx, req, resp, skew); err != nil {
			r.mu.Lock()
			r.err = fmt.Errorf("record the server's answer: %w", err)
			r.mu.Unlock()
		}
	}()
}

func (r *recorder) failed() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}

// wait waits until every answer handed over is recorded.
func (r *recorder) wait() error {
	<-r.done
	return r.failed()
}

// SyncOnce pushes the whole outbox and tops up the buffer: round trips until
// no report waits and no grant is left to acknowledge (bounded).
//
// The round trips are pipelined on the station's side, never on the
// server's: a request is sent only once the answer to the one before has
// arrived (so the server applies the reports in order), but while it is on
// its way the station records the answer before (durably, before the sync
// returns) and reads the request after. The request after is read from
// beyond the reports on their way; whenever a round trip fails, or an
// answer leaves a report unanswered, the sync waits for what is being
// recorded and reads the outbox afresh, so a report is never skipped, and a
// report sent twice is answered "duplicate".
func (c *Client) SyncOnce(ctx context.Context) (Summary, error) {
	c.syncMu.Lock()
	defer c.syncMu.Unlock()
	start := time.Now()
	c.mu.Lock()
	c.state.Syncing = true
	c.mu.Unlock()
	sum, err := c.syncOnce(ctx)
	sum.Duration = time.Since(start)
	c.mu.Lock()
	c.state.Syncing = false
	c.state.Checked = true
	c.state.LastAttempt = c.now()
	if err == nil {
		c.state.Online, c.state.LastSuccess, c.state.LastError, c.state.ClockSkew = true, c.state.LastAttempt, "", sum.ClockSkew
	} else if ctx.Err() == nil {
		c.state.Online = !IsOffline(err)
		c.state.LastError = err.Error()
	}
	c.mu.Unlock()
	if err != nil {
		c.log.Warn("sync failed", "err", err, "rounds", sum.Rounds, "sent", sum.Sent)
	} else if sum.Sent+sum.Grants+sum.Revoked > 0 {
		c.log.Info("synced", "rounds", sum.Rounds, "sent", sum.Sent, "applied", sum.Applied, "duplicates", sum.Duplicates,
			"conflicts", sum.Conflicts, "rejected", sum.Rejected, "grants", sum.Grants, "revoked", sum.Revoked, "skew", sum.ClockSkew)
	}
	return sum, err
}

func (c *Client) syncOnce(ctx context.Context) (sum Summary, err error) {
	base, cred, err := c.out.SyncEndpoint(ctx)
	if err != nil {
		return sum, err
	}
	url, err := joinURL(base, PathSync)
	if err != nil {
		return sum, err
	}
	rec := newRecorder(c.out)
	var (
		next  *prefetched // the request after, being read
		after int64       // where the next request begins; 0 once every answer is recorded
	)
	// settle drops the request read ahead and waits until every answer is
	// recorded: the outbox is then the whole truth again.
	settle := func() error {
		if next != nil {
			next.wait()
			next = nil
		}
		after = 0
		return rec.wait()
	}
	defer func() {
		if serr := settle(); serr != nil && err == nil {
			err = serr
		}
	}()
	limit := c.cfg.MaxReports
	maxRounds := 0
	var prevGrants string
	for {
		var b batch
		if next != nil {
			b, err = next.wait()
			next = nil
		} else {
			b, err = c.nextBatch(ctx, after, limit)
		}
		if err != nil {
			return sum, err
		}
		// The request alone (not its body) goes on to the recorder.
		req := &keystation.SyncRequest{}
		*req = b.req
		if maxRounds == 0 {
			maxRounds = 20 + 2*(req.Backlog+len(req.Reports))/max(1, limit)
		}
		if sum.Rounds >= maxRounds {
			sum.Backlog = req.Backlog + len(req.Reports)
			return sum, fmt.Errorf("sync stopped after %d round trips with %d reports still waiting", sum.Rounds, sum.Backlog)
		}
		if err := rec.failed(); err != nil {
			return sum, err
		}
		sum.Rounds++
		if len(req.Reports) > 0 && req.Backlog > 0 {
			next = c.prefetch(ctx, b.last, limit)
		}
		resp, skew, err := c.send(ctx, url, cred, b.body)
		b.body = nil
		if err != nil {
			if serr := settle(); serr != nil {
				return sum, serr
			}
			var se *ServerError
			if errors.As(err, &se) && (se.Status == http.StatusRequestEntityTooLarge || se.Status == http.StatusBadRequest) && len(req.Reports) > 0 {
				if len(req.Reports) > 1 {
					// Find the report the server refuses: halve the batch.
					limit = max(1, len(req.Reports)/2)
					continue
				}
				if perr := c.probe(ctx, url, cred, req); perr == nil {
					// The request is fine without this report: it is the
					// report that the server refuses as a whole.
					if rerr := c.out.RejectLocally(ctx, req.Reports[0].ID, se.Code, se.Error()); rerr != nil {
						return sum, rerr
					}
					sum.Rejected++
					continue
				}
			}
			ids := make([]string, len(req.Reports))
			for i, r := range req.Reports {
				ids[i] = r.ID
			}
			if ctx.Err() == nil {
				if ferr := c.out.SyncFailed(context.WithoutCancel(ctx), ids, err.Error()); ferr != nil {
					c.log.Error("record sync failure", "err", ferr)
				}
			}
			sum.Backlog = req.Backlog + len(req.Reports)
			return sum, err
		}
		if next != nil && !answersAll(req, &resp) {
			// A report left unanswered goes again before any after it.
			next.wait()
			next = nil
		}
		rec.record(context.WithoutCancel(ctx), req, &resp, skew)
		sum.ClockSkew = skew
		answered := len(resp.Results)
		sum.add(req, &resp)
		if c.cfg.Progress != nil {
			c.cfg.Progress(sum)
		}
		if len(req.Reports) > 0 && answered == 0 {
			return sum, fmt.Errorf("the server answered none of the %d reports sent", len(req.Reports))
		}
		grants := grantSet(resp.Grants)
		if len(req.Reports) == 0 && req.Backlog == 0 && (len(resp.Grants) == 0 || grants == prevGrants) {
			return sum, nil
		}
		prevGrants = grants
		if next != nil {
			after = b.last
		} else if err := settle(); err != nil {
			// The next request is read once this answer is recorded.
			return sum, err
		}
		if len(req.Reports) > 0 && limit < c.cfg.MaxReports {
			limit = min(c.cfg.MaxReports, limit*2)
		}
		if err := ctx.Err(); err != nil {
			return sum, err
		}
	}
}

// answersAll reports whether resp has a result for every report of req.
func answersAll(req *keystation.SyncRequest, resp *keystation.SyncResponse) bool {
	if len(resp.Results) < len(req.Reports) {
		return false
	}
	got := make(map[string]bool, len(resp.Results))
	for _, r := range resp.Results {
		got[r.ID] = true
	}
	for _, r := range req.Reports {
		if !got[r.ID] {
			return false
		}
	}
	return true
}

// probe sends req without its reports, to tell a refused report from a
// refused request.
func (c *Client) probe(ctx context.Context, url, cred string, req *keystation.SyncRequest) error {
	p := *req
	p.Reports = []keystation.SyncReport{}
	p.Acks = []keystation.KeyID{} // acknowledgements only count once recorded
	p.Backlog = req.Backlog + len(req.Reports)
	_, _, err := c.roundTrip(ctx, url, cred, &p)
	return err
}

// add counts one round trip's request and answer (not the round itself).
func (s *Summary) add(req *keystation.SyncRequest, resp *keystation.SyncResponse) {
	s.Sent += len(req.Reports)
	for _, r := range resp.Results {
		switch r.Status {
		case keystation.SyncApplied:
			s.Applied++
		case keystation.SyncDuplicate:
			s.Duplicates++
		case keystation.SyncConflict:
			s.Conflicts++
		case keystation.SyncRejected:
			s.Rejected++
		}
	}
	s.Grants += len(resp.Grants)
	s.Revoked += len(resp.Revoked)
	s.Backlog = req.Backlog
}

func grantSet(g []keystation.SyncGrant) string {
	var b strings.Builder
	for _, x := range g {
		b.WriteString(x.KeyID.String())
	}
	return b.String()
}

// Backoff returns the wait before attempt n+1 after n failures in a row:
// exponential from min to max, with jitter (between half and all of it).
func Backoff(n int, lo, hi time.Duration) time.Duration {
	if n <= 0 {
		return 0
	}
	d := lo
	for i := 1; i < n && d < hi; i++ {
		d *= 2
	}
	d = min(d, hi)
	half := d / 2
	return half + time.Duration(rand.Int64N(int64(half)+1))
}

// Run syncs until ctx ends: at once, then every Interval, soon after each
// Trigger, and after a failure with exponential backoff and jitter.
func (c *Client) Run(ctx context.Context) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	failures := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.trigger:
			if failures > 0 && c.now().Before(c.State().NextAttempt) {
				continue // backing off: the timer fires when it ends
			}
		case <-timer.C:
		}
		_, err := c.SyncOnce(ctx)
		if ctx.Err() != nil {
			return
		}
		wait := c.cfg.Interval
		if err != nil {
			failures++
			wait = Backoff(failures, c.cfg.BackoffMin, c.cfg.BackoffMax)
		} else {
			failures = 0
		}
		c.mu.Lock()
		c.state.Failures, c.state.NextAttempt = failures, c.now().Add(wait)
		c.mu.Unlock()
		timer.Reset(wait)
	}
}

// restyLogger sends resty's own messages to slog at debug level.
type restyLogger struct{ l *slog.Logger }

func (r restyLogger) Errorf(format string, v ...any) {
	r.l.Debug("resty: " + fmt.Sprintf(format, v...))
}
func (r restyLogger) Warnf(format string, v ...any) { r.l.Debug("resty: " + fmt.Sprintf(format, v...)) }
func (r restyLogger) Debugf(format string, v ...any) {
	r.l.Debug("resty: " + fmt.Sprintf(format, v...))
}
