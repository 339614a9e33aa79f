// Package bench measures what payrouter costs on top of calling a provider
// directly. In one process it starts the sandbox (the simulators and the
// router on its store, through internal/app, on a loopback port) and a load
// generator, then sends the same payments, with the same concurrency, both
// through the router's API (POST /v1/payments with an Idempotency-Key) and
// straight to the simulators through the providers' own Go SDKs (stripe-go
// for cards, midtrans-go Core API for QRIS). The two are interleaved in
// rounds so that drift of a shared machine hits both alike.
//
// The load generator is bounded: at most MaxCount payments per side, at
// most MaxDuration, at most MaxConcurrency workers, loopback only, and it
// stops by itself.
package bench

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	mt "github.com/midtrans/midtrans-go"
	"github.com/midtrans/midtrans-go/coreapi"
	stripeapi "github.com/stripe/stripe-go/v76"
	stripeclient "github.com/stripe/stripe-go/v76/client"

	"github.com/payrouter/payrouter/internal/app"
	"github.com/payrouter/payrouter/internal/config"
	"github.com/payrouter/payrouter/internal/cpustat"
	"github.com/payrouter/payrouter/internal/sim"
)

// Bounds of the load generator.
const (
	MaxCount       = 1_000_000
	MaxDuration    = 10 * time.Minute
	MaxConcurrency = 1024
	MaxRate        = 100000 // payments per second, open loop
	MaxInstances   = 4
	rounds         = 4 // direct and router alternate this many times
)

// Sandbox credentials of the benchmark's own configuration (not secrets:
// both the adapters and the simulators use them, on loopback).
const (
	apiKey      = "sk_bench_payrouter"
	stripeKey   = "sk_test_bench_payrouter"
	stripeWH    = "whsec_bench_payrouter"
	midtransKey = "SB-Mid-server-bench-payrouter"
)

// Options of a run.
type Options struct {
	// Duration is the measured time of the whole run, split evenly between
	// the router and the direct side (ignored when Count > 0).
	Duration time.Duration
	// Count is the number of payments per side (0: use Duration).
	Count int
	// Concurrency is the number of workers, the same for both sides; with
	// Rate, the most payments in flight.
	Concurrency int
	// Rate > 0 makes the load open: payments arrive at this many per
	// second per side (Poisson arrivals), whatever the answers' latency, as
	// a merchant's customers do; a payment's latency counts from its
	// arrival, so waiting for a free slot is not hidden. 0 is the closed
	// loop: each worker sends its next payment when the last is answered.
	Rate float64
	// Mix is the share of each method, in percent.
	Mix Mix
	// Store is sqlite (a fresh file in a temporary directory) or postgres.
	Store       string
	PostgresDSN string
	// Durable: SQLite synchronous=full (every commit is synced) or off.
	Durable bool
	// Faults are set on the simulators for the whole run (both sides).
	Faults map[string]sim.Faults
	// Webhooks: let the simulators' webhooks reach the router's inbox
	// during the router side, as in production. Off, the router answers
	// them 200 unprocessed (on both sides), so the comparison is of the
	// API call path alone.
	Webhooks bool
	// SimBinary, when set, is a payrouter binary: the simulators then run
	// in a `payrouter sim` process of their own (loopback), so the memory
	// figures are the router's and the load generator's alone.
	SimBinary string
	// Instances is the number of routers sharing the store (PostgreSQL
	// only), each with its own listener and simulators; the router side's
	// payments are spread over them. 0 means 1.
	Instances int
	// GC describes the collector's settings in force, for the report.
	GC string
	// Warmup per side before the first round (connections, caches).
	Warmup time.Duration
	// Progress receives a line per round; nil discards.
	Progress io.Writer
}

// Mix is the method mix in percent (Card + QRIS = 100).
type Mix struct{ Card, QRIS int }

// ParseMix reads "card=80,qris=20".
func ParseMix(s string) (Mix, error) {
	var m Mix
	seen := map[string]bool{}
	for _, part := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		n, err := strconv.Atoi(v)
		if !ok || err != nil || n < 0 || n > 100 {
			return Mix{}, fmt.Errorf("mix %q: want method=percent pairs like card=80,qris=20", s)
		}
		if seen[k] {
			return Mix{}, fmt.Errorf("mix %q: %s given twice", s, k)
		}
		seen[k] = true
		switch k {
		case "card":
			m.Card = n
		case "qris":
			m.QRIS = n
		default:
			return Mix{}, fmt.Errorf("mix %q: method %q: the benchmark sends card (stripe) and qris (midtrans)", s, k)
		}
	}
	if m.Card+m.QRIS != 100 {
		return Mix{}, fmt.Errorf("mix %q: percentages add up to %d, want 100", s, m.Card+m.QRIS)
	}
	return m, nil
}

