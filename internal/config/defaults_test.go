package config

import (
	"testing"
	"time"
)

// Every default payrouter has is set here (the wiring and the router take
// values as given): an unset key reads as its documented default, a set
// one as written.
func TestDefaultsAreSetInConfig(t *testing.T) {
	src := `
merchants: [{id: demo, api_keys: [k]}]
router: {attempt_timeout: 4s}
providers:
  stripe: {}
  midtrans: {timeout: 2s, breaker: {min_requests: 3, open_for: 5s}}
`
	c, err := Parse("c.yaml", []byte(src), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	durations := []struct {
		key  string
		got  Duration
		want time.Duration
	}{
		{"server.shutdown_timeout", c.Server.ShutdownTimeout, 30 * time.Second},
		{"router.attempt_timeout (set)", c.Router.AttemptTimeout, 4 * time.Second},
		{"router.deadline", c.Router.Deadline, 30 * time.Second},
		{"router.resolve_every", c.Router.ResolveEvery, 2 * time.Second},
		{"router.payment_ttl", c.Router.PaymentTTL, 24 * time.Hour},
		{"router.resolve_backoff", c.Router.ResolveBackoff, 2 * time.Second},
		{"events.retry_for", c.Events.RetryFor, 24 * time.Hour},
		{"events.retry_base", c.Events.RetryBase, 10 * time.Second},
		{"providers.stripe.timeout (router.attempt_timeout)", c.Providers["stripe"].Timeout, 4 * time.Second},
		{"providers.midtrans.timeout (set)", c.Providers["midtrans"].Timeout, 2 * time.Second},
		{"providers.stripe.breaker.open_for", c.Providers["stripe"].Breaker.OpenFor, 30 * time.Second},
		{"providers.midtrans.breaker.open_for (set)", c.Providers["midtrans"].Breaker.OpenFor, 5 * time.Second},
		{"providers.stripe.breaker.interval", c.Providers["stripe"].Breaker.Interval, time.Minute},
	}
	for _, d := range durations {
		if time.Duration(d.got) != d.want {
			t.Errorf("%s = %v, want %v", d.key, time.Duration(d.got), d.want)
		}
	}
	b := c.Providers["stripe"].Breaker
	if b.FailureRatio != 0.5 || b.MinRequests != 10 || b.HalfOpenProbes != 1 {
		t.Errorf("providers.stripe.breaker = %+v, want failure_ratio 0.5, min_requests 10, half_open_probes 1", b)
	}
	if got := c.Providers["midtrans"].Breaker.MinRequests; got != 3 {
		t.Errorf("providers.midtrans.breaker.min_requests = %d, want 3 as set", got)
	}
	if c.Router.MaxAttempts != 3 || c.Events.Concurrency != 8 {
		t.Errorf("router.max_attempts %d, events.concurrency %d; want 3, 8", c.Router.MaxAttempts, c.Events.Concurrency)
	}
}
