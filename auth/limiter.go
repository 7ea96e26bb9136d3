package auth

import (
	"strings"
	"sync"
	"time"
)

// Limiter slows down password guessing: after MaxFailures failures within
// Window for one username or one client address, further attempts are refused
// for a lock-out that doubles with each new failure, up to MaxLock. A client
// address gets ClientFactor times as many tries as a username, since a whole
// production line may sit behind one address.
type Limiter struct {
	MaxFailures int
	Window      time.Duration
	BaseLock    time.Duration
	MaxLock     time.Duration
	// ClientFactor multiplies MaxFailures for client addresses.
	ClientFactor int

	mu      sync.Mutex
	entries map[string]*failures
}

type failures struct {
	count int
	first time.Time
	last  time.Time
	until time.Time
}

// NewLimiter returns a Limiter with defaults: 5 failures per 5 minutes, then
// 30 s locks doubling to 15 minutes.
func NewLimiter() *Limiter {
	return &Limiter{MaxFailures: 5, Window: 5 * time.Minute, BaseLock: 30 * time.Second, MaxLock: 15 * time.Minute,
		ClientFactor: 4, entries: map[string]*failures{}}
}

func keys(username, client string) []string {
	ks := []string{"u:" + username}
	if client != "" {
		ks = append(ks, "c:"+client)
	}
	return ks
}

// Blocked returns how long the caller must still wait (0: not blocked).
func (l *Limiter) Blocked(now time.Time, username, client string) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	var wait time.Duration
	for _, k := range keys(username, client) {
		if f, ok := l.entries[k]; ok && now.Before(f.until) {
			wait = max(wait, f.until.Sub(now))
		}
	}
	return wait
}

// Fail records a failed attempt.
func (l *Limiter) Fail(now time.Time, username, client string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.entries) > 100000 {
		l.entries = map[string]*failures{}
	}
	for _, k := range keys(username, client) {
		limit := l.MaxFailures
		if strings.HasPrefix(k, "c:") {
			limit *= max(l.ClientFactor, 1)
		}
		f, ok := l.entries[k]
		// The window counts from the last failure or the end of the last
		// lock, so a guesser does not get fresh tries after each lock.
		quiet := f != nil && now.Sub(f.last) > l.Window && now.Sub(f.until) > l.Window
		if !ok || quiet {
			f = &failures{first: now}
			l.entries[k] = f
		}
		f.count++
		f.last = now
		if f.count >= limit {
			lock := l.BaseLock << min(f.count-limit, 10)
			f.until = now.Add(min(lock, l.MaxLock))
		}
	}
}

// Succeed forgets the failures of a username (a client address keeps its
// record, so one good account does not unlock guessing at others).
func (l *Limiter) Succeed(username, _ string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.entries, "u:"+username)
}
