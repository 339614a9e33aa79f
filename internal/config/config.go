// Package config reads payrouter's config.yaml. It owns every top-level key
// except rules, default and fees, which package rules parses from the same
// file (both report file:line). ${VAR} in any scalar expands from the
// environment; secrets are never logged (see Redacted).
package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
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
	Checkout  Checkout            `yaml:"checkout"`
	// Reconciliation: settlement reconciliation (config/recon.go).
	Reconciliation Reconciliation `yaml:"reconciliation"`
	Rules          yaml.Node      `yaml:"rules"`   // package rules
	Default        yaml.Node      `yaml:"default"` // package rules
	Fees           yaml.Node      `yaml:"fees"`    // package rules

	// Path and Data are the file read, for package rules and reloads.
	Path string `yaml:"-"`
	Data []byte `yaml:"-"`

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
	// TrustProxy: take the client IP for webhook_ips from X-Forwarded-For.
	TrustProxy bool `yaml:"trust_proxy"`
	// ReadTimeout bounds how long a request body may take to arrive after
	// its headers (default 10s): slower is 408 and the connection closes.
	ReadTimeout Duration `yaml:"read_timeout"`
	// MaxBodyBytes bounds an API request body (default 65536, at most
	// 1 MiB); MaxWebhookBodyBytes a provider webhook's (default and most
	// 1 MiB, what the webhook handler reads).
	MaxBodyBytes        int64 `yaml:"max_body_bytes"`
	MaxWebhookBodyBytes int64 `yaml:"max_webhook_body_bytes"`
}

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
	APIKeys       []string `yaml:"api_keys"`
	WebhookURL    string   `yaml:"webhook_url"`
	WebhookSecret string   `yaml:"webhook_secret"`
	// DisplayName is what the hosted checkout page shows the customer.
	DisplayName string `yaml:"display_name"`
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

// Log configures slog.
type Log struct {
	Level  string `yaml:"level"`  // debug | info | warn | error
	Format string `yaml:"format"` // text | json
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
		dec := yaml.NewDecoder(bytes.NewReader(mustEncode(&root)))
		dec.KnownFields(true)
		if err := dec.Decode(&c); err != nil {
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

func mustEncode(n *yaml.Node) []byte {
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	_ = enc.Encode(n) // a node we just decoded always encodes
	return b.Bytes()
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
	if c.Store.Driver != "sqlite" && c.Store.Driver != "postgres" {
		errs = append(errs, fmt.Errorf("store.driver: %q is not sqlite or postgres", c.Store.Driver))
	}
	if len(c.Merchants) == 0 {
		errs = append(errs, errors.New("merchants: at least one merchant is required"))
	}
	keys := map[string]string{}
	ids := map[string]bool{}
	for i, m := range c.Merchants {
		if m.ID == "" {
			errs = append(errs, fmt.Errorf("merchants[%d].id is required", i))
		}
		if ids[m.ID] {
			errs = append(errs, fmt.Errorf("merchants[%d]: duplicate id %q", i, m.ID))
		}
		ids[m.ID] = true
		for _, k := range m.APIKeys {
			if k == "" {
				errs = append(errs, fmt.Errorf("merchants[%d] (%s): empty api key", i, m.ID))
			} else if other, dup := keys[k]; dup {
				errs = append(errs, fmt.Errorf("merchants[%d] (%s): api key also belongs to %s", i, m.ID, other))
			}
			keys[k] = m.ID
		}
		if m.WebhookURL != "" && m.WebhookSecret == "" {
			errs = append(errs, fmt.Errorf("merchants[%d] (%s): webhook_url needs webhook_secret", i, m.ID))
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
