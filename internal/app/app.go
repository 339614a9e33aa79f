// Package app wires payrouter together: config → store → providers (and, in
// sandbox, their simulators) → rules → router → inbox → HTTP. cmd/payrouter,
// the end-to-end tests and the benchmark all start payrouter through it.
package app

import (
	"context"
	"crypto/rand"
	_ "embed"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/sony/gobreaker/v2"

	"github.com/payrouter/payrouter"
	"github.com/payrouter/payrouter/internal/apikey"
	"github.com/payrouter/payrouter/internal/approval"
	"github.com/payrouter/payrouter/internal/breakerstore"
	"github.com/payrouter/payrouter/internal/checkout"
	"github.com/payrouter/payrouter/internal/config"
	"github.com/payrouter/payrouter/internal/events"
	"github.com/payrouter/payrouter/internal/httpapi"
	"github.com/payrouter/payrouter/internal/inbox"
	"github.com/payrouter/payrouter/internal/metrics"
	"github.com/payrouter/payrouter/internal/ops"
	"github.com/payrouter/payrouter/internal/ratelimit"
	"github.com/payrouter/payrouter/internal/recon"
	"github.com/payrouter/payrouter/internal/reqid"
	"github.com/payrouter/payrouter/internal/sim"
	"github.com/payrouter/payrouter/internal/store"
	"github.com/payrouter/payrouter/internal/store/postgres"
	"github.com/payrouter/payrouter/internal/store/sqlite"
	"github.com/payrouter/payrouter/providers"
	"github.com/payrouter/payrouter/router"
	"github.com/payrouter/payrouter/rules"
)

// Options are what the caller decides beyond the config file.
type Options struct {
	// Listener to serve on; nil listens on cfg.Server.Listen.
	Listener net.Listener
	Log      *slog.Logger
	// OpenAPI is served at /openapi.yaml.
	OpenAPI []byte
	// Now is the approval counters' clock (tests slide the adaptive
	// window with it); nil is the wall clock.
	Now func() time.Time
}

// App is a wired payrouter.
type App struct {
	Config    *config.Config
	Store     store.Store
	Router    *router.Router
	Rules     *Rules
	Inbox     *inbox.Inbox
	Events    *events.Dispatcher // merchant webhooks
	Publisher *events.Publisher  // Redis stream; nil without redis.url
	Sims      map[string]*sim.Sim
	Providers map[string]providers.Provider
	Handler   http.Handler
	Log       *slog.Logger
	Metrics   *metrics.Metrics
	URL       string // base URL of this instance
	// Approvals counts approvals and declines for the adaptive strategy.
	Approvals *approval.Tracker
	Ops       *ops.Service
	OpsKeys   *ops.Keys
	Health    *ops.Health

	// background loops run by Serve beside the resolver and the inbox.
	background []func(context.Context)

	// Recon is the reconciliation service; its Handler serves the ops
	// API's /ops/v1/reconciliation endpoints (mounted by the ops API).
	Recon          *recon.Service
	reconSchedules []recon.Schedule

	listener net.Listener
	server   *http.Server
	cert     certificate
	closers  []func()
	mu       sync.Mutex

	credMu     sync.Mutex
	credLogged map[string]time.Time // provider → when its refusal was last logged
}

// credentialsLogEvery bounds the log of a provider refusing our
// credentials to one line per provider per interval (the metric counts
// every refusal).
const credentialsLogEvery = time.Minute

// credentialsRefused makes a provider refusing payrouter's own credentials
// loud: every refusal is counted, and logged once per provider per
// credentialsLogEvery (never the key). /readyz names the provider too.
func (a *App) credentialsRefused(provider, op string, err *providers.Error) {
	a.Metrics.AuthFailures.WithLabelValues(provider).Inc()
	now := time.Now()
	a.credMu.Lock()
	if a.credLogged == nil {
		a.credLogged = map[string]time.Time{}
	}
	last, seen := a.credLogged[provider]
	log := !seen || now.Sub(last) >= credentialsLogEvery
	if log {
		a.credLogged[provider] = now
	}
	a.credMu.Unlock()
	if log {
		a.Log.Error("provider refuses payrouter's credentials: check its keys in the config", "provider", provider, "op", op,
			"http_status", err.HTTPStatus, "provider_code", err.ProviderCode)
	}
}

