// Package config reads payrouter's config.yaml. It owns every top-level key
// except rules, default and fees, which package rules parses from the same
// file (both report file:line). ${VAR} in any scalar expands from the
// environment; secrets are never logged (see Redacted).
package config

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/payrouter/payrouter/internal/apikey"
)

// Config is the whole file but rules.
type Config struct {
	Server    Server              `yaml:"server"`
	Store     Store               `yaml:"store"`
	Redis     Redis               `yaml:"redis"`
	Sandbox   bool                `yaml:"sandbox"`
	Merchants []Merchant          `yaml:"merchants"`
	Providers map[string]Provider `yaml:"providers"`
	Router    Router              `yaml:"router"`
	Events    Events              `yaml:"events"`
	Log       Log                 `yaml:"log"`
	Rules     yaml.Node           `yaml:"rules"`   // package rules
	Default   yaml.Node           `yaml:"default"` // package rules
	Fees      yaml.Node           `yaml:"fees"`    // package rules

	// Path and Data are the file read, for package rules and reloads.
	Path string    `yaml:"-"`
	Data []byte    `yaml:"-"`
	Mod  time.Time `yaml:"-"`

	// SandboxClients (sandbox): the CIDRs whose clients may call the
	// simulators at /sim/… (their _pay and checkout mark payments paid
	// without any key). Default loopback only; empty entries (an unset
	// ${VAR}) are skipped. ["0.0.0.0/0", "::/0"] opens them to everyone.
	SandboxClients []string `yaml:"sandbox_clients"`

	// SimURL (sandbox): the simulators of stripe, midtrans and xendit are
	// served by `payrouter sim` at this base URL instead of in this
	// process, so they outlive a router restart (crash tests).
	SimURL string `yaml:"sim_url"`
}

// Server is the HTTP listener.
type Server struct {
	Listen          string   `yaml:"listen"`
	PublicURL       string   `yaml:"public_url"` // base URL providers and customers reach us at
	ShutdownTimeout Duration `yaml:"shutdown_timeout"`
	// TrustProxy: take the client IP for webhook_ips from X-Forwarded-For.
	TrustProxy bool `yaml:"trust_proxy"`
	// TLS: serve HTTPS with this certificate (reloaded on SIGHUP).
	TLS TLS `yaml:"tls"`
	// RateLimit is every merchant's default (merchants[].rate_limit wins).
	RateLimit *RateLimit `yaml:"rate_limit"`
}

