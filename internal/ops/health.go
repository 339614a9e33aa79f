package ops

import (
	"slices"
	"sync"
	"time"

	"github.com/payrouter/payrouter"
	"github.com/payrouter/payrouter/providers"
)

// Health keeps the last hour of provider calls of this instance, per
// provider × method, for the providers page: calls, success rate and
// latency percentiles over 5 min and 1 h. A call succeeds unless the
// provider was unavailable or the outcome ambiguous (a decline is the
// provider working). Bounded: at most maxSamples per provider × method.
type Health struct {
	mu  sync.Mutex
	m   map[healthKey]*samples
	now func() time.Time
}

type healthKey struct {
	provider string
	method   payrouter.Method
}

type sample struct {
	at time.Time
	ok bool
	d  time.Duration
}

type samples struct{ s []sample }

const maxSamples = 20000

// NewHealth returns an empty recorder.
func NewHealth() *Health { return &Health{m: map[healthKey]*samples{}, now: time.Now} }

// Observe records one call; it fits router.Guarded.Observe.
func (h *Health) Observe(provider string, m payrouter.Method, _ string, class providers.Class, d time.Duration) {
	ok := class != providers.Unavailable && class != providers.Ambiguous
	now := h.now()
	h.mu.Lock()
	defer h.mu.Unlock()
	k := healthKey{provider, m}
	ss := h.m[k]
	if ss == nil {
		ss = &samples{}
		h.m[k] = ss
	}
	cut := now.Add(-time.Hour)
	i := 0
	for i < len(ss.s) && (ss.s[i].at.Before(cut) || len(ss.s)-i >= maxSamples) {
		i++
	}
	if i > 0 {
		ss.s = append(ss.s[:0], ss.s[i:]...)
	}
	ss.s = append(ss.s, sample{at: now, ok: ok, d: d})
}

// Window is what Health says about one window.
type Window struct {
	Calls       int     `json:"calls"`
	SuccessRate float64 `json:"success_rate"` // 0..1; 0 when no calls
	P50ms       int64   `json:"p50_ms"`
	P95ms       int64   `json:"p95_ms"`
}

// Stats summarizes the calls of provider × method in the last window.
func (h *Health) Stats(provider string, m payrouter.Method, window time.Duration) Window {
	cut := h.now().Add(-window)
	h.mu.Lock()
	var ds []time.Duration
	okN := 0
	if ss := h.m[healthKey{provider, m}]; ss != nil {
		for _, s := range ss.s {
			if s.at.Before(cut) {
				continue
			}
			ds = append(ds, s.d)
			if s.ok {
				okN++
			}
		}
	}
	h.mu.Unlock()
	w := Window{Calls: len(ds)}
	if len(ds) == 0 {
		return w
	}
	slices.Sort(ds)
	w.SuccessRate = float64(okN) / float64(len(ds))
	w.P50ms = ds[pct(len(ds), 50)].Milliseconds()
	w.P95ms = ds[pct(len(ds), 95)].Milliseconds()
	return w
}

// Series buckets the last window into n slots, oldest first (the console's
// charts): calls, success rate and p95 per slot. Method "" takes every
// method of the provider.
func (h *Health) Series(provider string, m payrouter.Method, window time.Duration, n int) []Window {
	now := h.now()
	start := now.Add(-window)
	step := window / time.Duration(n)
	buckets := make([][]sample, n)
	h.mu.Lock()
	for k, ss := range h.m {
		if k.provider != provider || (m != "" && k.method != m) {
			continue
		}
		for _, s := range ss.s {
			if s.at.Before(start) {
				continue
			}
			i := min(int(s.at.Sub(start)/step), n-1)
			buckets[i] = append(buckets[i], s)
		}
	}
	h.mu.Unlock()
	out := make([]Window, n)
	for i, b := range buckets {
		if len(b) == 0 {
			continue
		}
		ds := make([]time.Duration, len(b))
		okN := 0
		for j, s := range b {
			ds[j] = s.d
			if s.ok {
				okN++
			}
		}
		slices.Sort(ds)
		out[i] = Window{Calls: len(b), SuccessRate: float64(okN) / float64(len(b)),
			P50ms: ds[pct(len(ds), 50)].Milliseconds(), P95ms: ds[pct(len(ds), 95)].Milliseconds()}
	}
	return out
}

// pct is the nearest-rank index of the p-th percentile of n sorted values.
func pct(n, p int) int {
	i := (n*p+99)/100 - 1
	return max(0, min(i, n-1))
}
