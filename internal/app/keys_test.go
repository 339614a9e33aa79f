package app_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/payrouter/payrouter"
	"github.com/payrouter/payrouter/internal/apikey"
	"github.com/payrouter/payrouter/internal/app"
	"github.com/payrouter/payrouter/internal/app/apptest"
	"github.com/payrouter/payrouter/internal/config"
)

// get sends GET path with key and returns the response (body closed).
func getWithKey(t *testing.T, c *http.Client, url, key string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

func TestAPIKeysHashedRotatingAndExpired(t *testing.T) {
	past, future := time.Now().Add(-time.Minute), time.Now().Add(time.Hour)
	ti := apptest.StartSandbox(t, filepath.Join(t.TempDir(), "p.db"), func(c *config.Config) {
		c.Merchants = append(c.Merchants, config.Merchant{ID: "rotating", WebhookSecret: "x", APIKeys: []config.APIKey{
			{Digest: apikey.Hash("sk_expired"), ExpiresAt: past},
			{Digest: apikey.Hash("sk_retiring"), ExpiresAt: future},
			{Digest: apikey.Hash("sk_new")},
		}})
	})
	// The payment belongs to demo; each rotating key sees its own (empty) list.
	tests := []struct {
		key  string
		want int
	}{
		{"sk_sandbox_demo", 200},
		{"sk_retiring", 200}, // still inside its expiry: both keys work during the rotation
		{"sk_new", 200},
		{"sk_expired", 401},
		{apikey.Hash("sk_new").String(), 401}, // the digest itself is not a key
		{"sk_ne", 401},                        // a prefix of a key is no key
	}
	for _, tt := range tests {
		resp, b := getWithKey(t, http.DefaultClient, ti.URL+"/v1/payments", tt.key)
		if resp.StatusCode != tt.want {
			t.Errorf("key %q: got %d %s, want %d", tt.key, resp.StatusCode, b, tt.want)
		}
		if tt.want == 401 && !strings.Contains(string(b), `"api_key_invalid"`) {
			t.Errorf("key %q: body %s, want api_key_invalid", tt.key, b)
		}
	}
}

func TestHashedKeyFromConfigFile(t *testing.T) {
	src, err := os.ReadFile(apptest.RepoFile("config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	hashed := strings.Replace(string(src), `api_keys: ["sk_sandbox_demo"]`,
		`api_keys: ["`+apikey.Hash("sk_from_hash").String()+`", {key: sk_sandbox_demo, expires_at: 2020-01-01T00:00:00Z}]`, 1)
	if hashed == string(src) {
		t.Fatal("config.yaml no longer has the demo api_keys line this test rewrites")
	}
	cfg, err := config.Parse("c.yaml", []byte(hashed), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	ti := apptest.StartSandbox(t, filepath.Join(t.TempDir(), "p.db"), func(c *config.Config) { c.Merchants = cfg.Merchants })
	if resp, b := getWithKey(t, http.DefaultClient, ti.URL+"/v1/payments", "sk_from_hash"); resp.StatusCode != 200 {
		t.Errorf("hashed key: %d %s", resp.StatusCode, b)
	}
	if resp, _ := getWithKey(t, http.DefaultClient, ti.URL+"/v1/payments", "sk_sandbox_demo"); resp.StatusCode != 401 {
		t.Errorf("expired plain key: %d, want 401", resp.StatusCode)
	}
}

func TestRateLimitPerMerchant(t *testing.T) {
	ti := apptest.StartSandbox(t, filepath.Join(t.TempDir(), "p.db"), func(c *config.Config) {
		// A budget that cannot refill within the test: 1 per hour, burst 3.
		c.Merchants[0].RateLimit = &config.RateLimit{RPS: 0}
		c.Server.RateLimit = &config.RateLimit{RPS: 100, Burst: 200}
		c.Merchants = append(c.Merchants, config.Merchant{ID: "small", WebhookSecret: "x",
			APIKeys: []config.APIKey{config.PlainKey("sk_small")}, RateLimit: &config.RateLimit{RPS: 1, Burst: 3}})
	})
	for i := range 3 {
		if resp, b := getWithKey(t, http.DefaultClient, ti.URL+"/v1/payments", "sk_small"); resp.StatusCode != 200 {
			t.Fatalf("request %d within the burst: %d %s", i, resp.StatusCode, b)
		}
	}
	resp, b := getWithKey(t, http.DefaultClient, ti.URL+"/v1/payments", "sk_small")
	if resp.StatusCode != 429 {
		t.Fatalf("over budget: %d %s, want 429", resp.StatusCode, b)
	}
	var e struct {
		Error payrouter.Error `json:"error"`
	}
	if err := json.Unmarshal(b, &e); err != nil || e.Error.Type != payrouter.ErrRateLimited {
		t.Errorf("body %s, want type rate_limited", b)
	}
	if ra := resp.Header.Get("Retry-After"); ra != "1" {
		t.Errorf("Retry-After = %q, want 1 (second, at 1 rps)", ra)
	}
	// demo has rps 0 (unlimited) of its own and another budget anyway.
	for range 20 {
		if resp, _ := getWithKey(t, http.DefaultClient, ti.URL+"/v1/payments", "sk_sandbox_demo"); resp.StatusCode != 200 {
			t.Fatalf("demo limited by small's budget: %d", resp.StatusCode)
		}
	}
	// A bad key is refused before any budget is spent or consulted.
	if resp, _ := getWithKey(t, http.DefaultClient, ti.URL+"/v1/payments", "sk_wrong"); resp.StatusCode != 401 {
		t.Errorf("bad key: %d, want 401", resp.StatusCode)
	}
}

func TestSimulatorsOnlyForSandboxClients(t *testing.T) {
	open := apptest.StartSandbox(t, filepath.Join(t.TempDir(), "a.db"), nil)
	if resp, b := getWithKey(t, http.DefaultClient, open.URL+"/sim/stripe/_ledger", ""); resp.StatusCode != 200 {
		t.Fatalf("loopback client (default sandbox_clients): %d %s", resp.StatusCode, b)
	}
	// This test's client is loopback; a list without loopback refuses it.
	closed := apptest.StartSandbox(t, filepath.Join(t.TempDir(), "b.db"), func(c *config.Config) {
		c.SandboxClients = []string{"10.0.0.0/8"}
	})
	for _, path := range []string{"/sim/stripe/_ledger", "/sim/gopay/checkout/x"} {
		if resp, b := getWithKey(t, http.DefaultClient, closed.URL+path, ""); resp.StatusCode != 403 || !strings.Contains(string(b), "sandbox_clients") {
			t.Errorf("%s from a client outside sandbox_clients: %d %s, want 403", path, resp.StatusCode, b)
		}
	}
	req, _ := http.NewRequest("POST", closed.URL+"/sim/gopay/_pay/x", strings.NewReader(`{"outcome":"success"}`))
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 403 {
		t.Errorf("_pay from outside sandbox_clients: %v %v, want 403", resp.StatusCode, err)
	}
	// The API itself is not affected.
	if resp, _ := getWithKey(t, http.DefaultClient, closed.URL+"/v1/payments", "sk_sandbox_demo"); resp.StatusCode != 200 {
		t.Errorf("API: %d", resp.StatusCode)
	}
}

func TestRequestIDOnEveryResponse(t *testing.T) {
	ti := apptest.StartSandbox(t, filepath.Join(t.TempDir(), "p.db"), nil)
	seen := map[string]bool{}
	for _, path := range []string{"/v1/payments", "/v1/payments/pay_nope", "/healthz", "/nowhere", "/sim/stripe/_ledger"} {
		resp, _ := getWithKey(t, http.DefaultClient, ti.URL+path, "sk_sandbox_demo")
		id := resp.Header.Get("Request-Id")
		if !strings.HasPrefix(id, "req_") || seen[id] {
			t.Errorf("%s (%d): Request-Id %q, want a fresh req_ id", path, resp.StatusCode, id)
		}
		seen[id] = true
	}
	req, _ := http.NewRequest("GET", ti.URL+"/v1/payments", nil)
	req.Header.Set("Authorization", "Bearer nope")
	req.Header.Set("Request-Id", "trace-abc.123")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Get("Request-Id"); got != "trace-abc.123" {
		t.Errorf("client's Request-Id not echoed on a 401: %q", got)
	}
}

// writeCert writes a self-signed certificate for 127.0.0.1 named cn.
func writeCert(t *testing.T, certFile, keyFile, cn string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// servedCN connects afresh and returns the certificate's common name.
func servedCN(t *testing.T, addr string) string {
	t.Helper()
	conn, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true}) // the test reads the cert, it trusts nothing
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].Subject.CommonName
}

func TestTLSCertificateReload(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	writeCert(t, certFile, keyFile, "first")
	ti := apptest.StartSandbox(t, filepath.Join(dir, "p.db"), func(c *config.Config) {
		c.Server.TLS = config.TLS{CertFile: certFile, KeyFile: keyFile}
	})
	if !strings.HasPrefix(ti.URL, "https://") {
		t.Fatalf("URL = %s, want https", ti.URL)
	}
	addr := strings.TrimPrefix(ti.URL, "https://")
	if cn := servedCN(t, addr); cn != "first" {
		t.Fatalf("served %q, want first", cn)
	}
	// A real HTTPS request with the certificate trusted.
	pool := x509.NewCertPool()
	pemBytes, _ := os.ReadFile(certFile)
	pool.AppendCertsFromPEM(pemBytes)
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	if resp, b := getWithKey(t, c, ti.URL+"/healthz", ""); resp.StatusCode != 200 {
		t.Fatalf("https healthz: %d %s", resp.StatusCode, b)
	}

	writeCert(t, certFile, keyFile, "second")
	if cn := servedCN(t, addr); cn != "first" {
		t.Fatalf("certificate changed before the reload: %q", cn)
	}
	if err := ti.ReloadTLS(); err != nil {
		t.Fatal(err)
	}
	if cn := servedCN(t, addr); cn != "second" {
		t.Fatalf("after reload served %q, want second", cn)
	}

	// A broken file is refused and the live certificate stays.
	if err := os.WriteFile(keyFile, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := ti.ReloadTLS(); err == nil || !strings.Contains(err.Error(), "server.tls") {
		t.Fatalf("broken key: err = %v", err)
	}
	if cn := servedCN(t, addr); cn != "second" {
		t.Fatalf("after a refused reload served %q, want second", cn)
	}
}

func TestRateLimitSharedThroughRedis(t *testing.T) {
	url := os.Getenv("PAYROUTER_TEST_REDIS")
	if url == "" {
		t.Skip("PAYROUTER_TEST_REDIS is not set (e.g. redis://127.0.0.1:6379/0): skipping the shared rate limit test")
	}
	prefix := "payrouter-test:" + t.Name() + ":" + time.Now().Format(time.RFC3339Nano) + ":"
	mutate := func(c *config.Config) {
		c.Redis.URL, c.Redis.BreakerPrefix = url, prefix
		c.Merchants = append(c.Merchants, config.Merchant{ID: "small", WebhookSecret: "x",
			APIKeys: []config.APIKey{config.PlainKey("sk_small")}, RateLimit: &config.RateLimit{RPS: 1, Burst: 4}})
	}
	a := apptest.StartSandbox(t, filepath.Join(t.TempDir(), "a.db"), mutate)
	b := apptest.StartSandbox(t, filepath.Join(t.TempDir(), "b.db"), mutate)
	start := time.Now()
	allowed := 0
	for i := range 8 {
		ti := a
		if i%2 == 1 {
			ti = b
		}
		resp, body := getWithKey(t, http.DefaultClient, ti.URL+"/v1/payments", "sk_small")
		switch resp.StatusCode {
		case 200:
			allowed++
		case 429:
		default:
			t.Fatalf("request %d: %d %s", i, resp.StatusCode, body)
		}
	}
	// Alone, each instance would allow its own burst of 4 (8 in all). One
	// shared budget allows 4, plus one per second the loop took.
	if most := 4 + int(time.Since(start)/time.Second); allowed < 4 || allowed > most {
		t.Fatalf("two instances allowed %d of 8, want 4..%d (one budget shared through Redis)", allowed, most)
	}
}

func TestDisabledProviderNamedAsDisabled(t *testing.T) {
	src, err := os.ReadFile(apptest.RepoFile("config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse("config.yaml", src, func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	off := false
	p := cfg.Providers["stripe"]
	p.Enabled = &off
	cfg.Providers["stripe"] = p
	_, err = app.CompileRules(cfg, nil)
	if err == nil || !strings.Contains(err.Error(), `rule "cards": provider "stripe" is disabled (providers.stripe.enabled: false)`) ||
		!strings.Contains(err.Error(), "config.yaml:") || strings.Contains(err.Error(), "unknown") {
		t.Fatalf("err = %v", err)
	}
}