// TLS names a PEM certificate (chain) and its key; both or neither.
type TLS struct {
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

// Enabled reports whether a certificate is configured.
func (t TLS) Enabled() bool { return t.CertFile != "" || t.KeyFile != "" }

// RateLimit is a merchant's API budget: rps requests per second
// sustained, bursts up to burst. rps 0 means unlimited.
type RateLimit struct {
	RPS   int `yaml:"rps"`
	Burst int `yaml:"burst"`
}

// DefaultRateLimit applies when server.rate_limit is not set.
var DefaultRateLimit = RateLimit{RPS: 100, Burst: 200}

// Store selects the durable store.
type Store struct {
	Driver string `yaml:"driver"` // sqlite | postgres
	DSN    string `yaml:"dsn"`
	// Synchronous (sqlite): full (durable, default) | normal | off.
	Synchronous string `yaml:"synchronous"`
}

// Redis is optional; empty URL means single node.
type Redis struct {
	URL    string `yaml:"url"`
	Stream string `yaml:"stream"` // event stream name, default payrouter:events
	MaxLen int64  `yaml:"max_len"`
	// BreakerPrefix prefixes the keys of the circuit breakers shared
	// through Redis (default "payrouter:"): instances with the same prefix
	// share breaker state.
	BreakerPrefix string `yaml:"breaker_prefix"`
}

// Merchant is one API customer.
type Merchant struct {
	ID            string   `yaml:"id"`
	APIKeys       []APIKey `yaml:"api_keys"`
	WebhookURL    string   `yaml:"webhook_url"`
	WebhookSecret string   `yaml:"webhook_secret"`
	// RateLimit overrides server.rate_limit for this merchant.
	RateLimit *RateLimit `yaml:"rate_limit"`
}

// RateLimitOr returns the merchant's own limit, else def.
func (m Merchant) RateLimitOr(def RateLimit) RateLimit {
	if m.RateLimit != nil {
		return *m.RateLimit
	}
	return def
}

// APIKey is one active key, held only as its digest: a plain key in the
// file is hashed as it is read. In YAML it is a string (a plain key or
// "sha256:<hex>", see `payrouter keys hash`) or {key, expires_at}, so
// several keys can be live at once while one rotates out.
type APIKey struct {
	Digest    apikey.Digest
	ExpiresAt time.Time // zero: never
}

// PlainKey is an APIKey from a plain key (tests, wiring).
func PlainKey(key string) APIKey { return APIKey{Digest: apikey.Hash(key)} }

// UnmarshalYAML takes "key", "sha256:<hex>" or {key: …, expires_at: RFC3339}.
func (k *APIKey) UnmarshalYAML(n *yaml.Node) error {
	var raw string
	switch n.Kind {
	case yaml.ScalarNode:
		raw = n.Value
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			kn, vn := n.Content[i], n.Content[i+1]
			switch kn.Value {
			case "key":
				raw = vn.Value
			case "expires_at":
				t, err := time.Parse(time.RFC3339, vn.Value)
				if err != nil {
					return fmt.Errorf("line %d: expires_at %q is not an RFC 3339 time like 2027-01-01T00:00:00Z", vn.Line, vn.Value)
				}
				k.ExpiresAt = t
			default:
				return fmt.Errorf("line %d: api key has no field %q (have key, expires_at)", kn.Line, kn.Value)
			}
		}
		if raw == "" {
			return fmt.Errorf("line %d: api key needs key", n.Line)
		}
	default:
		return fmt.Errorf("line %d: an api key is a string or {key, expires_at}", n.Line)
	}
	d, err := apikey.Parse(raw)
	if err != nil {
		return fmt.Errorf("line %d: api key: %w", n.Line, err)
	}
	k.Digest = d
	return nil
}

// Breaker configures a provider's circuit breakers (one per method).
type Breaker struct {
	FailureRatio   float64  `yaml:"failure_ratio"` // a ratio, not money
	MinRequests    uint32   `yaml:"min_requests"`
	OpenFor        Duration `yaml:"open_for"`
	HalfOpenProbes uint32   `yaml:"half_open_probes"`
	Interval       Duration `yaml:"interval"`
}

// Provider is one configured provider. Name is the map key; Kind selects
// the adapter and defaults to the name, so two Stripe accounts can be
// configured as {stripe_us: {kind: stripe}, stripe_sg: {kind: stripe}}.
type Provider struct {
	Kind                  string   `yaml:"kind"`
	Enabled               *bool    `yaml:"enabled"`
	SecretKey             string   `yaml:"secret_key"`
	WebhookSecret         string   `yaml:"webhook_secret"`
	ServerKey             string   `yaml:"server_key"`
	CallbackToken         string   `yaml:"callback_token"`
	ClientID              string   `yaml:"client_id"`
	ClientSecret          string   `yaml:"client_secret"`
	MerchantID            string   `yaml:"merchant_id"`
	ChannelID             string   `yaml:"channel_id"`
	PrivateKeyFile        string   `yaml:"private_key_file"`
	ProviderPublicKeyFile string   `yaml:"provider_public_key_file"`
	Production            bool     `yaml:"production"`
	BaseURL               string   `yaml:"base_url"`
	Timeout               Duration `yaml:"timeout"`
	Breaker               Breaker  `yaml:"breaker"`
	WebhookIPs            []string `yaml:"webhook_ips"`
	SoftDeclines          []string `yaml:"soft_declines"`
}

// IsEnabled defaults to true.
func (p Provider) IsEnabled() bool { return p.Enabled == nil || *p.Enabled }

// Router tunes failover.
type Router struct {
	AttemptTimeout Duration `yaml:"attempt_timeout"` // per provider call, unless the provider sets timeout
	Deadline       Duration `yaml:"deadline"`        // the merchant's whole request
	MaxAttempts    int      `yaml:"max_attempts"`
	ResolveEvery   Duration `yaml:"resolve_every"`
	PaymentTTL     Duration `yaml:"payment_ttl"` // customer-action payments expire after this
	// ResolveBackoff is the resolver's shortest wait between two questions
	// about one payment (it grows with the payment's age, up to 10 min).
	ResolveBackoff Duration `yaml:"resolve_backoff"`
}