func (m Mix) String() string { return fmt.Sprintf("card=%d,qris=%d", m.Card, m.QRIS) }

// ParseFaults reads "stripe=flaky:0.1,midtrans=slow:20": mode, then the
// error rate (flaky) or latency in ms (slow) or HTTP status (error).
func ParseFaults(s string) (map[string]sim.Faults, error) {
	out := map[string]sim.Faults{}
	if strings.TrimSpace(s) == "" {
		return out, nil
	}
	for _, part := range strings.Split(s, ",") {
		name, spec, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok || (name != "stripe" && name != "midtrans") {
			return nil, fmt.Errorf("faults %q: want provider=mode[:arg] with provider stripe or midtrans", s)
		}
		mode, arg, hasArg := strings.Cut(spec, ":")
		f := sim.Faults{Mode: mode}
		switch mode {
		case "flaky":
			f.ErrorRate = 0.1
			if hasArg {
				r, err := strconv.ParseFloat(arg, 64) // a probability, not money
				if err != nil || r < 0 || r > 1 {
					return nil, fmt.Errorf("faults %q: flaky rate %q: want 0..1", s, arg)
				}
				f.ErrorRate = r
			}
		case "slow":
			f.LatencyMS = 50
			if hasArg {
				ms, err := strconv.Atoi(arg)
				if err != nil || ms < 0 || ms > 10_000 {
					return nil, fmt.Errorf("faults %q: slow latency %q: want 0..10000 ms", s, arg)
				}
				f.LatencyMS = ms
			}
		case "error", "down", "none", "drop_after_charge":
			if hasArg {
				st, err := strconv.Atoi(arg)
				if err != nil || st < 400 || st > 599 {
					return nil, fmt.Errorf("faults %q: status %q: want 400..599", s, arg)
				}
				f.Status = st
			}
		default:
			return nil, fmt.Errorf("faults %q: mode %q: want flaky, slow, error, down, drop_after_charge or none", s, mode)
		}
		out[name] = f
	}
	return out, nil
}

// WithLatency makes every simulator without a fault of its own in f answer
// after d (the slow fault): real providers answer in hundreds of
// milliseconds, so a router holds that many payments in flight.
func WithLatency(f map[string]sim.Faults, d time.Duration) error {
	if d == 0 {
		return nil
	}
	if d < time.Millisecond || d > 10*time.Second {
		return fmt.Errorf("provider latency %v: want 1ms..10s", d)
	}
	for _, name := range []string{"stripe", "midtrans"} {
		if _, ok := f[name]; !ok {
			f[name] = sim.Faults{Mode: "slow", LatencyMS: int(d / time.Millisecond)}
		}
	}
	return nil
}

func (o *Options) check() error {
	switch {
	case o.Count < 0 || o.Count > MaxCount:
		return fmt.Errorf("count %d: want 1..%d", o.Count, MaxCount)
	case o.Count == 0 && (o.Duration <= 0 || o.Duration > MaxDuration):
		return fmt.Errorf("duration %v: want more than 0 and at most %v", o.Duration, MaxDuration)
	case o.Concurrency < 1 || o.Concurrency > MaxConcurrency:
		return fmt.Errorf("concurrency %d: want 1..%d", o.Concurrency, MaxConcurrency)
	case o.Mix.Card+o.Mix.QRIS != 100:
		return fmt.Errorf("mix %v: want percentages adding up to 100", o.Mix)
	case o.Store != "sqlite" && o.Store != "postgres":
		return fmt.Errorf("store %q: want sqlite or postgres", o.Store)
	case o.Store == "postgres" && o.PostgresDSN == "":
		return errors.New("store postgres needs --postgres-dsn")
	case o.Instances < 0 || o.Instances > MaxInstances:
		return fmt.Errorf("instances %d: want 1..%d", o.Instances, MaxInstances)
	case o.Instances > 1 && o.Store != "postgres":
		return errors.New("several instances share one store: --store postgres")
	case o.Warmup < 0 || o.Warmup > time.Minute:
		return fmt.Errorf("warmup %v: want 0..1m", o.Warmup)
	case o.Rate < 0 || o.Rate > MaxRate:
		return fmt.Errorf("rate %v: want 0 (closed loop) up to %d payments/s", o.Rate, MaxRate)
	}
	return nil
}

