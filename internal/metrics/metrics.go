// Package metrics holds payrouter's Prometheus collectors, registered on a
// registry of their own (no global state) and served at /metrics.
package metrics

import (
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/sony/gobreaker/v2"

	"github.com/payrouter/payrouter"
	"github.com/payrouter/payrouter/providers"
)

// Metrics are payrouter's collectors.
type Metrics struct {
	Registry      *prometheus.Registry
	ProviderCalls *prometheus.CounterVec
	ProviderTime  *prometheus.HistogramVec
	BreakerState  *prometheus.GaugeVec
	BreakerTrips  *prometheus.CounterVec
	RulesReload   *prometheus.CounterVec
	RulesValid    prometheus.Gauge
	AuthFailures  *prometheus.CounterVec

	once         sync.Once // registers httpDuration on first Instrument
	httpDuration *prometheus.HistogramVec
}

// New registers every collector on a fresh registry.
func New() *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		ProviderCalls: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "payrouter_provider_calls_total",
			Help: "Provider calls by operation and outcome class (ok, declined, invalid, unavailable, ambiguous)."}, []string{"provider", "method", "op", "class"}),
		ProviderTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "payrouter_provider_call_seconds",
			Help: "Provider call latency.", Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}}, []string{"provider", "op"}),
		BreakerState: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "payrouter_breaker_state",
			Help: "Circuit breaker state per provider and method: 0 closed, 1 half-open, 2 open."}, []string{"provider", "method"}),
		BreakerTrips: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "payrouter_breaker_transitions_total",
			Help: "Breaker state transitions."}, []string{"provider", "method", "to"}),
		RulesReload: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "payrouter_rules_reloads_total",
			Help: "Rules reloads by result (ok, invalid)."}, []string{"result"}),
		RulesValid: prometheus.NewGauge(prometheus.GaugeOpts{Name: "payrouter_rules_last_reload_ok",
			Help: "1 when the last rules reload succeeded, 0 when the file on disk is invalid and older rules are live."}),
		AuthFailures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "payrouter_provider_auth_failures_total",
			Help: "Provider calls refused because of payrouter's own credentials (wrong or unpermitted key: HTTP 401/403)."}, []string{"provider"}),
	}
	m.RulesValid.Set(1)
	m.Registry.MustRegister(m.ProviderCalls, m.ProviderTime, m.BreakerState, m.BreakerTrips, m.RulesReload, m.RulesValid, m.AuthFailures,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves the registry.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{})
}

// ObserveCall records one provider call (router.Guarded.Observe).
func (m *Metrics) ObserveCall(provider string, method payrouter.Method, op string, class providers.Class, d time.Duration) {
	c := string(class)
	if c == "" {
		c = "ok"
	}
	m.ProviderCalls.WithLabelValues(provider, string(method), op, c).Inc()
	m.ProviderTime.WithLabelValues(provider, op).Observe(d.Seconds())
}

// ObserveBreaker records a breaker transition.
func (m *Metrics) ObserveBreaker(provider string, method payrouter.Method, to gobreaker.State) {
	m.BreakerState.WithLabelValues(provider, string(method)).Set(float64(to))
	m.BreakerTrips.WithLabelValues(provider, string(method), to.String()).Inc()
}

// ObserveReload records a rules reload.
func (m *Metrics) ObserveReload(err error) {
	if err != nil {
		m.RulesReload.WithLabelValues("invalid").Inc()
		m.RulesValid.Set(0)
		return
	}
	m.RulesReload.WithLabelValues("ok").Inc()
	m.RulesValid.Set(1)
}

// WatchInbox exposes the webhook inbox's counters.
func (m *Metrics) WatchInbox(received, refused, duplicates, unconfirmed *atomic.Int64) {
	for name, c := range map[string]*atomic.Int64{"received": received, "refused": refused, "duplicate": duplicates, "unconfirmed": unconfirmed} {
		c := c
		m.Registry.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "payrouter_webhooks_total", Help: "Provider webhooks by result: received (stored), refused (signature, IP, malformed), duplicate (already dealt with), unconfirmed (a check the status API did not bear out yet).",
			ConstLabels: prometheus.Labels{"result": name},
		}, func() float64 { return float64(c.Load()) }))
	}
}