// New builds everything but does not serve. On error everything built so
// far is released.
func New(ctx context.Context, cfg *config.Config, opts Options) (_ *App, err error) {
	a := &App{Config: cfg, Log: opts.Log, Sims: map[string]*sim.Sim{}, Rules: &Rules{}, Metrics: metrics.New()}
	if a.Log == nil {
		a.Log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	// Every line logged with a request's context names its Request-Id.
	a.Log = slog.New(reqid.NewHandler(a.Log.Handler()))
	defer func() {
		if err != nil {
			a.Close()
		}
	}()
	if cfg.Server.TLS.Enabled() {
		if err := a.ReloadTLS(); err != nil {
			return nil, err
		}
	}
	self, err := a.listen(cfg, opts.Listener)
	if err != nil {
		return nil, err
	}
	st, err := OpenStore(ctx, cfg)
	if err != nil {
		return nil, err
	}
	a.Store = st
	a.closers = append(a.closers, func() { _ = st.Close() })

	mux := http.NewServeMux()
	built, err := BuildProviders(cfg, self, a.URL, mux)
	if err != nil {
		return nil, err
	}
	a.Providers, a.Sims = built.Providers, built.Sims
	set, err := CompileRules(cfg, built.Caps())
	if err != nil {
		return nil, err
	}
	a.Rules.Swap(set)
	a.buildRecon(built, self)
	if err := a.trackApprovals(opts.Now); err != nil {
		return nil, err
	}
	if err := a.buildRouter(ctx, mux); err != nil {
		return nil, err
	}
	if err := a.buildInbox(); err != nil {
		return nil, err
	}
	var closeEvents func()
	a.Events, a.Publisher, closeEvents, err = buildEvents(cfg, st, a.Log)
	if err != nil {
		return nil, err
	}
	a.closers = append(a.closers, closeEvents)
	api, err := a.api(opts)
	if err != nil {
		return nil, err
	}
	h, err := a.sandboxOnly(a.Metrics.Instrument(api.Handler(mux)))
	if err != nil {
		return nil, err
	}
	a.Handler = httpapi.RequestLog(a.Log, h)
	return a, nil
}

// listen opens the listener (unless one is given) and returns the loopback
// URL of this instance; a.URL is the public one.
func (a *App) listen(cfg *config.Config, ln net.Listener) (self string, err error) {
	if ln == nil {
		ln, err = net.Listen("tcp", cfg.Server.Listen)
		if err != nil {
			return "", fmt.Errorf("listen %s: %w", cfg.Server.Listen, err)
		}
	}
	a.listener = ln
	scheme := "http://"
	if cfg.Server.TLS.Enabled() {
		scheme = "https://"
	}
	self = scheme + loopback(ln.Addr().String())
	a.URL = cfg.Server.PublicURL
	if a.URL == "" {
		a.URL = self
	}
	return self, nil
}

// buildRouter guards every provider (timeout, breakers, metrics) and makes
// the router over them.
func (a *App) buildRouter(ctx context.Context, mux *http.ServeMux) error {
	cfg := a.Config
	newBreaker, err := a.sharedBreakers(ctx)
	if err != nil {
		return err
	}
	guarded := map[string]*router.Guarded{}
	soft := map[string][]string{}
	for name, p := range a.Providers {
		pc := cfg.Providers[name]
		g := router.Guard(name, p, pc.Timeout.D(0), router.BreakerSettings{
			FailureRatio: pc.Breaker.FailureRatio, MinRequests: pc.Breaker.MinRequests, OpenFor: pc.Breaker.OpenFor.D(0),
			HalfOpenProbes: pc.Breaker.HalfOpenProbes, Interval: pc.Breaker.Interval.D(0),
		}, newBreaker)
		g.OnStateChange = func(provider string, m payrouter.Method, from, to gobreaker.State) {
			a.Log.Warn("breaker state changed", "provider", provider, "method", m, "from", from.String(), "to", to.String())
			a.Metrics.ObserveBreaker(provider, m, to)
		}
		g.Observe = a.Metrics.ObserveCall
		g.OnCredentialsRefused = a.credentialsRefused
		guarded[name] = g
		soft[name] = pc.SoftDeclines
	}
	co := a.checkoutPage(a.Store)
	var checkoutURL func(*payrouter.Payment) string
	if co != nil {
		checkoutURL = co.URL
	}
	a.Router = router.New(a.Store, a.Rules, guarded, router.Options{
		Deadline: cfg.Router.Deadline.D(0), MaxAttempts: cfg.Router.MaxAttempts,
		SoftDeclines: soft, PaymentTTL: cfg.Router.PaymentTTL.D(0),
		ResolveBackoff: cfg.Router.ResolveBackoff.D(0), Outcomes: a.Approvals, CheckoutURL: checkoutURL,
	}, a.Log)
	if co != nil {
		co.Router = a.Router
		co.Mount(mux)
	}
	return a.wireOps(ctx, mux, guarded)
}

// buildInbox makes the webhook inbox over every provider that parses
// webhooks.
func (a *App) buildInbox() error {
	sources := map[string]inbox.Source{}
	for name, p := range a.Providers {
		wp, ok := p.(providers.WebhookParser)
		if !ok {
			continue
		}
		ips, err := inbox.ParseCIDRs(a.Config.Providers[name].WebhookIPs)
		if err != nil {
			return fmt.Errorf("%s: providers.%s.%w", a.Config.Path, name, err)
		}
		sources[name] = inbox.Source{Parser: wp, AllowedIPs: ips}
	}
	a.Inbox = inbox.New(a.Store, a.Router, sources, a.Log)
	a.Metrics.WatchInbox(&a.Inbox.Received, &a.Inbox.Refused, &a.Inbox.Duplicates, &a.Inbox.Unconfirmed)
	return nil
}

// api is the HTTP API over what New built.
func (a *App) api(opts Options) (*httpapi.Server, error) {
	proxies, err := inbox.ParseCIDRs(a.Config.Server.TrustedProxies)
	if err != nil {
		return nil, fmt.Errorf("%s: server.trusted_proxies: %w", a.Config.Path, err)
	}
	keys, limiter, err := a.merchantKeys(a.Config)
	if err != nil {
		return nil, err
	}
	api := &httpapi.Server{Router: a.Router, Store: a.Store, Inbox: a.Inbox, Keys: keys, Limiter: limiter, Log: a.Log,
		OpenAPI: opts.OpenAPI, ProxyCIDRs: proxies, Ready: a.ready, Metrics: a.Metrics.Handler(),
		Explain: func(req *router.CreateRequest) any { return a.Rules.Explain(a.Router.NewPayment(req), req.Provider) }}
	api.Deliveries = a.Events
	api.Limits = httpapi.BodyLimits{ReadTimeout: a.Config.Server.ReadTimeout.D(httpapi.DefaultReadTimeout),
		MaxBytes: a.Config.Server.MaxBodyBytes, MaxWebhookBytes: a.Config.Server.MaxWebhookBodyBytes}
	api.IdempotencyStale = a.Config.Idempotency.StaleAfter.D(0)
	return api, nil
}

// sandboxOnly answers /sim/ only to sandbox_clients (default loopback):
// the simulators' control API marks payments paid.
func (a *App) sandboxOnly(h http.Handler) (http.Handler, error) {
	if !a.Config.Sandbox {
		return h, nil
	}
	clients := make([]netip.Prefix, 0, len(a.Config.SandboxClients))
	for _, c := range a.Config.SandboxClients {
		p, err := netip.ParsePrefix(c)
		if err != nil {
			return nil, fmt.Errorf("%s: sandbox_clients: %w", a.Config.Path, err)
		}
		clients = append(clients, p)
	}
	return httpapi.ClientsOnly("/sim/", clients, h), nil
}

// checkoutPage builds the hosted checkout page, or nil when it has no
// secret to sign its tokens with (outside sandbox, checkout.secret).
func (a *App) checkoutPage(st store.Store) *checkout.Server {
	secret := []byte(a.Config.Checkout.Secret)
	if len(secret) == 0 {
		if !a.Config.Sandbox {
			return nil
		}
		secret = make([]byte, 32)
		_, _ = rand.Read(secret)
	}
	names := map[string]string{}
	for _, m := range a.Config.Merchants {
		names[m.ID] = m.DisplayName
	}
	return &checkout.Server{Payments: st, Secret: secret, PublicURL: strings.TrimSuffix(a.URL, "/"), Merchants: names,
		Sandbox: a.Config.Sandbox, Log: a.Log}
}

// trackApprovals sets up the adaptive strategy's counters, shared through
// Redis when redis.url is set (Serve runs the sync).
func (a *App) trackApprovals(now func() time.Time) error {
	a.Approvals = approval.New(now)
	a.Rules.approvals = a.Approvals
	if a.Config.Redis.URL == "" {
		return nil
	}
	opt, err := redis.ParseURL(a.Config.Redis.URL)
	if err != nil {
		return fmt.Errorf("%s: redis.url: %w", a.Config.Path, err)
	}
	opt.DialTimeout, opt.ReadTimeout, opt.WriteTimeout = 500*time.Millisecond, 500*time.Millisecond, 500*time.Millisecond
	rdb := redis.NewClient(opt)
	a.closers = append(a.closers, func() { _ = rdb.Close() })
	a.Approvals.Share(rdb, a.Config.Redis.BreakerPrefix, time.Second, a.Log)
	return nil
}

// merchantKeys indexes the merchants' API keys by digest and builds their
// rate limits, shared through Redis when redis.url is set.
func (a *App) merchantKeys(cfg *config.Config) (*apikey.Set, httpapi.RateLimiter, error) {
	keys := apikey.NewSet()
	def := config.DefaultRateLimit
	if cfg.Server.RateLimit != nil {
		def = *cfg.Server.RateLimit
	}
	limits := map[string]ratelimit.Limit{}
	for i, m := range cfg.Merchants {
		for j, k := range m.APIKeys {
			if err := keys.Add(k.Digest, apikey.Entry{Owner: m.ID, ExpiresAt: k.ExpiresAt}); err != nil {
				return nil, nil, fmt.Errorf("%s: merchants[%d].api_keys[%d]: %w", cfg.Path, i, j, err)
			}
		}
		rl := m.RateLimitOr(def)
		limits[m.ID] = ratelimit.Limit{Rate: rl.RPS, Burst: rl.Burst}
	}
	opts := ratelimit.Options{Prefix: cfg.Redis.BreakerPrefix, OnError: func(err error) {
		a.Log.Warn("redis rate limit store failed: budgets are per instance for a while", "err", err)
	}}
	if cfg.Redis.URL != "" {
		rdb, err := ratelimit.Open(cfg.Redis.URL)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", cfg.Path, err)
		}
		a.closers = append(a.closers, func() { _ = rdb.Close() })
		opts.Redis = rdb
	}
	lim := ratelimit.New(limits, opts)
	if opts.Redis != nil {
		wctx, cancel := context.WithTimeout(context.Background(), time.Second)
		if err := lim.Warm(wctx); err != nil {
			a.Log.Warn("redis unreachable: rate limits are per instance until it answers", "err", err)
		}
		cancel()
	}
	return keys, limiterFunc(lim.Allow), nil
}