// Side is the measurement of one side (router or direct).
type Side struct {
	Payments   int            `json:"payments"`
	Errors     int            `json:"errors"`
	ErrorKinds map[string]int `json:"error_kinds,omitempty"`
	Seconds    float64        `json:"seconds"`
	PerSecond  float64        `json:"payments_per_second"`
	P50MS      float64        `json:"p50_ms"`
	P95MS      float64        `json:"p95_ms"`
	P99MS      float64        `json:"p99_ms"`
	MaxMS      float64        `json:"max_ms"`
	// CPUMicros is the CPU time (user + system) this process spent per
	// payment of the side: the cost a busy machine cannot hide, as
	// throughput on a shared machine moves with the neighbours' load. With
	// the simulators in-process it counts their work too (on both sides).
	CPUMicros float64 `json:"cpu_us_per_payment"`
}

// Result of a run.
type Result struct {
	Date        string  `json:"date"`
	GoVersion   string  `json:"go_version"`
	CPUs        int     `json:"cpus"`
	GOMAXPROCS  int     `json:"gomaxprocs"`
	CPUModel    string  `json:"cpu_model"`
	Store       string  `json:"store"`
	Durable     bool    `json:"durable"`
	Concurrency int     `json:"concurrency"`
	Rate        float64 `json:"rate,omitempty"` // open loop: payments offered per second per side
	Mix         string  `json:"mix"`
	Faults      string  `json:"faults,omitempty"`
	Webhooks    bool    `json:"webhooks"`
	Instances   int     `json:"instances"`
	GC          string  `json:"gc,omitempty"` // the collector's settings (GOGC, memory limit)
	SimProcess  bool    `json:"sim_process"`  // simulators in their own process: RSS is the router's and the generator's
	Router      Side    `json:"router"`
	Direct      Side    `json:"direct"`
	Overhead    Side    `json:"overhead"`             // router minus direct, per percentile
	PeakRSSMB   float64 `json:"peak_rss_mb"`          // VmHWM of the whole process
	RouterRSSMB float64 `json:"router_side_rss_mb"`   // highest VmRSS sampled during the router side
	EndRSSMB    float64 `json:"rss_at_end_mb"`        // VmRSS when the run finished
	StoreWrites string  `json:"store_note,omitempty"` // what "durable" means for this store
}

// Run runs the benchmark. It returns an error when the sandbox cannot
// start; failed payments are counted, not returned.
func Run(ctx context.Context, o Options) (*Result, error) {
	if err := o.check(); err != nil {
		return nil, err
	}
	progress := o.Progress
	if progress == nil {
		progress = io.Discard
	}
	env, err := start(ctx, o)
	if err != nil {
		return nil, err
	}
	defer env.stop()

	runID := randHex(4)
	gen := &generator{env: env, opts: o, runID: runID}
	// Warm both sides up: connections, the store's page cache, the SDKs.
	if o.Warmup > 0 {
		gen.phase(ctx, gen.viaRouter, "w", 0, o.Warmup, nil)
		gen.phase(ctx, gen.direct, "w", 0, o.Warmup, nil)
		env.flush(ctx)
	}
	var router, direct phaseStats
	rss := &rssSampler{}
	for r := range rounds {
		var count int
		var dur time.Duration
		if o.Count > 0 {
			count = o.Count / rounds
			if r == rounds-1 {
				count = o.Count - count*(rounds-1)
			}
		} else {
			dur = o.Duration / (2 * rounds)
		}
		tag := strconv.Itoa(r)
		direct.add(gen.phase(ctx, gen.direct, "d"+tag, count, dur, nil))
		lagD := env.flush(ctx)
		router.add(gen.phase(ctx, gen.viaRouter, "r"+tag, count, dur, rss))
		lagR := env.flush(ctx)
		fmt.Fprintf(progress, "round %d/%d: direct %d payments, router %d payments (webhooks still queued drained in %v after direct, %v after router)\n",
			r+1, rounds, direct.n(), router.n(), lagD.Round(time.Millisecond), lagR.Round(time.Millisecond))
		if ctx.Err() != nil {
			break
		}
	}
	res := &Result{
		Date: time.Now().UTC().Format(time.RFC3339), GoVersion: runtime.Version(), CPUs: runtime.NumCPU(),
		GOMAXPROCS: runtime.GOMAXPROCS(0), CPUModel: cpuModel(), Store: o.Store, Durable: o.Durable,
		Concurrency: o.Concurrency, Rate: o.Rate, Mix: o.Mix.String(), GC: o.GC, Webhooks: o.Webhooks, Instances: max(o.Instances, 1), SimProcess: o.SimBinary != "",
		Router: router.side(), Direct: direct.side(),
	}
	res.Faults = faultString(o.Faults)
	res.Overhead = Side{
		P50MS: res.Router.P50MS - res.Direct.P50MS, P95MS: res.Router.P95MS - res.Direct.P95MS,
		P99MS: res.Router.P99MS - res.Direct.P99MS, MaxMS: res.Router.MaxMS - res.Direct.MaxMS, CPUMicros: res.Router.CPUMicros - res.Direct.CPUMicros,
		PerSecond: res.Router.PerSecond - res.Direct.PerSecond,
	}
	hwm, cur := procStatus()
	res.PeakRSSMB, res.EndRSSMB, res.RouterRSSMB = mb(hwm), mb(cur), mb(rss.max.Load())
	switch {
	case o.Store == "postgres":
		res.StoreWrites = "postgres: durability is the server's (synchronous_commit); --durable does not change it"
	case o.Durable:
		res.StoreWrites = "sqlite synchronous=FULL: every commit is fsynced before the API answers (group commit)"
	default:
		res.StoreWrites = "sqlite synchronous=OFF: commits are not fsynced (not crash-safe)"
	}
	return res, nil
}

