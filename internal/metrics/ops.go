package metrics

import (
	"context"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/payrouter/payrouter"
	"github.com/payrouter/payrouter/internal/store"
)

// What an alert needs beyond the provider calls: the merchant API's
// latency and errors, build info, breaker states from the start, and the
// store-wide backlog figures.

// InitBreakers sets the breaker state of every provider × method to closed
// at start, so a breaker that never moved is a 0, not a missing series.
func (m *Metrics) InitBreakers(provider string, methods []payrouter.Method) {
	for _, me := range methods {
		m.BreakerState.WithLabelValues(provider, string(me)).Set(0)
	}
}

// Instrument records the merchant API's request durations by route (the
// mux pattern, e.g. "POST /v1/payments") and status code. Only /v1 routes
// are recorded: the label set stays bounded.
func (m *Metrics) Instrument(next http.Handler) http.Handler {
	m.once.Do(m.registerHTTP)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
		next.ServeHTTP(sw, r)
		if route := r.Pattern; strings.Contains(route, " /v1/") {
			m.httpDuration.WithLabelValues(route, strconv.Itoa(sw.code)).Observe(time.Since(start).Seconds())
		}
	})
}

func (m *Metrics) registerHTTP() {
	m.httpDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "payrouter_http_request_duration_seconds",
		Help:    "Merchant API request duration by route (method and pattern) and status code.",
		Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}}, []string{"route", "code"})
	m.Registry.MustRegister(m.httpDuration)
}

type statusWriter struct {
	http.ResponseWriter
	code  int
	wrote bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote {
		w.code, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// RegisterBuildInfo exports payrouter_build_info{version, goversion} 1.
func (m *Metrics) RegisterBuildInfo() {
	version, gov := "devel", "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		gov = bi.GoVersion
		if bi.Main.Version != "" {
			version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && version == "(devel)" {
				version = s.Value
			}
		}
	}
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "payrouter_build_info", Help: "Always 1; the labels say what is running.",
		ConstLabels: prometheus.Labels{"version": version, "goversion": gov}})
	g.Set(1)
	m.Registry.MustRegister(g)
}

// WatchStore exports the store-wide figures of st, read at most every
// maxAge (a scrape never waits on more than one round of queries).
func (m *Metrics) WatchStore(st store.StatsReader, maxAge time.Duration, onErr func(error)) {
	m.Registry.MustRegister(&storeCollector{st: st, maxAge: maxAge, onErr: onErr})
}

var (
	descPayments  = prometheus.NewDesc("payrouter_payments", "Payments in the store by provider, method and status (store-wide: every instance reports the same).", []string{"provider", "method", "status"}, nil)
	descFailovers = prometheus.NewDesc("payrouter_failover_attempts", "Attempts after a payment's first (a failover), by the provider failed over to (store-wide).", []string{"provider"}, nil)
	descResolver  = prometheus.NewDesc("payrouter_resolver_queue_depth", "Payments due for the resolver now.", nil, nil)
	descInbox     = prometheus.NewDesc("payrouter_inbox_backlog", "Provider webhooks stored but not yet processed.", nil, nil)
	descDeliv     = prometheus.NewDesc("payrouter_webhook_deliveries", "Merchant webhook deliveries by status (pending, dead = dead-lettered).", []string{"status"}, nil)
	descOldest    = prometheus.NewDesc("payrouter_webhook_delivery_oldest_pending_seconds", "Age of the oldest pending merchant webhook delivery (0 when none).", nil, nil)
	descAnomalies = prometheus.NewDesc("payrouter_anomalies_open", "Anomalies not yet resolved by ops.", nil, nil)
	descStatsErr  = prometheus.NewDesc("payrouter_store_stats_ok", "1 when the store figures above were read on the last try, 0 when the store failed.", nil, nil)
)

type storeCollector struct {
	st     store.StatsReader
	maxAge time.Duration
	onErr  func(error)

	mu   sync.Mutex
	at   time.Time
	last *store.Stats
	ok   bool
}

func (c *storeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descPayments, descFailovers, descResolver, descInbox, descDeliv, descOldest, descAnomalies, descStatsErr} {
		ch <- d
	}
}

func (c *storeCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	now := time.Now()
	if c.last == nil || now.Sub(c.at) >= c.maxAge {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		s, err := c.st.Stats(ctx, now)
		cancel()
		c.at, c.ok = now, err == nil
		if err == nil {
			c.last = s
		} else if c.onErr != nil {
			c.onErr(err)
		}
	}
	s, ok := c.last, c.ok
	c.mu.Unlock()
	b := 0.0
	if ok {
		b = 1
	}
	ch <- prometheus.MustNewConstMetric(descStatsErr, prometheus.GaugeValue, b)
	if s == nil {
		return
	}
	for _, p := range s.Payments {
		ch <- prometheus.MustNewConstMetric(descPayments, prometheus.GaugeValue, float64(p.N), p.Provider, p.Method, p.Status)
	}
	for p, n := range s.Failovers {
		ch <- prometheus.MustNewConstMetric(descFailovers, prometheus.GaugeValue, float64(n), p)
	}
	ch <- prometheus.MustNewConstMetric(descResolver, prometheus.GaugeValue, float64(s.ResolverDue))
	ch <- prometheus.MustNewConstMetric(descInbox, prometheus.GaugeValue, float64(s.InboxBacklog))
	ch <- prometheus.MustNewConstMetric(descDeliv, prometheus.GaugeValue, float64(s.DeliveriesPending), "pending")
	ch <- prometheus.MustNewConstMetric(descDeliv, prometheus.GaugeValue, float64(s.DeliveriesDead), "dead")
	age := 0.0
	if s.OldestPending != nil {
		age = max(0, now.Sub(*s.OldestPending).Seconds())
	}
	ch <- prometheus.MustNewConstMetric(descOldest, prometheus.GaugeValue, age)
	ch <- prometheus.MustNewConstMetric(descAnomalies, prometheus.GaugeValue, float64(s.AnomaliesOpen))
}