// limiterFunc adapts ratelimit.Limiter to httpapi.RateLimiter.
type limiterFunc func(ctx context.Context, id string) ratelimit.Decision

func (f limiterFunc) Allow(ctx context.Context, id string) (bool, time.Duration) {
	d := f(ctx, id)
	return d.Allowed, d.RetryAfter
}

// sharedBreakers returns Guard's breaker factory: breakers shared through
// Redis when redis.url is set (one instance's trip protects all), nil
// (local breakers) otherwise. A Redis that is down leaves the breakers
// local until it answers again; only a malformed url is an error.
func (a *App) sharedBreakers(ctx context.Context) (func(string, gobreaker.Settings) (router.Breaker, error), error) {
	if a.Config.Redis.URL == "" {
		return nil, nil
	}
	bs, err := breakerstore.Open(a.Config.Redis.URL, a.Config.Redis.BreakerPrefix)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", a.Config.Path, err)
	}
	a.closers = append(a.closers, func() { _ = bs.Close() })
	if err := bs.Ping(ctx); err != nil {
		a.Log.Warn("redis unreachable: circuit breakers stay local until it answers", "err", err)
	}
	onErr := func(err error) {
		a.Log.Warn("redis breaker store failed: breaker runs locally for a while", "err", err)
	}
	return func(name string, st gobreaker.Settings) (router.Breaker, error) {
		return bs.NewBreaker(name, st, onErr), nil
	}, nil
}