// env is the running sandbox.
type env struct {
	base    string   // http://127.0.0.1:port of the first instance: the direct side's simulators
	bases   []string // every router instance's
	next    atomic.Uint64
	client  *http.Client
	stripe  *stripeclient.API
	mtTrans http.RoundTripper // rewrites midtrans-go's fixed URL to the simulator
	dir     string
	webhook atomic.Bool // process webhooks now
	sims    []*sim.Sim  // in-process simulators, every instance's
	simBase string      // the simulator process, with --sim-process
	stopFn  func()
}

func start(ctx context.Context, o Options) (*env, error) {
	e := &env{}
	cfgYAML := benchConfig
	dsn := o.PostgresDSN
	if o.Store == "sqlite" {
		dir, err := os.MkdirTemp("", "payrouter-bench-")
		if err != nil {
			return nil, err
		}
		e.dir = dir
		dsn = filepath.Join(dir, "bench.db")
	}
	cfg, err := config.Parse("bench.yaml", []byte(cfgYAML), func(string) (string, bool) { return "", false })
	if err != nil {
		e.cleanup()
		return nil, fmt.Errorf("bench config: %w", err)
	}
	cfg.Store.Driver, cfg.Store.DSN = o.Store, dsn
	cfg.Store.Synchronous = "off"
	if o.Durable {
		cfg.Store.Synchronous = "full"
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	n := max(o.Instances, 1)
	var stops []func()
	e.stopFn = func() {
		for _, stop := range slices.Backward(stops) {
			stop()
		}
		e.cleanup()
	}
	// Loopback only: the listeners are ours, on 127.0.0.1.
	lns := make([]net.Listener, n)
	for i := range lns {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			for _, l := range lns[:i] {
				l.Close()
			}
			e.cleanup()
			return nil, err
		}
		lns[i] = ln
	}
	faults := o.Faults
	if o.SimBinary != "" {
		simBase, stop, err := e.startSimProcess(ctx, o.SimBinary, cfgYAML, "http://"+lns[0].Addr().String())
		if err == nil {
			stops = append(stops, stop)
			err = setFaults(ctx, simBase, o.Faults)
		}
		if err != nil {
			for _, l := range lns {
				l.Close()
			}
			e.stopFn()
			return nil, err
		}
		cfg.SimURL, faults = simBase, nil
		e.base, e.simBase = simBase, simBase
	}
	for i := range n {
		a, stop, err := e.startInstance(ctx, cfg, lns[i], faults, log)
		if err != nil {
			for _, l := range lns[i+1:] {
				l.Close()
			}
			e.stopFn()
			return nil, err
		}
		stops = append(stops, stop)
		e.bases = append(e.bases, a.URL)
		for _, s := range a.Sims {
			e.sims = append(e.sims, s)
		}
	}
	if e.base == "" {
		e.base = e.bases[0]
	}

	// One transport for the load generator, sized so that every worker
	// keeps its connection: both sides reuse connections alike.
	tr := &http.Transport{MaxIdleConns: 2 * o.Concurrency, MaxIdleConnsPerHost: 2 * o.Concurrency, IdleConnTimeout: 90 * time.Second}
	e.client = &http.Client{Transport: tr, Timeout: 30 * time.Second}
	backend := stripeapi.GetBackendWithConfig(stripeapi.APIBackend, &stripeapi.BackendConfig{
		URL: stripeapi.String(e.base + "/sim/stripe"), HTTPClient: e.client,
		MaxNetworkRetries: stripeapi.Int64(0), LeveledLogger: &stripeapi.LeveledLogger{Level: stripeapi.LevelNull},
		EnableTelemetry: stripeapi.Bool(false),
	})
	e.stripe = stripeclient.New(stripeKey, &stripeapi.Backends{API: backend, Connect: backend, Uploads: backend})
	u, _ := url.Parse(e.base + "/sim/midtrans")
	e.mtTrans = &rewrite{base: u, next: tr}
	return e, nil
}

