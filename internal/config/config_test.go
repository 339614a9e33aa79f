package config

import (
	"strings"

	"github.com/payrouter/payrouter/internal/apikey"
	"testing"
	"time"
)

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestParseExpandsEnvAndDefaults(t *testing.T) {
	src := `
server: {listen: ":9090"}
store: {driver: "${DRIVER:-sqlite}", dsn: "${DSN:-data/x.db}"}
merchants:
  - {id: demo, api_keys: ["${KEY}"], webhook_secret: s}
providers:
  stripe: {secret_key: "${STRIPE_SECRET_KEY}", timeout: 3s}
  stripe_sg: {kind: stripe}
`
	c, err := Parse("c.yaml", []byte(src), env(map[string]string{"KEY": "sk_1", "STRIPE_SECRET_KEY": "sk_test_abc"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Store.Driver != "sqlite" || c.Store.DSN != "data/x.db" || c.Merchants[0].APIKeys[0] != PlainKey("sk_1") {
		t.Errorf("expansion: %+v %+v", c.Store, c.Merchants)
	}
	if c.Providers["stripe"].SecretKey != "sk_test_abc" || c.Providers["stripe"].Timeout.D(0) != 3*time.Second {
		t.Errorf("provider: %+v", c.Providers["stripe"])
	}
	if c.Providers["stripe_sg"].Kind != "stripe" || c.Providers["stripe"].Kind != "stripe" {
		t.Errorf("kind defaults: %+v", c.Providers)
	}
	if c.Router.MaxAttempts != 3 || c.Redis.Stream != "payrouter:events" {
		t.Errorf("defaults: %+v %+v", c.Router, c.Redis)
	}
}

func TestParseErrors(t *testing.T) {
	base := "merchants: [{id: demo, api_keys: [k], webhook_secret: s}]\n"
	tests := []struct{ name, src, want string }{
		{"unknown top key", base + "sandboxx: true\n", "line 2: unknown key sandboxx (did you mean sandbox?)"},
		{"unknown nested key", base + "server: {lisen: x}\n", "line 2: unknown key server.lisen (did you mean server.listen?)"},
		{"unknown deep key", base + "providers:\n  stripe:\n    breaker: {failure_rate: 0.5}\n", "line 4: unknown key providers.stripe.breaker.failure_rate (did you mean providers.stripe.breaker.failure_ratio?)"},
		{"unknown key in a list", "merchants:\n  - id: a\n    api_keys: [k]\n    webhok_url: x\n", "line 4: unknown key merchants[0].webhok_url (did you mean merchants[0].webhook_url?)"},
		{"unknown key far from any", base + "server: {zzz: 1}\n", "unknown key server.zzz (known here: listen, public_url"},
		{"type error at its line", base + "\n\nrouter:\n  max_attempts: many\n", "line 5: cannot unmarshal"},
		{"bad duration", base + "providers: {stripe: {timeout: soon}}\n", "not a duration"},
		{"broken yaml", base + "server: [\n", "c.yaml: yaml: line"},
		{"unknown kind", base + "providers: {paypal: {}}\n", `unknown kind "paypal"`},
		{"bad driver", base + "store: {driver: mysql}\n", "store.driver"},
		{"no merchants", "sandbox: true\n", "at least one merchant"},
		{"shared key", "merchants: [{id: a, api_keys: [k]}, {id: b, api_keys: [k]}]\n", "also belongs to a"},
		{"webhook without secret", "merchants: [{id: a, api_keys: [k], webhook_url: 'http://x'}]\n", "needs webhook_secret"},
		{"shared key hashed", "merchants: [{id: a, api_keys: [k]}, {id: b, api_keys: ['" + apikey.Hash("k").String() + "']}]\n", "also belongs to a"},
		{"bad hash", "merchants: [{id: a, api_keys: ['sha256:abc']}]\n", "line 1: api key: a hashed key is sha256: followed by 64 hex digits"},
		{"empty key", "merchants: [{id: a, api_keys: ['']}]\n", "empty key"},
		{"bad expiry", "merchants:\n  - id: a\n    api_keys: [{key: k, expires_at: tomorrow}]\n", `line 3: expires_at "tomorrow" is not an RFC 3339 time`},
		{"unknown key field", "merchants: [{id: a, api_keys: [{key: k, expires: 2027-01-01T00:00:00Z}]}]\n", `no field "expires"`},
		{"negative rate", base + "server: {rate_limit: {rps: -1}}\n", "server.rate_limit"},
		{"tls half", base + "server: {tls: {cert_file: c.pem}}\n", "cert_file and key_file go together"},
		{"sandbox clients", base + "sandbox_clients: [localhost]\n", `sandbox_clients[0]: "localhost" is not a CIDR`},
		{"log level", base + "log: {level: verbose}\n", `log.level: "verbose" is not debug, info, warn or error`},
		{"log format", base + "log: {format: logfmt}\n", `log.format: "logfmt" is not text or json`},
		{"ratio", base + "providers: {stripe: {breaker: {failure_ratio: 2}}}\n", "failure_ratio"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("c.yaml", []byte(tt.src), env(nil))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.want)
			}
			if !strings.HasPrefix(err.Error(), "c.yaml") {
				t.Errorf("error does not name the file: %v", err)
			}
		})
	}
}

