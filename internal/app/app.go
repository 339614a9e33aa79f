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
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/sony/gobreaker/v2"

	"github.com/payrouter/payrouter"
	"github.com/payrouter/payrouter/internal/approval"
	"github.com/payrouter/payrouter/internal/breakerstore"
	"github.com/payrouter/payrouter/internal/checkout"
	"github.com/payrouter/payrouter/internal/config"
	"github.com/payrouter/payrouter/internal/events"
	"github.com/payrouter/payrouter/internal/httpapi"
	"github.com/payrouter/payrouter/internal/inbox"
	"github.com/payrouter/payrouter/internal/metrics"
	"github.com/payrouter/payrouter/internal/recon"
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
	// Recon is the reconciliation service; its Handler serves the ops
	// API's /ops/v1/reconciliation endpoints (mounted by the ops API).
	Recon          *recon.Service
	reconSchedules []recon.Schedule

	listener net.Listener
	server   *http.Server
	closers  []func()
	mu       sync.Mutex
}

// New builds everything but does not serve. On error everything built so
// far is released.
func New(ctx context.Context, cfg *config.Config, opts Options) (_ *App, err error) {
	a := &App{Config: cfg, Log: opts.Log, Sims: map[string]*sim.Sim{}, Rules: &Rules{}, Metrics: metrics.New()}
	if a.Log == nil {
		a.Log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	defer func() {
		if err != nil {
			a.Close()
		}
	}()
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
	a.Handler = a.api(opts).Handler(mux)
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
	self = "http://" + loopback(ln.Addr().String())
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
	return nil
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
	a.Metrics.WatchInbox(&a.Inbox.Received, &a.Inbox.Refused, &a.Inbox.Duplicates)
	return nil
}

// api is the HTTP API over what New built.
func (a *App) api(opts Options) *httpapi.Server {
	var merchants []httpapi.Merchant
	for _, m := range a.Config.Merchants {
		merchants = append(merchants, httpapi.Merchant{ID: m.ID, APIKeys: m.APIKeys})
	}
	api := &httpapi.Server{Router: a.Router, Store: a.Store, Inbox: a.Inbox, Merchants: merchants, Log: a.Log,
		OpenAPI: opts.OpenAPI, TrustProxy: a.Config.Server.TrustProxy, Ready: a.ready, Metrics: a.Metrics.Handler(),
		Explain: func(req *router.CreateRequest) any { return a.Rules.Explain(a.Router.NewPayment(req), req.Provider) }}
	api.Deliveries = a.Events
	api.Limits = httpapi.BodyLimits{ReadTimeout: a.Config.Server.ReadTimeout.D(httpapi.DefaultReadTimeout),
		MaxBytes: a.Config.Server.MaxBodyBytes, MaxWebhookBytes: a.Config.Server.MaxWebhookBodyBytes}
	return api
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
	return rules.Compile(rc, caps)
}

// ReloadRules re-reads the config file's rules; an invalid file keeps the
// live rules and is reported.
func (a *App) ReloadRules() error {
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
	return true, d
}

// Serve serves HTTP and runs the background loops (resolver, inbox) until
// ctx is done, then shuts down gracefully: in-flight requests drain.
func (a *App) Serve(ctx context.Context) error {
	// The handler bounds each body (httpapi.BodyLimits); ReadTimeout is the
	// backstop for the whole request, headers included.
	readTimeout := a.Config.Server.ReadTimeout.D(httpapi.DefaultReadTimeout)
	a.server = &http.Server{Handler: a.Handler, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second,
		ReadTimeout: 10*time.Second + readTimeout}
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
	go func() { defer wg.Done(); a.Recon.RunSchedules(bg, a.reconSchedules, time.Minute, a.Log) }()
	if a.Publisher != nil {
		wg.Add(1)
		go func() { defer wg.Done(); a.Publisher.Run(bg) }()
	}
	errc := make(chan error, 1)
	go func() { errc <- a.server.Serve(a.listener) }()
	a.Log.Info("payrouter serving", "url", a.URL, "sandbox", a.Config.Sandbox, "store", a.Config.Store.Driver, "rules_version", a.Rules.Load().Version())
	var err error
	select {
	case err = <-errc:
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), a.Config.Server.ShutdownTimeout.D(0))
		err = a.server.Shutdown(sctx)
		cancel()
	}
	stop()
	wg.Wait()
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
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