// startInstance starts one router (with its simulators) on a loopback
// listener of its own; several share the store (PostgreSQL).
func (e *env) startInstance(ctx context.Context, cfg *config.Config, ln net.Listener, faults map[string]sim.Faults, log *slog.Logger) (*app.App, func(), error) {
	c := *cfg
	c.Server.Listen = ln.Addr().String()
	actx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	a, err := app.New(actx, &c, app.Options{Listener: ln, Log: log})
	if err != nil {
		cancel()
		ln.Close()
		return nil, nil, fmt.Errorf("start sandbox: %w", err)
	}
	fail := func(err error) (*app.App, func(), error) {
		cancel()
		a.Close()
		return nil, nil, err
	}
	if err := loopbackOnly(a.URL); err != nil {
		return fail(err)
	}
	inner := a.Handler
	a.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// CPU profile samples of each request carry what served it
		// (go tool pprof -tagfocus handler=api|sim|webhook).
		ctx := pprof.WithLabels(r.Context(), pprof.Labels("handler", handlerOf(r.URL.Path)))
		pprof.SetGoroutineLabels(ctx)
		r = r.WithContext(ctx)
		if !e.webhook.Load() && strings.HasPrefix(r.URL.Path, "/webhooks/") {
			_, _ = io.Copy(io.Discard, r.Body)
			w.WriteHeader(http.StatusOK)
			return
		}
		inner.ServeHTTP(w, r)
	})
	for name, f := range faults {
		s := a.Sims[name]
		if s == nil {
			return fail(fmt.Errorf("faults: no simulator %q", name))
		}
		if err := s.SetFaults(f); err != nil {
			return fail(fmt.Errorf("faults %s: %w", name, err))
		}
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = a.Serve(actx) }()
	return a, func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
		}
		a.Close()
	}, nil
}

func (e *env) stop() {
	if e.stopFn != nil {
		e.stopFn()
	}
}

func (e *env) cleanup() {
	if e.dir != "" {
		_ = os.RemoveAll(e.dir)
	}
}

func loopbackOnly(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return err
	}
	ip := net.ParseIP(u.Hostname())
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("bench: refusing to send load to %s: loopback only", u.Host)
	}
	return nil
}

// rewrite points midtrans-go's hard-coded sandbox URL at the simulator.
type rewrite struct {
	base *url.URL
	next http.RoundTripper
}

func (t *rewrite) RoundTrip(req *http.Request) (*http.Response, error) {
	r := req.Clone(req.Context())
	r.URL.Scheme, r.URL.Host = t.base.Scheme, t.base.Host
	r.URL.Path, r.URL.RawPath = t.base.Path+req.URL.Path, ""
	r.Host = ""
	return t.next.RoundTrip(r)
}

// generator sends payments.
type generator struct {
	env   *env
	opts  Options
	runID string
}

type sendFunc func(ctx context.Context, card bool, ref string) (errKind string)

// phase runs one side with opts.Concurrency workers until count payments
// (count > 0) or dur has passed, and returns every latency.
func (g *generator) phase(ctx context.Context, send sendFunc, tag string, count int, dur time.Duration, rss *rssSampler) phaseStats {
	g.env.webhook.Store(g.opts.Webhooks && rss != nil)
	defer g.env.webhook.Store(false)
	var next atomic.Int64
	deadline := time.Now().Add(dur)
	if count > 0 || dur <= 0 {
		deadline = time.Now().Add(MaxDuration)
	}
	limit := int64(count)
	if count <= 0 {
		limit = MaxCount
	}
	var stopRSS func()
	if rss != nil {
		stopRSS = rss.run()
	}
	workers := make([]phaseStats, g.opts.Concurrency)
	var wg sync.WaitGroup
	cpu0 := cpustat.Process()
	start := time.Now()
	if g.opts.Rate > 0 {
		g.open(ctx, send, tag, workers, limit, deadline)
	} else {
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				// CPU profile samples of the load generator carry its side
				// (go tool pprof -tagfocus load=router).
				pprof.SetGoroutineLabels(pprof.WithLabels(ctx, pprof.Labels("load", sideOf(tag))))
				for ctx.Err() == nil && time.Now().Before(deadline) {
					i := next.Add(1)
					if i > limit {
						return
					}
					g.one(ctx, send, tag, i, &workers[w], time.Now())
				}
			}()
		}
		wg.Wait()
	}
	elapsed := time.Since(start)
	if stopRSS != nil {
		stopRSS()
	}
	var all phaseStats
	for i := range workers {
		all.add(workers[i])
	}
	all.elapsed = elapsed
	all.cpu = cpustat.Process() - cpu0
	return all
}

