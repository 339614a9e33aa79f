// Package simtest is the harness adapter tests share: a simulator mounted
// on a test server, a receiver for the webhooks it sends, and the check that
// an error is a classified *providers.Error.
package simtest

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/payrouter/payrouter/internal/sim"
	"github.com/payrouter/payrouter/providers"
)

// Hook is one webhook a simulator posted.
type Hook struct {
	Header http.Header
	Body   []byte
}

// Hooks receives a simulator's webhooks.
type Hooks struct {
	URL string
	C   chan Hook
}

// NewHooks starts a webhook receiver, closed when the test ends.
func NewHooks(t testing.TB) *Hooks {
	t.Helper()
	h := &Hooks{C: make(chan Hook, 256)}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		h.C <- Hook{r.Header.Clone(), b}
	}))
	t.Cleanup(srv.Close)
	h.URL = srv.URL
	return h
}

// Notifier points a simulator at the receiver.
func (h *Hooks) Notifier() *sim.Notifier { return &sim.Notifier{URL: h.URL} }

// Wait parses received webhooks with p until one matches; the test fails
// on a webhook p refuses or when none matches within 5 s.
func (h *Hooks) Wait(t testing.TB, p providers.WebhookParser, match func(*providers.Notification) bool) *providers.Notification {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case hk := <-h.C:
			n, err := p.ParseWebhook(hk.Header, hk.Body, time.Now())
			if err != nil {
				t.Fatalf("ParseWebhook of the simulator's webhook: %v\n%s", err, hk.Body)
			}
			if match(n) {
				return n
			}
		case <-deadline:
			t.Fatalf("no matching webhook within 5s")
			return nil
		}
	}
}

// Serve mounts the backend made by newBackend at /sim/{name} on a test
// server and returns the simulator's base URL (what an adapter's BaseURL
// and the backend's PublicURL are) and the mounted simulator.
func Serve(t testing.TB, name string, newBackend func(base string) sim.Backend) (string, *sim.Sim) {
	t.Helper()
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	base := srv.URL + "/sim/" + name
	s := sim.New(name, newBackend(base))
	s.Mount(mux, "/sim/"+name)
	return base, s
}

// ProviderError fails the test unless err is a *providers.Error.
func ProviderError(t testing.TB, err error) *providers.Error {
	t.Helper()
	var pe *providers.Error
	if !errors.As(err, &pe) {
		t.Fatalf("error %v (%T) is not a *providers.Error", err, err)
	}
	return pe
}