// Events tunes merchant webhook delivery.
type Events struct {
	RetryFor    Duration `yaml:"retry_for"` // keep retrying this long, then dead-letter
	Concurrency int      `yaml:"concurrency"`
	// RetryBase is the first retry's longest wait (default 10s); it doubles
	// per attempt up to 1h, with full jitter.
	RetryBase Duration `yaml:"retry_base"`
}

// Log configures slog.
type Log struct {
	Level  string `yaml:"level"`  // debug | info (default) | warn | error
	Format string `yaml:"format"` // text | json; default json, text in sandbox
}

// JSONLogs reports whether logs are JSON: asked for, or by default outside
// sandbox (log collectors parse it; people at a sandbox terminal read text).
func (c *Config) JSONLogs() bool {
	return c.Log.Format == "json" || (c.Log.Format == "" && !c.Sandbox)
}

// Duration is a time.Duration written as "10s" in YAML.
type Duration time.Duration

// UnmarshalYAML parses Go duration syntax.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil || v < 0 {
		return fmt.Errorf("line %d: %q is not a duration like 10s or 500ms", n.Line, n.Value)
	}
	*d = Duration(v)
	return nil
}

// D returns the time.Duration, or def when zero.
func (d Duration) D(def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return time.Duration(d)
}

// Load reads and validates a config file.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	c, err := Parse(path, data, os.LookupEnv)
	if err != nil {
		return nil, err
	}
	if st, err := os.Stat(path); err == nil {
		c.Mod = st.ModTime()
	}
	return c, nil
}