// open is phase's open loop: payments arrive at opts.Rate per second
// (exponential gaps) until limit or deadline, each sent on its own
// goroutine holding one of len(slots) slots; an arrival finding every slot
// taken waits, its latency counting from its arrival.
func (g *generator) open(ctx context.Context, send sendFunc, tag string, slots []phaseStats, limit int64, deadline time.Time) {
	free := make(chan int, len(slots))
	for i := range slots {
		free <- i
	}
	ctx = pprof.WithLabels(ctx, pprof.Labels("load", sideOf(tag)))
	rnd := mrand.New(mrand.NewPCG(uint64(time.Now().UnixNano()), 12))
	var wg sync.WaitGroup
	at := time.Now()
	for i := int64(1); i <= limit && ctx.Err() == nil; i++ {
		at = at.Add(time.Duration(rnd.ExpFloat64() / g.opts.Rate * float64(time.Second)))
		if at.After(deadline) {
			break
		}
		if d := time.Until(at); d > 0 {
			time.Sleep(d)
		}
		var slot int
		select {
		case slot = <-free:
		case <-ctx.Done():
		}
		// Arrivals the router could not take in time are not sent after
		// the deadline: the run stays bounded in time at any rate.
		if ctx.Err() != nil || time.Now().After(deadline) {
			break
		}
		wg.Add(1)
		go func(i int64, arrived time.Time) {
			defer wg.Done()
			pprof.SetGoroutineLabels(ctx)
			g.one(ctx, send, tag, i, &slots[slot], arrived)
			free <- slot
		}(i, at)
	}
	wg.Wait()
}

// one sends the phase's payment i and records it in st, its latency
// counted from start.
func (g *generator) one(ctx context.Context, send sendFunc, tag string, i int64, st *phaseStats, start time.Time) {
	// Deterministic mix: payment i is a card when its position within each
	// hundred falls in the card share.
	card := int(i%100) < g.opts.Mix.Card
	kind := send(ctx, card, g.runID+tag+strconv.FormatInt(i, 36))
	st.lat = append(st.lat, time.Since(start))
	if kind != "" {
		st.errs = addKind(st.errs, kind)
	}
}

func sideOf(tag string) string {
	switch {
	case strings.HasPrefix(tag, "r"):
		return "router"
	case strings.HasPrefix(tag, "d"):
		return "direct"
	}
	return "warmup"
}

func handlerOf(path string) string {
	switch {
	case strings.HasPrefix(path, "/sim/"):
		return "sim"
	case strings.HasPrefix(path, "/webhooks/"):
		return "webhook"
	}
	return "api"
}

// startSimProcess runs the simulators in a `payrouter sim` process of
// their own on a loopback port, posting webhooks to routerURL, and returns
// their base URL once they serve.
func (e *env) startSimProcess(ctx context.Context, bin, cfgYAML, routerURL string) (string, func(), error) {
	if e.dir == "" {
		dir, err := os.MkdirTemp("", "payrouter-bench-")
		if err != nil {
			return "", nil, err
		}
		e.dir = dir
	}
	path := filepath.Join(e.dir, "sim.yaml")
	if err := os.WriteFile(path, []byte(cfgYAML), 0o600); err != nil {
		return "", nil, err
	}
	cmd := exec.Command(bin, "sim", "--config", path, "--listen", "127.0.0.1:0", "--router", routerURL)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return "", nil, err
	}
	if err := cmd.Start(); err != nil {
		return "", nil, fmt.Errorf("start simulators: %w", err)
	}
	stop := func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	}
	// "payrouter sim: serving N simulators at http://127.0.0.1:PORT/sim/{provider}, …"
	line, err := bufio.NewReader(out).ReadString('\n')
	go func() { _, _ = io.Copy(io.Discard, out) }()
	_, rest, ok := strings.Cut(line, " at ")
	base, _, ok2 := strings.Cut(rest, "/sim/")
	if err != nil || !ok || !ok2 {
		stop()
		return "", nil, fmt.Errorf("simulators did not start (%q): %v", line, err)
	}
	if err := loopbackOnly(base); err != nil {
		stop()
		return "", nil, err
	}
	return base, stop, nil
}