func TestAPIKeyForms(t *testing.T) {
	src := `
merchants:
  - id: demo
    api_keys:
      - sk_plain
      - ` + apikey.Hash("sk_hashed").String() + `
      - {key: sk_old, expires_at: 2027-01-01T00:00:00Z}
      - {key: "` + apikey.Hash("sk_old_hashed").String() + `", expires_at: "2027-02-01T00:00:00+07:00"}
    rate_limit: {rps: 5}
  - id: acme
    api_keys: [sk_acme]
server: {rate_limit: {rps: 50, burst: 80}}
`
	c, err := Parse("c.yaml", []byte(src), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	want := []APIKey{
		PlainKey("sk_plain"),
		PlainKey("sk_hashed"),
		{Digest: apikey.Hash("sk_old"), ExpiresAt: time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)},
		{Digest: apikey.Hash("sk_old_hashed"), ExpiresAt: time.Date(2027, 1, 31, 17, 0, 0, 0, time.UTC)},
	}
	got := c.Merchants[0].APIKeys
	if len(got) != len(want) {
		t.Fatalf("got %d keys, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i].Digest != want[i].Digest || !got[i].ExpiresAt.Equal(want[i].ExpiresAt) {
			t.Errorf("key %d = %v, want %v", i, got[i], want[i])
		}
	}
	def := *c.Server.RateLimit
	if def != (RateLimit{RPS: 50, Burst: 80}) {
		t.Errorf("server rate limit = %+v", def)
	}
	if rl := c.Merchants[0].RateLimitOr(def); rl != (RateLimit{RPS: 5, Burst: 5}) {
		t.Errorf("demo rate limit = %+v, want rps 5 burst 5 (burst defaults to rps)", rl)
	}
	if rl := c.Merchants[1].RateLimitOr(def); rl != def {
		t.Errorf("acme rate limit = %+v, want the server default", rl)
	}
}

func TestDefaultsForLimitsAndSandboxClients(t *testing.T) {
	c, err := Parse("c.yaml", []byte("merchants: [{id: a, api_keys: [k]}]\nsandbox_clients: ['', '${UNSET}']\n"), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if *c.Server.RateLimit != DefaultRateLimit {
		t.Errorf("rate limit default = %+v", *c.Server.RateLimit)
	}
	if strings.Join(c.SandboxClients, ",") != "127.0.0.0/8,::1/128" {
		t.Errorf("sandbox clients default = %v, want loopback only", c.SandboxClients)
	}
}

func TestJSONLogsByDefaultOutsideSandbox(t *testing.T) {
	for _, tt := range []struct {
		src  string
		want bool
	}{
		{"sandbox: true\n", false},
		{"sandbox: false\n", true},
		{"sandbox: true\nlog: {format: json}\n", true},
		{"sandbox: false\nlog: {format: text}\n", false},
	} {
		c, err := Parse("c.yaml", []byte("merchants: [{id: a, api_keys: [k]}]\n"+tt.src), env(nil))
		if err != nil {
			t.Fatal(err)
		}
		if c.JSONLogs() != tt.want {
			t.Errorf("%q: JSONLogs = %v, want %v", tt.src, !tt.want, tt.want)
		}
	}
}

func TestShippedConfigParses(t *testing.T) {
	c, err := Load("../../config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !c.Sandbox || len(c.ProviderNames()) != 6 || c.Merchants[0].APIKeys[0] != PlainKey("sk_sandbox_demo") {
		t.Fatalf("shipped config: sandbox=%v providers=%v", c.Sandbox, c.ProviderNames())
	}
}
