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
	// Idempotency tunes the Idempotency-Key records of POSTs under /v1.
	Idempotency Idempotency `yaml:"idempotency"`
	Log         Log         `yaml:"log"`
	Checkout    Checkout    `yaml:"checkout"`
	Ops         Ops         `yaml:"ops"`
	// Reconciliation: settlement reconciliation (config/recon.go).
	Reconciliation Reconciliation `yaml:"reconciliation"`
	Rules          yaml.Node      `yaml:"rules"`   // package rules
	Default        yaml.Node      `yaml:"default"` // package rules
	Fees           yaml.Node      `yaml:"fees"`    // package rules

	// Path and Data are the file read, for package rules and reloads.
	Path string `yaml:"-"`
	Data []byte `yaml:"-"`

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

// Checkout configures the hosted checkout page (/checkout/…).
type Checkout struct {
	// Secret keys the page tokens (HMAC-SHA256); every instance must share
	// it. Empty: a random one per start in sandbox, hosted checkout
	// refused otherwise.
	Secret string `yaml:"secret"`
}

// Server is the HTTP listener.
type Server struct {
	Listen          string   `yaml:"listen"`
	PublicURL       string   `yaml:"public_url"` // base URL providers and customers reach us at
	ShutdownTimeout Duration `yaml:"shutdown_timeout"`
	// TrustedProxies are the CIDRs (or addresses) of the reverse proxies in
	// front of payrouter. A request from one of them has its client IP for
	// webhook_ips read from X-Forwarded-For, right to left, skipping trusted
	// proxies; from anyone else, the TCP peer is the client.
	TrustedProxies []string `yaml:"trusted_proxies"`
	// TrustProxy is the old switch that believed X-Forwarded-For's leftmost
	// entry (which the client writes). Only false is accepted now; with it
	// set, start-up fails and asks for trusted_proxies.
	TrustProxy bool `yaml:"trust_proxy"`
	// ReadTimeout bounds how long a request body may take to arrive after
	// its headers (default 10s): slower is 408 and the connection closes.
	ReadTimeout Duration `yaml:"read_timeout"`
	// MaxBodyBytes bounds an API request body (default 65536, at most
	// 1 MiB); MaxWebhookBodyBytes a provider webhook's (default and most
	// 1 MiB, what the webhook handler reads).
	MaxBodyBytes        int64 `yaml:"max_body_bytes"`
	MaxWebhookBodyBytes int64 `yaml:"max_webhook_body_bytes"`
	// TLS: serve HTTPS with this certificate (reloaded on SIGHUP).
	TLS TLS `yaml:"tls"`
	// RateLimit is every merchant's default (merchants[].rate_limit wins).
	RateLimit *RateLimit `yaml:"rate_limit"`
	// GCPercent and MemoryLimitMB set the Go collector (internal/gctune);
	// 0 is auto: the limit is 80 % of the container's memory limit when
	// there is one, and with a limit the collector runs at 400 (Go's
	// default, 100, without). GOGC and GOMEMLIMIT in the environment win.
	GCPercent     int   `yaml:"gc_percent"`
	MemoryLimitMB int64 `yaml:"memory_limit_mb"`
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
	// DisplayName is what the hosted checkout page shows the customer.
	DisplayName string `yaml:"display_name"`
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
	MCC                   string   `yaml:"mcc"` // merchant category code (DANA additionalInfo.mcc)
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

// Idempotency tunes the records kept for Idempotency-Key.
type Idempotency struct {
	// Retention is how long a key is kept (then purged); at least 24h,
	// the default.
	Retention Duration `yaml:"retention"`
	// PurgeEvery is how often expired keys are purged (default 1h).
	PurgeEvery Duration `yaml:"purge_every"`
	// StaleAfter is when a request still running under a key is presumed
	// dead and a retry takes the key over (default 2m; more than
	// router.deadline).
	StaleAfter Duration `yaml:"stale_after"`
}

// MinIdempotencyRetention is the shortest idempotency.retention: merchants
// may retry for a day (docs/architecture.md, API v1).
const MinIdempotencyRetention = 24 * time.Hour

// Ops configures the ops API and console (/ops/v1, /console).
type Ops struct {
	Keys []OpsKey `yaml:"keys"`
	// RulesSource: store (the store's active rule version routes; the
	// file's rules seed version 1) or file (the file routes, as before;
	// the default when unset).
	RulesSource string `yaml:"rules_source"`
	// PollEvery is how often an instance reloads the active rule version
	// and the forced-open breakers (default 1s; activation reaches every
	// instance within it).
	PollEvery Duration `yaml:"poll_every"`
}

// OpsKey is one ops key: Key is the key or "sha256:<hex>" of it; Role is
// viewer, operator or admin.
type OpsKey struct {
	ID   string `yaml:"id"`
	Key  string `yaml:"key"`
	Role string `yaml:"role"`
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
	return Parse(path, data, os.LookupEnv)
}

// envRef is one ${...} reference: ${VAR}, ${VAR:-default} or
// ${VAR:?message}; anything else starting with ${ is malformed.
var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:-|:\?)([^}]*))?\}`)

// Parse decodes data (named path in errors), expanding environment
// references in every scalar with lookup:
//   - ${VAR} is VAR's value; VAR unset is an error naming every unset
//     variable at once, except in sandbox (sandbox: true), where it is ""
//     so the shipped config runs with no keys;
//   - ${VAR:-default} is default when VAR is unset or empty;
//   - ${VAR:?message} is an error with message when VAR is unset or empty,
//     also in sandbox.
//
// Unknown keys are errors, and so are keys given twice in one mapping,
// also when they differ only by case.
func Parse(path string, data []byte, lookup func(string) (string, bool)) (*Config, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if err := duplicateKeys(&root); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var ex expansion
	ex.lookup = lookup
	ex.walk(&root)
	if len(ex.errs) > 0 {
		return nil, fmt.Errorf("%s: %w", path, errors.Join(ex.errs...))
	}
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
	if len(ex.missing) > 0 && !c.Sandbox {
		return nil, fmt.Errorf("%s: environment variables not set (sandbox is off, so every ${VAR} needs a value; "+
			"write ${VAR:-} for an intended empty default): %s", path, strings.Join(ex.missing, ", "))
	}
	c.Path, c.Data = path, data
	c.applyDefaults()
	if err := c.validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &c, nil
}

// duplicateKeys refuses a mapping that has a key twice, also by case
// ("Server" beside "server", "USD" beside "usd"): yaml.v3 refuses exact
// duplicates, but a case variant would silently be another key.
func duplicateKeys(n *yaml.Node) error {
	if n.Kind == yaml.MappingNode {
		seen := map[string]*yaml.Node{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			if k.Kind != yaml.ScalarNode {
				continue
			}
			f := strings.ToLower(k.Value)
			if prev, dup := seen[f]; dup {
				return fmt.Errorf("line %d: key %q repeats %q of line %d (keys are case-sensitive and must be unique)", k.Line, k.Value, prev.Value, prev.Line)
			}
			seen[f] = k
		}
	}
	for _, c := range n.Content {
		if err := duplicateKeys(c); err != nil {
			return err
		}
	}
	return nil
}

// expansion expands ${...} references in a node tree and collects what
// went wrong, so that one run names every unset variable.
type expansion struct {
	lookup  func(string) (string, bool)
	missing []string // unset ${VAR} (no default), "NAME (line N)", in file order
	errs    []error
}

func (ex *expansion) walk(n *yaml.Node) {
	if n.Kind == yaml.ScalarNode && strings.Contains(n.Value, "${") {
		v := envRef.ReplaceAllStringFunc(n.Value, func(m string) string {
			sub := envRef.FindStringSubmatch(m)
			name, op, arg := sub[1], sub[2], sub[3]
			if strings.Contains(arg, "${") {
				ex.errs = append(ex.errs, fmt.Errorf("line %d: %s: a default or message cannot hold another ${...}", n.Line, name))
				return ""
			}
			v, set := ex.lookup(name)
			switch op {
			case ":-":
				if !set || v == "" {
					return arg
				}
			case ":?":
				if !set || v == "" {
					if arg == "" {
						arg = "must be set"
					}
					ex.errs = append(ex.errs, fmt.Errorf("line %d: %s: %s", n.Line, name, arg))
				}
			default:
				if !set {
					ex.missing = append(ex.missing, fmt.Sprintf("%s (line %d)", name, n.Line))
				}
			}
			return v
		})
		if rest := envRef.ReplaceAllString(n.Value, ""); strings.Contains(rest, "${") {
			ex.errs = append(ex.errs, fmt.Errorf("line %d: malformed variable reference in %q (use ${VAR}, ${VAR:-default} or ${VAR:?message})", n.Line, redactRefs(n.Value)))
		}
		n.Value = v
		if n.Tag == "!!null" || n.Value == "" {
			n.Tag = "!!str"
		}
	}
	for _, c := range n.Content {
		ex.walk(c)
	}
}

// redactRefs shows a malformed value without what surrounds the ${: the
// rest of the scalar may be a secret.
func redactRefs(s string) string {
	i := strings.Index(s, "${")
	end := min(len(s), i+24)
	return "…" + s[i:end] + "…"
}

// applyDefaults is the one place payrouter's defaults live: the wiring
// (internal/app) and the packages it configures (router, events) take the
// values as given.
func (c *Config) applyDefaults() {
	if c.Server.Listen == "" {
		c.Server.Listen = ":8080"
	}
	setDuration(&c.Server.ShutdownTimeout, 30*time.Second)
	setDuration(&c.Server.ReadTimeout, 10*time.Second)
	if c.Server.MaxBodyBytes == 0 {
		c.Server.MaxBodyBytes = 64 << 10
	}
	if c.Server.MaxWebhookBodyBytes == 0 {
		c.Server.MaxWebhookBodyBytes = 1 << 20
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
	setDuration(&c.Router.AttemptTimeout, 10*time.Second)
	setDuration(&c.Router.Deadline, 30*time.Second)
	setDuration(&c.Router.ResolveEvery, 2*time.Second)
	setDuration(&c.Router.PaymentTTL, 24*time.Hour)
	setDuration(&c.Router.ResolveBackoff, 2*time.Second)
	if c.Events.Concurrency == 0 {
		c.Events.Concurrency = 8
	}
	setDuration(&c.Events.RetryFor, 24*time.Hour)
	setDuration(&c.Events.RetryBase, 10*time.Second)
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
		setDuration(&p.Timeout, c.Router.AttemptTimeout.D(0))
		p.Breaker.defaults()
		c.Providers[name] = p
	}
}

func setDuration(d *Duration, def time.Duration) {
	if *d == 0 {
		*d = Duration(def)
	}
}

// defaults: trip at half the calls failing over at least 10 calls, stay
// open 30s, probe with one call, forget counts every minute while closed.
func (b *Breaker) defaults() {
	if b.FailureRatio == 0 {
		b.FailureRatio = 0.5
	}
	if b.MinRequests == 0 {
		b.MinRequests = 10
	}
	setDuration(&b.OpenFor, 30*time.Second)
	if b.HalfOpenProbes == 0 {
		b.HalfOpenProbes = 1
	}
	setDuration(&b.Interval, 60*time.Second)
}

// Kinds are the provider adapters payrouter has.
var Kinds = []string{"stripe", "midtrans", "xendit", "gopay", "ovo", "dana"}

func (c *Config) validate() error {
	var errs []error
	if err := c.Reconciliation.check(c); err != nil {
		errs = append(errs, err)
	}
	if n := c.Server.MaxBodyBytes; n < 1<<10 || n > 1<<20 {
		errs = append(errs, fmt.Errorf("server.max_body_bytes: %d is not within 1024..1048576", n))
	}
	if n := c.Server.MaxWebhookBodyBytes; n < 1<<10 || n > 1<<20 {
		errs = append(errs, fmt.Errorf("server.max_webhook_body_bytes: %d is not within 1024..1048576", n))
	}
	if n := c.Server.GCPercent; n != 0 && (n < 10 || n > 10000) {
		errs = append(errs, fmt.Errorf("server.gc_percent: %d is not 0 (auto) or within 10..10000", n))
	}
	if n := c.Server.MemoryLimitMB; n != 0 && (n < 32 || n > 1<<20) {
		errs = append(errs, fmt.Errorf("server.memory_limit_mb: %d is not 0 (auto) or within 32..1048576", n))
	}
	if c.Store.Driver != "sqlite" && c.Store.Driver != "postgres" {
		errs = append(errs, fmt.Errorf("store.driver: %q is not sqlite or postgres", c.Store.Driver))
	}
	if c.Server.TrustProxy && len(c.Server.TrustedProxies) == 0 {
		errs = append(errs, errors.New("server.trust_proxy believed the client-written leftmost X-Forwarded-For entry; list your proxies' CIDRs in server.trusted_proxies instead (and drop trust_proxy)"))
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
	if rs := c.Ops.RulesSource; rs != "" && rs != "file" && rs != "store" {
		errs = append(errs, fmt.Errorf("ops.rules_source: %q is not store or file", rs))
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
	if r := c.Idempotency.Retention; r != 0 && time.Duration(r) < MinIdempotencyRetention {
		errs = append(errs, fmt.Errorf("idempotency.retention: %s is less than the 24h merchants may retry for", time.Duration(r)))
	}
	if st, dl := c.Idempotency.StaleAfter.D(2*time.Minute), c.Router.Deadline.D(30*time.Second); st <= dl {
		errs = append(errs, fmt.Errorf("idempotency.stale_after: %s must exceed router.deadline %s (a request still running must not be taken over)", st, dl))
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