// setFaults sets faults through the simulators' control API.
func setFaults(ctx context.Context, simBase string, faults map[string]sim.Faults) error {
	for name, f := range faults {
		body, err := json.Marshal(f)
		if err != nil {
			return err
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, simBase+"/sim/"+name+"/_faults", bytes.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return fmt.Errorf("faults %s: %w", name, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("faults %s: simulator answered %s", name, resp.Status)
		}
	}
	return nil
}

// flush waits, between phases and outside their clocks, for the webhooks
// the simulators still hold: their deliveries lag the API calls (Stripe's
// go through one goroutine, in order), so the backlog of a fast direct
// phase would otherwise be posted, and its CPU spent, during the router
// phase that follows.
func (e *env) flush(ctx context.Context) time.Duration {
	start := time.Now()
	// Bounded: a router failing every webhook would make the simulators
	// retry each one; the run goes on after a minute.
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for _, s := range e.sims {
		_ = sim.FlushWithin(ctx, s.Backend)
	}
	if e.simBase != "" {
		for _, name := range []string{"stripe", "midtrans"} {
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.simBase+"/sim/"+name+"/_flush", nil)
			if err != nil {
				break
			}
			if resp, err := http.DefaultClient.Do(req); err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}
	}
	return time.Since(start)
}

// routerBase spreads the router side's payments over the instances.
func (e *env) routerBase() string {
	return e.bases[e.next.Add(1)%uint64(len(e.bases))]
}

// viaRouter is one payment through the router's API, with an
// Idempotency-Key, as a merchant sends it.
func (g *generator) viaRouter(ctx context.Context, card bool, ref string) string {
	var body []byte
	if card {
		body = fmt.Appendf(nil, `{"amount":1000,"currency":"USD","method":"card","reference":%q,"payment_method_tokens":{"stripe":"pm_card_visa"}}`, ref)
	} else {
		body = fmt.Appendf(nil, `{"amount":50000,"currency":"IDR","method":"qris","reference":%q}`, ref)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, g.env.routerBase()+"/v1/payments", bytes.NewReader(body))
	if err != nil {
		return "request"
	}
	req.Header.Set("Authorization", "Bearer "+apiKey)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", ref)
	resp, err := g.env.client.Do(req)
	if err != nil {
		return "transport"
	}
	defer resp.Body.Close()
	var p struct {
		Status string `json:"status"`
	}
	derr := json.NewDecoder(resp.Body).Decode(&p)
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusCreated {
		return "http " + strconv.Itoa(resp.StatusCode)
	}
	if derr != nil {
		return "bad response"
	}
	want := "succeeded"
	if !card {
		want = "requires_action"
	}
	if p.Status != want {
		return "status " + p.Status
	}
	return ""
}

// direct is the same payment sent to the simulator through the provider's
// own SDK: what a merchant without payrouter would do.
func (g *generator) direct(ctx context.Context, card bool, ref string) string {
	if card {
		params := &stripeapi.PaymentIntentParams{
			Amount: stripeapi.Int64(1000), Currency: stripeapi.String("usd"), Confirm: stripeapi.Bool(true),
			PaymentMethod: stripeapi.String("pm_card_visa"), PaymentMethodTypes: stripeapi.StringSlice([]string{"card"}),
			CaptureMethod: stripeapi.String(string(stripeapi.PaymentIntentCaptureMethodAutomatic)),
		}
		params.Context = ctx
		params.SetIdempotencyKey(ref)
		pi, err := g.env.stripe.PaymentIntents.New(params)
		if err != nil {
			var se *stripeapi.Error
			if errors.As(err, &se) {
				return "http " + strconv.Itoa(se.HTTPStatusCode)
			}
			return "transport"
		}
		if pi.Status != stripeapi.PaymentIntentStatusSucceeded {
			return "status " + string(pi.Status)
		}
		return ""
	}
	// midtrans-go: a fresh client per call, so an idempotency key set on
	// its Options is never sent again (the SDK pitfall); the http.Client
	// carries the timeout since the SDK drops contexts.
	opts := &mt.ConfigOptions{}
	opts.SetPaymentIdempotencyKey(ref)
	c := coreapi.Client{ServerKey: midtransKey, Env: mt.Sandbox, Options: opts,
		HttpClient: &mt.HttpClientImplementation{HttpClient: &http.Client{Transport: g.env.mtTrans, Timeout: 30 * time.Second}, Logger: quietMidtrans{}}}
	resp, merr := c.ChargeTransaction(&coreapi.ChargeReq{
		PaymentType:        coreapi.PaymentTypeQris,
		TransactionDetails: mt.TransactionDetails{OrderID: ref, GrossAmt: 50000},
		Qris:               &coreapi.QrisDetails{Acquirer: "gopay"},
	})
	if merr != nil {
		if merr.StatusCode != 0 {
			return "http " + strconv.Itoa(merr.StatusCode)
		}
		return "transport"
	}
	if resp.TransactionStatus != "pending" {
		return "status " + resp.TransactionStatus
	}
	return ""
}

