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
		{"trust_proxy without proxies", base + "server: {trust_proxy: true}\n", "server.trusted_proxies"},
		{"idempotency retention under a day", base + "idempotency: {retention: 23h}\n", "idempotency.retention"},
		{"idempotency stale before the deadline", base + "router: {deadline: 30s}\nidempotency: {stale_after: 30s}\n", "idempotency.stale_after"},
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
	c, err := Parse("c.yaml", []byte("merchants: [{id: a, api_keys: [k]}]\nsandbox_clients: ['', '${UNSET:-}']\n"), env(nil))
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

func TestEnvExpansion(t *testing.T) {
	const merchants = "merchants: [{id: demo, api_keys: [\"${KEY:-k}\"], webhook_secret: s}]\n"
	tests := []struct {
		name, src string
		env       map[string]string
		want      string // error substring; "" = parses
		check     func(*Config) bool
	}{
		{"unset outside sandbox names all", merchants + "store: {dsn: \"${DSN}\"}\nproviders: {stripe: {secret_key: \"${STRIPE_SECRET_KEY}\", webhook_secret: \"${STRIPE_WEBHOOK_SECRET}\"}}\n",
			nil, "environment variables not set", nil},
		{"unset in sandbox is empty", "sandbox: true\n" + merchants + "providers: {stripe: {secret_key: \"${STRIPE_SECRET_KEY}\"}}\n",
			nil, "", func(c *Config) bool { return c.Providers["stripe"].SecretKey == "" }},
		{"set but empty is set", merchants + "providers: {stripe: {secret_key: \"${STRIPE_SECRET_KEY}\"}}\n",
			map[string]string{"STRIPE_SECRET_KEY": ""}, "", nil},
		{"default when unset", merchants + "redis: {url: \"${REDIS_URL:-redis://r:6379/0}\"}\n",
			nil, "", func(c *Config) bool { return c.Redis.URL == "redis://r:6379/0" }},
		{"default when empty", merchants + "redis: {url: \"${REDIS_URL:-redis://r}\"}\n",
			map[string]string{"REDIS_URL": ""}, "", func(c *Config) bool { return c.Redis.URL == "redis://r" }},
		{"empty default", merchants + "redis: {url: \"${REDIS_URL:-}\"}\n",
			nil, "", func(c *Config) bool { return c.Redis.URL == "" }},
		{"value beats default", merchants + "redis: {url: \"${REDIS_URL:-x}\"}\n",
			map[string]string{"REDIS_URL": "redis://set"}, "", func(c *Config) bool { return c.Redis.URL == "redis://set" }},
		{"required with message", "sandbox: true\n" + merchants + "store: {dsn: \"${DSN:?set DSN to the postgres URL}\"}\n",
			nil, "line 3: DSN: set DSN to the postgres URL", nil},
		{"required empty", merchants + "store: {dsn: \"${DSN:?}\"}\n",
			map[string]string{"DSN": ""}, "DSN: must be set", nil},
		{"required set", merchants + "store: {dsn: \"${DSN:?needed}\"}\n",
			map[string]string{"DSN": "x.db"}, "", func(c *Config) bool { return c.Store.DSN == "x.db" }},
		{"several in one value", merchants + "store: {dsn: \"${A:-a}/${B:-b}\"}\n",
			nil, "", func(c *Config) bool { return c.Store.DSN == "a/b" }},
		{"malformed", merchants + "store: {dsn: \"${DSN\"}\n", nil, "malformed variable reference", nil},
		{"malformed name", "sandbox: true\n" + merchants + "store: {dsn: \"${1DSN}\"}\n", nil, "malformed variable reference", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse("c.yaml", []byte(tt.src), env(tt.env))
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if tt.check != nil && !tt.check(c) {
					t.Errorf("wrong expansion: %+v %+v %+v", c.Store, c.Redis, c.Providers)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
	// Every unset variable is named at once, with its line.
	_, err := Parse("c.yaml", []byte(tests[0].src), env(nil))
	for _, name := range []string{"DSN (line 2)", "STRIPE_SECRET_KEY (line 3)", "STRIPE_WEBHOOK_SECRET (line 3)"} {
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("err = %v, want it to name %s", err, name)
		}
	}
}

func TestDuplicateAndCaseVariantKeys(t *testing.T) {
	base := "merchants: [{id: demo, api_keys: [k], webhook_secret: s}]\n"
	for _, src := range []string{
		base + "server: {listen: \":1\"}\nserver: {listen: \":2\"}\n",
		base + "server: {listen: \":1\"}\nServer: {listen: \":2\"}\n",
		base + "server: {listen: \":1\", LISTEN: \":2\"}\n",
		base + "providers: {stripe: {}, Stripe: {}}\n",
		base + "fees: {stripe: {card: {fixed: {USD: 30, usd: 1}}}}\n",
	} {
		if _, err := Parse("c.yaml", []byte(src), env(nil)); err == nil {
			t.Errorf("accepted:\n%s", src)
		}
	}
	if _, err := Parse("c.yaml", []byte(base+"server: {listen: \":1\", read_timeout: 5s, max_body_bytes: 4096}\n"), env(nil)); err != nil {
		t.Errorf("distinct keys refused: %v", err)
	}
}

func TestBodyLimitKeys(t *testing.T) {
	base := "merchants: [{id: demo, api_keys: [k], webhook_secret: s}]\n"
	c, err := Parse("c.yaml", []byte(base), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.Server.ReadTimeout.D(0) != 10*time.Second || c.Server.MaxBodyBytes != 64<<10 || c.Server.MaxWebhookBodyBytes != 1<<20 {
		t.Errorf("defaults: %+v", c.Server)
	}
	c, err = Parse("c.yaml", []byte(base+"server: {read_timeout: 3s, max_body_bytes: 8192, max_webhook_body_bytes: 65536}\n"), env(nil))
	if err != nil || c.Server.ReadTimeout.D(0) != 3*time.Second || c.Server.MaxBodyBytes != 8192 || c.Server.MaxWebhookBodyBytes != 65536 {
		t.Errorf("set: %v %+v", err, c)
	}
	for _, bad := range []string{"server: {max_body_bytes: 10}\n", "server: {max_body_bytes: 99999999}\n", "server: {read_timeout: -1s}\n"} {
		if _, err := Parse("c.yaml", []byte(base+bad), env(nil)); err == nil {
			t.Errorf("accepted %s", bad)
		}
	}
}

// FuzzParse: no input makes the loader panic, and whatever it accepts has
// no unset variable left unexpanded outside sandbox.
func FuzzParse(f *testing.F) {
	seeds := []string{
		"merchants: [{id: demo, api_keys: [k], webhook_secret: s}]\n",
		"sandbox: true\nmerchants: [{id: demo, api_keys: [\"${KEY}\"]}]\n",
		"merchants: [{id: demo, api_keys: [\"${KEY:-k}\"]}]\nstore: {dsn: \"${DSN:?set it}\"}\n",
		"server: {listen: \":1\"}\nServer: {}\n",
		"merchants: [{id: a, api_keys: [\"${A}${B:-}\"]}]\n",
		"merchants: [{id: a, api_keys: [k], webhook_secret: \"${SECRET}${SET}\"}]\n",
		"{",
	}
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		c, err := Parse("c.yaml", []byte(src), env(map[string]string{"SET": "v"}))
		if err != nil {
			return
		}
		if !c.Sandbox {
			for _, m := range c.Merchants {
				for _, v := range []string{m.ID, m.WebhookURL, m.WebhookSecret} {
					if envRef.MatchString(v) {
						t.Fatalf("reference left unexpanded: %q", v)
					}
				}
			}
		}
	})
}

func TestNestedReferenceRefused(t *testing.T) {
	src := "sandbox: true\nmerchants: [{id: demo, api_keys: [\"${A:-${B}}\"]}]\n"
	if _, err := Parse("c.yaml", []byte(src), env(nil)); err == nil || !strings.Contains(err.Error(), "cannot hold another") {
		t.Fatalf("err = %v", err)
	}
}

func TestTrustedProxies(t *testing.T) {
	c, err := Parse("c.yaml", []byte("merchants: [{id: demo, api_keys: [k]}]\nserver: {trusted_proxies: [10.0.0.0/8, 192.0.2.7]}\n"), env(nil))
	if err != nil || len(c.Server.TrustedProxies) != 2 {
		t.Fatalf("Parse = %+v, %v; want two trusted proxies", c, err)
	}
}

func TestIdempotencySettingsAccepted(t *testing.T) {
	src := "merchants: [{id: demo, api_keys: [k], webhook_secret: s}]\nrouter: {deadline: 3s}\nidempotency: {retention: 24h, purge_every: 10m, stale_after: 4s}\n"
	c, err := Parse("c.yaml", []byte(src), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.Idempotency.Retention.D(0) != 24*time.Hour || c.Idempotency.PurgeEvery.D(0) != 10*time.Minute || c.Idempotency.StaleAfter.D(0) != 4*time.Second {
		t.Errorf("idempotency = %+v", c.Idempotency)
	}
}