var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(:-([^}]*))?\}`)

// Parse decodes data (named path in errors), expanding ${VAR} and
// ${VAR:-default} in scalars with lookup. Unknown keys are errors.
func Parse(path string, data []byte, lookup func(string) (string, bool)) (*Config, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var missing []string
	expand(&root, lookup, &missing)
	var c Config
	if len(root.Content) > 0 {
		if errs := unknownKeys(&root, reflect.TypeFor[Config](), ""); len(errs) > 0 {
			return nil, fmt.Errorf("%s: %w", path, errors.Join(errs...))
		}
		// Decoded from the tree itself, so errors name the file's lines.
		if err := root.Decode(&c); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
	}
	c.Path, c.Data = path, data
	c.applyDefaults()
	if err := c.validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	_ = missing // unset variables expand to "": a sandbox default needs no keys
	return &c, nil
}

func expand(n *yaml.Node, lookup func(string) (string, bool), missing *[]string) {
	if n.Kind == yaml.ScalarNode && strings.Contains(n.Value, "${") {
		n.Value = envRef.ReplaceAllStringFunc(n.Value, func(m string) string {
			sub := envRef.FindStringSubmatch(m)
			if v, ok := lookup(sub[1]); ok && v != "" {
				return v
			}
			if sub[2] == "" {
				*missing = append(*missing, sub[1])
			}
			return sub[3]
		})
		if n.Tag == "!!null" || n.Value == "" {
			n.Tag = "!!str"
		}
	}
	for _, c := range n.Content {
		expand(c, lookup, missing)
	}
}

func (c *Config) applyDefaults() {
	if c.Server.Listen == "" {
		c.Server.Listen = ":8080"
	}
	if c.Store.Driver == "" {
		c.Store.Driver = "sqlite"
	}
	if c.Store.DSN == "" && c.Store.Driver == "sqlite" {
		c.Store.DSN = "data/payrouter.db"
	}
	if c.Redis.Stream == "" {
		c.Redis.Stream = "payrouter:events"
	}
	if c.Redis.BreakerPrefix == "" {
		c.Redis.BreakerPrefix = "payrouter:"
	}
	if c.Redis.MaxLen == 0 {
		c.Redis.MaxLen = 1_000_000
	}
	if c.Router.MaxAttempts == 0 {
		c.Router.MaxAttempts = 3
	}
	if c.Events.Concurrency == 0 {
		c.Events.Concurrency = 8
	}
	if c.Server.RateLimit == nil {
		d := DefaultRateLimit
		c.Server.RateLimit = &d
	}
	burst := func(rl *RateLimit) {
		if rl != nil && rl.RPS > 0 && rl.Burst == 0 {
			rl.Burst = rl.RPS // one second's budget unless told
		}
	}
	burst(c.Server.RateLimit)
	for i := range c.Merchants {
		burst(c.Merchants[i].RateLimit)
	}
	var clients []string
	for _, cidr := range c.SandboxClients {
		if cidr = strings.TrimSpace(cidr); cidr != "" {
			clients = append(clients, cidr)
		}
	}
	c.SandboxClients = clients
	if len(c.SandboxClients) == 0 {
		c.SandboxClients = []string{"127.0.0.0/8", "::1/128"}
	}
	for name, p := range c.Providers {
		if p.Kind == "" {
			p.Kind = name
		}
		c.Providers[name] = p
	}
}

// Kinds are the provider adapters payrouter has.
var Kinds = []string{"stripe", "midtrans", "xendit", "gopay", "ovo", "dana"}

func (c *Config) validate() error {
	var errs []error
	if c.Store.Driver != "sqlite" && c.Store.Driver != "postgres" {
		errs = append(errs, fmt.Errorf("store.driver: %q is not sqlite or postgres", c.Store.Driver))
	}
	if len(c.Merchants) == 0 {
		errs = append(errs, errors.New("merchants: at least one merchant is required"))
	}
	keys := apikey.NewSet()
	ids := map[string]bool{}
	for i, m := range c.Merchants {
		if m.ID == "" {
			errs = append(errs, fmt.Errorf("merchants[%d].id is required", i))
		}
		if ids[m.ID] {
			errs = append(errs, fmt.Errorf("merchants[%d]: duplicate id %q", i, m.ID))
		}
		ids[m.ID] = true
		for j, k := range m.APIKeys {
			if err := keys.Add(k.Digest, apikey.Entry{Owner: m.ID, ExpiresAt: k.ExpiresAt}); err != nil {
				errs = append(errs, fmt.Errorf("merchants[%d] (%s): api_keys[%d]: %w", i, m.ID, j, err))
			}
		}
		if rl := m.RateLimit; rl != nil && (rl.RPS < 0 || rl.Burst < 0) {
			errs = append(errs, fmt.Errorf("merchants[%d] (%s): rate_limit: rps and burst must not be negative", i, m.ID))
		}
		if m.WebhookURL != "" && m.WebhookSecret == "" {
			errs = append(errs, fmt.Errorf("merchants[%d] (%s): webhook_url needs webhook_secret", i, m.ID))
		}
	}
	switch c.Log.Level {
	case "", "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("log.level: %q is not debug, info, warn or error", c.Log.Level))
	}
	switch c.Log.Format {
	case "", "text", "json":
	default:
		errs = append(errs, fmt.Errorf("log.format: %q is not text or json", c.Log.Format))
	}
	if rl := c.Server.RateLimit; rl.RPS < 0 || rl.Burst < 0 {
		errs = append(errs, errors.New("server.rate_limit: rps and burst must not be negative"))
	}
	if t := c.Server.TLS; t.Enabled() && (t.CertFile == "" || t.KeyFile == "") {
		errs = append(errs, errors.New("server.tls: cert_file and key_file go together"))
	}
	for i, cidr := range c.SandboxClients {
		if _, err := netip.ParsePrefix(cidr); err != nil {
			errs = append(errs, fmt.Errorf("sandbox_clients[%d]: %q is not a CIDR like 127.0.0.0/8", i, cidr))
		}
	}
	names := make([]string, 0, len(c.Providers))
	for n := range c.Providers {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		p := c.Providers[n]
		known := false
		for _, k := range Kinds {
			known = known || k == p.Kind
		}
		if !known {
			errs = append(errs, fmt.Errorf("providers.%s: unknown kind %q (have %s)", n, p.Kind, strings.Join(Kinds, ", ")))
		}
		if r := p.Breaker.FailureRatio; r < 0 || r > 1 {
			errs = append(errs, fmt.Errorf("providers.%s.breaker.failure_ratio must be within 0..1", n))
		}
	}
	return errors.Join(errs...)
}

// ProviderNames returns the enabled providers, sorted.
func (c *Config) ProviderNames() []string {
	var names []string
	for n, p := range c.Providers {
		if p.IsEnabled() {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return names
}