// quietMidtrans keeps midtrans-go from logging (its sandbox logger prints
// the Authorization header).
type quietMidtrans struct{}

func (quietMidtrans) Error(string, ...interface{}) {}
func (quietMidtrans) Info(string, ...interface{})  {}
func (quietMidtrans) Debug(string, ...interface{}) {}

type phaseStats struct {
	lat     []time.Duration
	errs    map[string]int
	elapsed time.Duration
	cpu     time.Duration // process CPU time during the phase
}

func addKind(m map[string]int, k string) map[string]int {
	if m == nil {
		m = map[string]int{}
	}
	m[k]++
	return m
}

func (s *phaseStats) add(o phaseStats) {
	s.lat = append(s.lat, o.lat...)
	for k, v := range o.errs {
		if s.errs == nil {
			s.errs = map[string]int{}
		}
		s.errs[k] += v
	}
	s.elapsed += o.elapsed
	s.cpu += o.cpu
}

func (s *phaseStats) n() int { return len(s.lat) }

func (s *phaseStats) side() Side {
	out := Side{Payments: len(s.lat), ErrorKinds: s.errs, Seconds: s.elapsed.Seconds()}
	for _, v := range s.errs {
		out.Errors += v
	}
	if len(s.lat) == 0 {
		return out
	}
	slices.Sort(s.lat)
	pct := func(p float64) float64 {
		i := int(p*float64(len(s.lat))+0.5) - 1
		i = max(0, min(i, len(s.lat)-1))
		return ms(s.lat[i])
	}
	out.P50MS, out.P95MS, out.P99MS, out.MaxMS = pct(0.50), pct(0.95), pct(0.99), ms(s.lat[len(s.lat)-1])
	if s.elapsed > 0 {
		out.PerSecond = float64(len(s.lat)) / s.elapsed.Seconds()
	}
	out.CPUMicros = float64(s.cpu.Microseconds()) / float64(len(s.lat))
	return out
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func mb(b int64) float64 { return float64(b) / (1 << 20) }

// rssSampler records the highest resident set size seen while it runs.
type rssSampler struct{ max atomic.Int64 }

func (r *rssSampler) run() (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			if _, cur := procStatus(); cur > r.max.Load() {
				r.max.Store(cur)
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

// procStatus returns VmHWM (peak resident set) and VmRSS in bytes from
// /proc/self/status; zeros where it is not available (not Linux).
func procStatus() (hwm, rss int64) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) != 2 || f[1] != "kB" {
			continue
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			continue
		}
		switch k {
		case "VmHWM":
			hwm = n << 10
		case "VmRSS":
			rss = n << 10
		}
	}
	return hwm, rss
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return runtime.GOARCH
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return runtime.GOARCH
}

func faultString(f map[string]sim.Faults) string {
	var parts []string
	for name, v := range f {
		parts = append(parts, fmt.Sprintf("%s=%s(rate %.2f, latency %dms, status %d)", name, v.Mode, v.ErrorRate, v.LatencyMS, v.Status))
	}
	slices.Sort(parts)
	return strings.Join(parts, " ")
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand does not fail on supported platforms
	return hex.EncodeToString(b)
}

// benchConfig is the sandbox the benchmark runs: the two providers it
// measures, their simulators in-process, cards to Stripe and QRIS to
// Midtrans.
const benchConfig = `
server: {listen: "127.0.0.1:0", rate_limit: {rps: 0}}   # the load generator is not a merchant to limit
sandbox: true
merchants:
  - {id: bench, api_keys: ["` + apiKey + `"], webhook_url: "", webhook_secret: whsec_bench}
router: {attempt_timeout: 10s, deadline: 30s, max_attempts: 3, payment_ttl: 24h}
log: {level: error}
providers:
  stripe:   {secret_key: "` + stripeKey + `", webhook_secret: "` + stripeWH + `", timeout: 10s,
             breaker: {failure_ratio: 0.5, min_requests: 10, open_for: 30s}}
  midtrans: {server_key: "` + midtransKey + `", timeout: 10s}
fees:
  stripe:   {card: {percent: 2.9, fixed: {USD: 30}}}
  midtrans: {qris: {percent: 0.7}}
rules:
  - name: cards
    match: {method: [card]}
    strategy: priority
    providers: [stripe]
default: {strategy: priority, providers: [midtrans]}
`
