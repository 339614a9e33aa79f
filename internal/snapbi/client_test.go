package snapbi

import (
	"context"
	"crypto/rsa"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/payrouter/payrouter/providers"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// fakeWallet is a minimal SNAP server for client tests: it checks the
// token signature and the transaction signature, and answers what the
// test scripts.
type fakeWallet struct {
	t      *testing.T
	pub    *rsa.PublicKey
	mu     sync.Mutex
	tokens int
	calls  int
	answer func(call int) (int, string) // transaction answer
}

func (f *fakeWallet) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	defer f.mu.Unlock()
	if r.URL.Path == "/v1.0/access-token/b2b" {
		f.tokens++
		ts := r.Header.Get("X-TIMESTAMP")
		if err := VerifyRSA(f.pub, AccessTokenStringToSign(r.Header.Get("X-CLIENT-KEY"), ts), r.Header.Get("X-SIGNATURE")); err != nil {
			w.WriteHeader(401)
			io.WriteString(w, `{"responseCode":"4017300","responseMessage":"Unauthorized. Signature"}`)
			return
		}
		io.WriteString(w, `{"responseCode":"2007300","responseMessage":"Successful","accessToken":"tok`+string(rune('0'+f.tokens))+`","tokenType":"Bearer","expiresIn":"900"}`)
		return
	}
	f.calls++
	sts, err := StringToSign(r.Method, r.URL.Path, body, r.Header.Get("X-TIMESTAMP"))
	if err != nil || VerifyRSA(f.pub, sts, r.Header.Get("X-SIGNATURE")) != nil {
		f.t.Errorf("transaction signature does not verify")
	}
	for _, h := range []string{"X-PARTNER-ID", "X-EXTERNAL-ID", "CHANNEL-ID", "Authorization"} {
		if r.Header.Get(h) == "" {
			f.t.Errorf("header %s missing", h)
		}
	}
	status, resp := f.answer(f.calls)
	w.WriteHeader(status)
	io.WriteString(w, resp)
}

func newTestClient(t *testing.T, base string, clk *clock) (*Client, *rsa.PrivateKey) {
	t.Helper()
	partner, wallet, err := GenerateSandboxKeys()
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewClient(Config{BaseURL: base, ClientID: "cid", PrivateKey: partner, ProviderPublicKey: &wallet.PublicKey,
		ChannelID: "95221", AccessTokenPath: "/v1.0/access-token/b2b", Now: clk.Now, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return c, partner
}

func TestAccessTokenCachingAndRefresh(t *testing.T) {
	clk := &clock{t: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)}
	f := &fakeWallet{t: t, answer: func(call int) (int, string) {
		if call == 3 {
			return 401, `{"responseCode":"4015401","responseMessage":"Invalid Token (B2B)"}`
		}
		return 200, `{"responseCode":"2005500","responseMessage":"Successful"}`
	}}
	srv := httptest.NewServer(f)
	defer srv.Close()
	c, partner := newTestClient(t, srv.URL, clk)
	f.pub = &partner.PublicKey
	ctx := context.Background()
	do := func() error {
		return c.Do(ctx, Request{Path: "/v1.0/debit/status", ExternalID: RandomExternalID(), Body: map[string]string{"a": "b"}}, nil)
	}
	steps := []struct {
		name       string
		before     func()
		wantTokens int
		wantCalls  int
	}{
		{"first call fetches a token", nil, 1, 1},
		{"second call reuses it", nil, 1, 2},
		{"401 refreshes once and resends", nil, 2, 4},
		{"expiry refetches", func() { clk.Add(15 * time.Minute) }, 3, 5},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			if s.before != nil {
				s.before()
			}
			if err := do(); err != nil {
				t.Fatalf("Do = %v", err)
			}
			if f.tokens != s.wantTokens || f.calls != s.wantCalls {
				t.Errorf("tokens=%d calls=%d, want %d %d", f.tokens, f.calls, s.wantTokens, s.wantCalls)
			}
		})
	}
}

func TestDoErrors(t *testing.T) {
	clk := &clock{t: time.Now()}
	tests := []struct {
		name      string
		status    int
		body      string
		wantClass providers.Class
		wantCode  string
	}{
		{"always 401", 401, `{"responseCode":"4015400","responseMessage":"Unauthorized"}`, providers.Unavailable, providers.CodeCredentialsRefused},
		{"insufficient funds", 403, `{"responseCode":"4035414","responseMessage":"Insufficient Funds"}`, providers.Declined, "insufficient_funds"},
		{"plain 503 without SNAP body", 503, `{"error":"down"}`, providers.Unavailable, "unavailable"},
		{"general error", 500, `{"responseCode":"5005400","responseMessage":"General Error"}`, providers.Ambiguous, "provider_error"},
		{"200 with garbage", 200, `not json`, providers.Ambiguous, "unexpected_response"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeWallet{t: t, answer: func(int) (int, string) { return tt.status, tt.body }}
			srv := httptest.NewServer(f)
			defer srv.Close()
			c, partner := newTestClient(t, srv.URL, clk)
			f.pub = &partner.PublicKey
			err := c.Do(context.Background(), Request{Path: "/x", ExternalID: "1", Body: map[string]string{}}, &struct{}{})
			var pe *providers.Error
			if !errors.As(err, &pe) || pe.Class != tt.wantClass || pe.Code != tt.wantCode {
				t.Fatalf("Do = %v, want %s/%s", err, tt.wantClass, tt.wantCode)
			}
		})
	}
}

