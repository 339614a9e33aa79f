package providers

import (
	"net/http"
	"time"
)

// NewHTTPClient is the client every adapter uses when its config gives
// none: timeout bounds each call (0: none) and the transport never resends
// a request silently (see NoReplay). The wiring passes its own client
// (shared connection pool) built on NoReplay too.
func NewHTTPClient(timeout time.Duration) *http.Client {
	return &http.Client{Timeout: timeout, Transport: NoReplay(nil)}
}

// NoReplay wraps rt (nil: http.DefaultTransport) so that net/http never
// silently resends a request that carries a body. http.Transport replays a
// POST with an Idempotency-Key header when a reused connection closes
// before the answer; if the provider had processed the first send and the
// resend meets a 503, the adapter would report "unavailable, not
// processed" for a charge that exists, and the router would charge
// elsewhere (found by the flaky chaos test). Without the replay the lost
// answer surfaces as what it is: ambiguous, which the router resolves with
// the same key itself.
func NoReplay(rt http.RoundTripper) http.RoundTripper {
	if rt == nil {
		rt = http.DefaultTransport
	}
	return noReplay{rt}
}

type noReplay struct{ rt http.RoundTripper }

func (n noReplay) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil && req.Body != http.NoBody && req.GetBody != nil {
		r := *req // shallow copy: RoundTrip must not modify the caller's request
		r.GetBody = nil
		req = &r
	}
	return n.rt.RoundTrip(req)
}
