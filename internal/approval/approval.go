// Package approval keeps the measured outcomes of provider calls — approved
// or declined, per provider × method × currency — over a sliding window, for
// the adaptive routing strategy (rules.Approvals). Counts live in a ring of
// time buckets per key. With Redis (Shared) every instance adds its counts
// to per-bucket hashes and reads everyone's back once a second, so all
// instances rank providers on the same figures; reads never touch Redis on
// the payment path, and when Redis is unreachable each instance falls back
// to its own counts (a Redis outage never stalls a payment).
package approval

import (
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/payrouter/payrouter"
)

// Bucket is the counters' time resolution and Span how far back they go:
// a window is rounded up to whole buckets (at most Span).
const (
	Bucket = 15 * time.Second
	Span   = time.Hour
)

const nBuckets = int(Span/Bucket) + 1

type key struct {
	provider string
	method   payrouter.Method
	currency payrouter.Currency
}

// ring holds counts per bucket; epoch[i] says which bucket number slot i
// holds, so stale slots read as zero without being cleared.
type ring struct {
	epoch [nBuckets]int64
	ok    [nBuckets]int64
	all   [nBuckets]int64
}

func (r *ring) add(b int64, ok, all int64) {
	i := b % int64(nBuckets)
	if r.epoch[i] != b {
		r.epoch[i], r.ok[i], r.all[i] = b, 0, 0
	}
	r.ok[i] += ok
	r.all[i] += all
}

// sum adds the buckets from..to inclusive.
func (r *ring) sum(from, to int64) (ok, all int64) {
	for b := from; b <= to; b++ {
		i := b % int64(nBuckets)
		if r.epoch[i] == b {
			ok += r.ok[i]
			all += r.all[i]
		}
	}
	return ok, all
}

// Tracker records outcomes and answers rules.Approvals. Safe for
// concurrent use; the zero value is not usable, call New.
type Tracker struct {
	now func() time.Time

	mu    sync.Mutex
	local map[key]*ring

	// shared is the last read of every instance's counts (nil without
	// Redis or before the first read); sharedAt its time.
	shared   atomic.Pointer[map[key]*ring]
	sharedAt atomic.Int64
	sync     *Shared
}

// New returns a Tracker on the wall clock (now nil) or on now.
func New(now func() time.Time) *Tracker {
	if now == nil {
		now = time.Now
	}
	return &Tracker{now: now, local: map[key]*ring{}}
}

func (t *Tracker) bucket() int64 { return t.now().UnixNano() / int64(Bucket) }

// Record counts one call that reached provider: approved, or declined by
// the provider (or the issuer behind it). Calls that failed for other
// reasons (unavailable, invalid, ambiguous) are the breakers' business and
// are not recorded.
func (t *Tracker) Record(provider string, m payrouter.Method, c payrouter.Currency, approved bool) {
	var ok int64
	if approved {
		ok = 1
	}
	b := t.bucket()
	k := key{provider, m, c}
	t.mu.Lock()
	r := t.local[k]
	if r == nil {
		r = &ring{}
		t.local[k] = r
	}
	r.add(b, ok, 1)
	t.mu.Unlock()
	if t.sync != nil {
		t.sync.add(k, b, ok)
	}
}

// Approval implements rules.Approvals: approved of attempts in the last
// window (rounded up to whole buckets, capped at Span). With Redis and a
// read younger than three sync periods it answers from every instance's
// counts, else from this instance's.
func (t *Tracker) Approval(provider string, m payrouter.Method, c payrouter.Currency, window time.Duration) (approved, attempts int64) {
	window = min(window, Span)
	to := t.bucket()
	from := to - int64((window+Bucket-1)/Bucket) + 1
	k := key{provider, m, c}
	if sh := t.shared.Load(); sh != nil && t.now().UnixNano()-t.sharedAt.Load() < int64(3*t.sync.every) {
		if r := (*sh)[k]; r != nil {
			return r.sum(from, to)
		}
		return 0, 0
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if r := t.local[k]; r != nil {
		return r.sum(from, to)
	}
	return 0, 0
}

// Stat is one key's counts over a window (Snapshot).
type Stat struct {
	Provider string             `json:"provider"`
	Method   payrouter.Method   `json:"method"`
	Currency payrouter.Currency `json:"currency"`
	Approved int64              `json:"approved"`
	Attempts int64              `json:"attempts"`
}

// Snapshot lists every provider × method × currency with samples in the
// last window, from the figures Approval answers with (every instance's
// with Redis), sorted. For people (the ops console), not the payment path.
func (t *Tracker) Snapshot(window time.Duration) []Stat {
	keys := map[key]bool{}
	t.mu.Lock()
	for k := range t.local {
		keys[k] = true
	}
	t.mu.Unlock()
	if sh := t.shared.Load(); sh != nil {
		for k := range *sh {
			keys[k] = true
		}
	}
	var out []Stat
	for k := range keys {
		ok, n := t.Approval(k.provider, k.method, k.currency, window)
		if n > 0 {
			out = append(out, Stat{Provider: k.provider, Method: k.method, Currency: k.currency, Approved: ok, Attempts: n})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Method != b.Method {
			return a.Method < b.Method
		}
		if a.Currency != b.Currency {
			return a.Currency < b.Currency
		}
		return a.Provider < b.Provider
	})
	return out
}
