package providers_test

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/payrouter/payrouter/providers"
)

// A POST with an Idempotency-Key whose reused connection drops before the
// answer: net/http's own transport sends it again, the adapters' default
// client sends it once and reports the error (ambiguous to the adapter).
func TestNewHTTPClientNeverResends(t *testing.T) {
	var posts atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.WriteHeader(http.StatusOK) // warms up a keep-alive connection
			return
		}
		posts.Add(1)
		// The provider got the charge; the answer is lost with the connection.
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
	}))
	defer srv.Close()

	send := func(t *testing.T, c *http.Client) (int32, error) {
		t.Helper()
		posts.Store(0)
		warm, err := c.Get(srv.URL)
		if err != nil {
			t.Fatalf("GET: %v", err)
		}
		warm.Body.Close()
		req, _ := http.NewRequest(http.MethodPost, srv.URL, bytes.NewReader([]byte(`{"amount":50000}`)))
		req.Header.Set("Idempotency-Key", "pay_1_1")
		resp, err := c.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		return posts.Load(), err
	}

	t.Run("net/http default resends", func(t *testing.T) {
		// The premise of the fix: if this ever stops resending, the test
		// below proves nothing and should be revisited.
		tr := http.DefaultTransport.(*http.Transport).Clone()
		defer tr.CloseIdleConnections()
		if n, _ := send(t, &http.Client{Transport: tr, Timeout: 5 * time.Second}); n != 2 {
			t.Skipf("net/http sent the POST %d times; expected it to resend once", n)
		}
	})
	t.Run("providers.NewHTTPClient does not", func(t *testing.T) {
		n, err := send(t, providers.NewHTTPClient(5*time.Second))
		if n != 1 || err == nil {
			t.Errorf("POST arrived %d times, err %v; want once and an error", n, err)
		}
	})
}