func loopback(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if host == "" || host == "::" || host == "0.0.0.0" {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

// OpenStore opens the configured store.
func OpenStore(ctx context.Context, cfg *config.Config) (store.Store, error) {
	switch cfg.Store.Driver {
	case "postgres":
		return postgres.Open(ctx, cfg.Store.DSN)
	default:
		return sqlite.Open(ctx, cfg.Store.DSN, sqlite.Options{Synchronous: cfg.Store.Synchronous})
	}
}

// CompileRules parses the rules of cfg's file and compiles them.
func CompileRules(cfg *config.Config, caps map[string]providers.Capabilities) (*rules.RuleSet, error) {
	rc, err := rules.Parse(cfg.Path, cfg.Data)
	if err != nil {
		return nil, err
	}
	if err := disabledInRules(cfg, rc); err != nil {
		return nil, err
	}
	return rules.Compile(rc, caps)
}

// disabledInRules names a rule's candidate that is configured but disabled
// as such; rules.Compile only knows the enabled ones and would call it
// unknown.
func disabledInRules(cfg *config.Config, rc *rules.Config) error {
	all := make([]*rules.Rule, 0, len(rc.Rules)+1)
	for i := range rc.Rules {
		all = append(all, &rc.Rules[i])
	}
	if rc.Default != nil {
		all = append(all, rc.Default)
	}
	var fs []rules.Finding
	for _, r := range all {
		for _, p := range r.Providers {
			if pc, ok := cfg.Providers[p.Name]; ok && !pc.IsEnabled() {
				fs = append(fs, rules.Finding{File: rc.File, Line: p.Pos.Line, Col: p.Pos.Col, Rule: r.Name, Severity: rules.SeverityError,
					Message: fmt.Sprintf("provider %q is disabled (providers.%s.enabled: false): enable it or take it out of the rule", p.Name, p.Name)})
			}
		}
	}
	if len(fs) > 0 {
		return &rules.Error{Findings: fs}
	}
	return nil
}

// ReloadRules re-reads the config file's rules; an invalid file keeps the
// live rules and is reported.
func (a *App) ReloadRules() error {
	if a.Config.Ops.RulesSource == "store" {
		a.Log.Info("rules come from the store (ops.rules_source: store): file edits are pushed with `payrouter rules push FILE --reason …`; reload ignored")
		return nil
	}
	cfg, err := config.Load(a.Config.Path)
	if err == nil {
		var set *rules.RuleSet
		set, err = CompileRules(cfg, capsOf(a.Providers))
		if err == nil {
			old := a.Rules.Load()
			a.Rules.Swap(set)
			a.Log.Info("rules reloaded", "version", set.Version(), "previous", old.Version())
			a.Metrics.ObserveReload(nil)
			return nil
		}
	}
	a.Rules.Failed(err)
	a.Metrics.ObserveReload(err)
	a.Log.Error("rules reload refused; keeping the last good rules", "err", err)
	return err
}

func capsOf(ps map[string]providers.Provider) map[string]providers.Capabilities {
	caps := map[string]providers.Capabilities{}
	for n, p := range ps {
		caps[n] = p.Capabilities()
	}
	return caps
}

func (a *App) ready(ctx context.Context) (bool, map[string]any) {
	d := map[string]any{"rules_version": a.Rules.Load().Version()}
	if e := a.Rules.LastError(); e != "" {
		d["rules_reload_error"] = e
	}
	br := map[string]any{}
	names := make([]string, 0, len(a.Router.Providers()))
	for n := range a.Router.Providers() {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if st := a.Router.Providers()[n].BreakerStates(); len(st) > 0 {
			br[n] = st
		}
	}
	d["breakers"] = br
	// A provider refusing our credentials is named here; the instance
	// stays ready while another provider can take payments (every
	// instance shares the config: taking them all out would only turn a
	// provider's outage into a total one), and is not ready when every
	// provider refuses.
	refused, ok := credentialsReadiness(a.Router.Providers())
	if len(refused) > 0 {
		d["credentials_refused"] = refused
	}
	return ok, d
}

// credentialsReadiness names the providers refusing our credentials; ok
// is false when every provider refuses (nothing can be routed).
func credentialsReadiness(provs map[string]*router.Guarded) (map[string]any, bool) {
	refused := map[string]any{}
	for n, g := range provs {
		if cr, ok := g.CredentialsRefused(); ok {
			refused[n] = map[string]any{"since": cr.Since.UTC().Format(time.RFC3339), "last": cr.Last.UTC().Format(time.RFC3339),
				"count": cr.Count, "op": cr.Op, "http_status": cr.HTTPStatus, "provider_code": cr.Code}
		}
	}
	return refused, len(provs) == 0 || len(refused) < len(provs)
}

// Serve serves HTTP and runs the background loops (resolver, inbox) until
// ctx is done, then shuts down gracefully: in-flight requests drain.
func (a *App) Serve(ctx context.Context) error {
	// The handler bounds each body (httpapi.BodyLimits); ReadTimeout is the
	// backstop for the whole request, headers included.
	readTimeout := a.Config.Server.ReadTimeout.D(httpapi.DefaultReadTimeout)
	a.server = &http.Server{Handler: a.Handler, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second,
		ReadTimeout: 10*time.Second + readTimeout, ErrorLog: slog.NewLogLogger(a.Log.Handler(), slog.LevelWarn)}
	tlsOn := a.Config.Server.TLS.Enabled()
	if tlsOn {
		a.server.TLSConfig = a.tlsConfig()
	}
	bg, stop := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); a.Router.RunResolver(bg, a.Config.Router.ResolveEvery.D(0)) }()
	go func() { defer wg.Done(); a.Inbox.Run(bg, 2*time.Second) }()
	wg.Add(1)
	go func() { defer wg.Done(); a.Events.Run(bg) }()
	wg.Add(1)
	go func() { defer wg.Done(); a.Approvals.Run(bg) }()
	wg.Add(1)
	go func() { defer wg.Done(); a.PurgeIdempotency(bg) }()
	for _, f := range a.background {
		wg.Add(1)
		go func() { defer wg.Done(); f(bg) }()
	}
	wg.Add(1)
	go func() { defer wg.Done(); a.Recon.RunSchedules(bg, a.reconSchedules, time.Minute, a.Log) }()
	if a.Publisher != nil {
		wg.Add(1)
		go func() { defer wg.Done(); a.Publisher.Run(bg) }()
	}
	errc := make(chan error, 1)
	go func() {
		if tlsOn {
			errc <- a.server.ServeTLS(a.listener, "", "")
			return
		}
		errc <- a.server.Serve(a.listener)
	}()
	a.Log.Info("payrouter serving", "listen", describeListen(a.listener.Addr().String()), "url", a.URL, "tls", tlsOn,
		"sandbox", a.Config.Sandbox, "sandbox_clients", a.sandboxClients(), "store", a.Config.Store.Driver,
		"redis", a.Config.Redis.URL != "", "rules_version", a.Rules.Load().Version())
	var err error
	select {
	case err = <-errc:
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), a.Config.Server.ShutdownTimeout.D(0))
		err = a.server.Shutdown(sctx)
		cancel()
	}
	a.Log.Info("payrouter shutting down: draining requests and background loops")
	stop()
	wg.Wait()
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	a.Log.Info("payrouter stopped", "err", err)
	return err
}

// describeListen says what a listener binds, in words an operator cannot
// misread: ":8080" is every interface, not just this host.
func describeListen(addr string) string {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	ip, err := netip.ParseAddr(host)
	switch {
	case err != nil:
		return addr
	case ip.IsUnspecified():
		return addr + " (all interfaces)"
	case ip.IsLoopback():
		return addr + " (loopback only)"
	}
	return addr
}

func (a *App) sandboxClients() string {
	if !a.Config.Sandbox {
		return ""
	}
	return strings.Join(a.Config.SandboxClients, ",")
}

// Close releases the store and the listener.
func (a *App) Close() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.listener != nil {
		_ = a.listener.Close()
	}
	for i := len(a.closers) - 1; i >= 0; i-- {
		a.closers[i]()
	}
	a.closers = nil
}
