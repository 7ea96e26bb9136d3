package auth

import (
	"sync"
	"time"
)

// Limiter slows down password guessing: after MaxFailures failures within
// Window for one username or one client address, further attempts are refused
// for a lock-out that doubles with each new failure, up to MaxLock.
type Limiter struct {
	MaxFailures int
	Window      time.Duration
	BaseLock    time.Duration
	MaxLock     time.Duration

	mu      sync.Mutex
	entries map[string]*failures
}

type failures struct {
	count int
	first time.Time
	until time.Time
}

// NewLimiter returns a Limiter with defaults: 5 failures per 5 minutes, then
// 30 s locks doubling to 15 minutes.
func NewLimiter() *Limiter {
	return &Limiter{MaxFailures: 5, Window: 5 * time.Minute, BaseLock: 30 * time.Second, MaxLock: 15 * time.Minute,
		entries: map[string]*failures{}}
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
		f, ok := l.entries[k]
		if !ok || now.Sub(f.first) > l.Window && now.After(f.until) {
			f = &failures{first: now}
			l.entries[k] = f
		}
		f.count++
		if f.count >= l.MaxFailures {
			lock := l.BaseLock << min(f.count-l.MaxFailures, 10)
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
