package config

import (
	"strings"
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
	if c.Store.Driver != "sqlite" || c.Store.DSN != "data/x.db" || c.Merchants[0].APIKeys[0] != "sk_1" {
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
		{"unknown top key", base + "sandboxx: true\n", "line 2: field sandboxx not found"},
		{"unknown nested key", base + "server: {lisen: x}\n", "line 2: field lisen not found"},
		{"bad duration", base + "providers: {stripe: {timeout: soon}}\n", "not a duration"},
		{"broken yaml", base + "server: [\n", "c.yaml: yaml: line"},
		{"unknown kind", base + "providers: {paypal: {}}\n", `unknown kind "paypal"`},
		{"bad driver", base + "store: {driver: mysql}\n", "store.driver"},
		{"no merchants", "sandbox: true\n", "at least one merchant"},
		{"shared key", "merchants: [{id: a, api_keys: [k]}, {id: b, api_keys: [k]}]\n", "also belongs to a"},
		{"webhook without secret", "merchants: [{id: a, api_keys: [k], webhook_url: 'http://x'}]\n", "needs webhook_secret"},
		{"ratio", base + "providers: {stripe: {breaker: {failure_ratio: 2}}}\n", "failure_ratio"},
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

func TestShippedConfigParses(t *testing.T) {
	c, err := Load("../../config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !c.Sandbox || len(c.ProviderNames()) != 6 || c.Merchants[0].APIKeys[0] != "sk_sandbox_demo" {
		t.Fatalf("shipped config: sandbox=%v providers=%v", c.Sandbox, c.ProviderNames())
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