func TestTokenFailureIsNeverAmbiguous(t *testing.T) {
	clk := &clock{t: time.Now()}
	// A closed port: connection refused.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(300 * time.Millisecond)
	}))
	defer hang.Close()
	for _, tt := range []struct{ name, base string }{{"refused", "http://" + addr}, {"timeout", hang.URL}} {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := newTestClient(t, tt.base, clk)
			c.hc.Timeout = 100 * time.Millisecond
			_, err := c.AccessToken(context.Background())
			if got := providers.ClassOf(err); got != providers.Unavailable {
				t.Errorf("class = %s (%v), want unavailable: no payment was sent", got, err)
			}
		})
	}
}

func TestNewClientValidation(t *testing.T) {
	partner, wallet, err := GenerateSandboxKeys()
	if err != nil {
		t.Fatal(err)
	}
	good := Config{BaseURL: "http://x", ClientID: "c", PrivateKey: partner, ProviderPublicKey: &wallet.PublicKey, AccessTokenPath: "/t"}
	tests := []struct {
		name string
		mod  func(*Config)
	}{
		{"no base", func(c *Config) { c.BaseURL = "" }},
		{"no client id", func(c *Config) { c.ClientID = "" }},
		{"no private key", func(c *Config) { c.PrivateKey = nil }},
		{"no wallet key", func(c *Config) { c.ProviderPublicKey = nil }},
		{"symmetric without secret", func(c *Config) { c.Scheme = Symmetric }},
		{"unknown scheme", func(c *Config) { c.Scheme = "rot13" }},
		{"symmetric without a token", func(c *Config) { c.Scheme, c.ClientSecret, c.AccessTokenPath = Symmetric, "s", "" }},
		{"relative base", func(c *Config) { c.BaseURL = "/sim/dana" }},
		{"base with a query", func(c *Config) { c.BaseURL = "http://x/sim?a=1" }},
	}
	if _, err := NewClient(good); err != nil {
		t.Fatalf("good config: %v", err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := good
			tt.mod(&cfg)
			if _, err := NewClient(cfg); err == nil {
				t.Error("NewClient accepted an invalid config")
			}
		})
	}
}

// Without an access-token path (DANA's Payment Gateway) the client asks
// for no token and sends no Authorization; with a path prefix in BaseURL
// it signs the full path it sends to, prefix included (as DANA's SDK
// signs url.Parse(endpoint).Path).
func TestNoTokenAndFullPathSigned(t *testing.T) {
	partner, wallet, err := GenerateSandboxKeys()
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		paths = append(paths, r.URL.Path)
		body, _ := io.ReadAll(r.Body)
		if a := r.Header.Get("Authorization"); a != "" {
			t.Errorf("Authorization %q sent without a token endpoint", a)
		}
		sts, _ := StringToSign(r.Method, r.URL.Path, body, r.Header.Get("X-TIMESTAMP"))
		if err := VerifyRSA(&partner.PublicKey, sts, r.Header.Get("X-SIGNATURE")); err != nil {
			t.Errorf("signature over the full path %s: %v", r.URL.Path, err)
		}
		io.WriteString(w, `{"responseCode":"2005500","responseMessage":"Successful"}`)
	}))
	defer srv.Close()
	c, err := NewClient(Config{BaseURL: srv.URL + "/sim/dana/", ClientID: "cid", PrivateKey: partner, ProviderPublicKey: &wallet.PublicKey, ChannelID: "95221"})
	if err != nil {
		t.Fatal(err)
	}
	if c.UsesAccessToken() {
		t.Error("UsesAccessToken with no AccessTokenPath")
	}
	if got := c.SignedPath("/payment-gateway/v1.0/debit/status.htm"); got != "/sim/dana/payment-gateway/v1.0/debit/status.htm" {
		t.Errorf("SignedPath = %q", got)
	}
	if err := c.Do(context.Background(), Request{Path: "/payment-gateway/v1.0/debit/status.htm", ExternalID: "1", Body: map[string]string{"a": "b"}}, nil); err != nil {
		t.Fatal(err)
	}
	if len(paths) != 1 || paths[0] != "/sim/dana/payment-gateway/v1.0/debit/status.htm" {
		t.Errorf("requests went to %v, want one to the status path under the prefix", paths)
	}
}
