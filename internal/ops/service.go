package ops

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/payrouter/payrouter"
	"github.com/payrouter/payrouter/internal/store"
	"github.com/payrouter/payrouter/providers"
	"github.com/payrouter/payrouter/rules"
)

// ErrForbidden is the error type of a call above the actor's role (403).
const ErrForbidden payrouter.ErrorType = "forbidden"

// Payments is what ops reads and redelivers of the payment store.
type Payments interface {
	GetPayment(ctx context.Context, merchantID, id string) (*payrouter.Payment, error)
	FindPayment(ctx context.Context, provider, providerPaymentID string) (*payrouter.Payment, error)
	ListPayments(ctx context.Context, f store.ListFilter) ([]*payrouter.Payment, error)
	ScanPayments(ctx context.Context, since time.Time, fn func(*payrouter.Payment) error) error
	ListEvents(ctx context.Context, merchantID string, after int64, limit int) ([]payrouter.Event, error)
	GetDelivery(ctx context.Context, merchantID string, seq int64) (*store.Delivery, error)
	ListDeliveries(ctx context.Context, f store.DeliveryFilter) ([]store.Delivery, error)
	Redeliver(ctx context.Context, merchantID string, seq int64, now time.Time) (*store.Delivery, error)
	ListAnomalies(ctx context.Context, limit int) ([]store.Anomaly, error)
}

// LiveRules is the rule set this instance routes by (app.Rules).
type LiveRules interface {
	Load() *rules.RuleSet
	Swap(*rules.RuleSet)
	SetShadow(*rules.RuleSet)
}

// BreakerReader reports a provider × method breaker's own state (closed,
// open, half-open), before any override.
type BreakerReader func(provider string, m payrouter.Method) string

// Provider is one configured provider.
type Provider struct {
	Name, Kind string
	Caps       providers.Capabilities
}

// Config wires a Service.
type Config struct {
	Versions    store.RuleVersions
	Audit       store.AuditLog
	Overrides   store.BreakerOverrides // Redis when configured, else the store
	Resolutions store.AnomalyResolutions
	Payments    Payments
	Live        LiveRules
	Forced      *Forced
	Health      *Health
	Shadow      *ShadowLog
	Breakers    BreakerReader
	Approvals   Approvals  // the adaptive strategy's counters; nil: none shown
	Providers   []Provider // sorted by name
	Merchants   []string
	// RulesFromStore: the store's active version routes (and is polled);
	// false keeps the config file the source and refuses activation.
	RulesFromStore bool
	Log            *slog.Logger
	Now            func() time.Time
}

// Service is the ops control plane. Every method checks the actor's role;
// every mutation takes a reason and writes an audit entry.
type Service struct {
	c    Config
	caps map[string]providers.Capabilities
	// syncMu orders reading the store's active version with applying it,
	// so a poll that read the store before an activation here cannot
	// apply the older version after it.
	syncMu sync.Mutex
	mu     sync.Mutex // guards loaded and shadow
	loaded int64      // the stored version Live holds (0: the file's)
	shadow int64
}

// New returns a Service.
func New(c Config) *Service {
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	s := &Service{c: c, caps: map[string]providers.Capabilities{}}
	for _, p := range c.Providers {
		s.caps[p.Name] = p.Caps
	}
	return s
}

func need(a Actor, r Role) error {
	if a.Role < r {
		return &payrouter.Error{Type: ErrForbidden, Code: "forbidden",
			Message: fmt.Sprintf("ops key %s is %s; this needs %s", a.ID, a.Role, r)}
	}
	return nil
}

func needReason(reason string) error {
	if strings.TrimSpace(reason) == "" {
		return payrouter.InvalidParam("reason", "is required for every ops change")
	}
	return nil
}

func (s *Service) audit(ctx context.Context, a Actor, action, object, reason string, before, after any) error {
	e := &store.AuditEntry{At: s.c.Now(), Actor: a.ID, Action: action, Object: object, Reason: reason,
		Before: mustJSON(before), After: mustJSON(after)}
	if err := s.c.Audit.AppendAudit(ctx, e); err != nil {
		return fmt.Errorf("ops: audit %s %s: %w", action, object, err)
	}
	return nil
}

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		return json.RawMessage(`null`)
	}
	return b
}

// List is the shape of every list under /ops.
type List[T any] struct {
	Data []T `json:"data"`
}

// --- providers ---

// MethodHealth is one provider × method on the providers page.
type MethodHealth struct {
	Method        payrouter.Method `json:"method"`
	Breaker       string           `json:"breaker"` // closed | open | half_open | forced_open
	ForcedReason  string           `json:"forced_reason,omitempty"`
	Calls5m       int              `json:"calls_5m"`
	SuccessRate5m float64          `json:"success_rate_5m"`
	P50ms         int64            `json:"p50_ms"`
	P95ms         int64            `json:"p95_ms"`
	Calls1h       int              `json:"calls_1h"`
	SuccessRate1h float64          `json:"success_rate_1h"`
	P50ms1h       int64            `json:"p50_ms_1h"`
	P95ms1h       int64            `json:"p95_ms_1h"`
}

// ProviderHealth is one provider.
type ProviderHealth struct {
	Name    string         `json:"name"`
	Kind    string         `json:"kind"`
	Methods []MethodHealth `json:"methods"`
}

// Providers reports every provider × method it supports.
func (s *Service) Providers(ctx context.Context, a Actor) ([]ProviderHealth, error) {
	if err := need(a, Viewer); err != nil {
		return nil, err
	}
	out := []ProviderHealth{}
	for _, p := range s.c.Providers {
		ph := ProviderHealth{Name: p.Name, Kind: p.Kind, Methods: []MethodHealth{}}
		for _, m := range methodsOf(p.Caps) {
			mh := MethodHealth{Method: m, Breaker: "closed"}
			if s.c.Breakers != nil {
				mh.Breaker = s.c.Breakers(p.Name, m)
			}
			if o, ok := s.c.Forced.Lookup(p.Name, m); ok {
				mh.Breaker, mh.ForcedReason = "forced_open", o.Reason
			}
			w5, w1 := s.c.Health.Stats(p.Name, m, 5*time.Minute), s.c.Health.Stats(p.Name, m, time.Hour)
			mh.Calls5m, mh.SuccessRate5m, mh.P50ms, mh.P95ms = w5.Calls, w5.SuccessRate, w5.P50ms, w5.P95ms
			mh.Calls1h, mh.SuccessRate1h, mh.P50ms1h, mh.P95ms1h = w1.Calls, w1.SuccessRate, w1.P50ms, w1.P95ms
			ph.Methods = append(ph.Methods, mh)
		}
		out = append(out, ph)
	}
	return out, nil
}

// Series is the last hour of provider × method in 12 slots (the console).
func (s *Service) Series(a Actor, provider string, m payrouter.Method) ([]Window, error) {
	if err := need(a, Viewer); err != nil {
		return nil, err
	}
	return s.c.Health.Series(provider, m, time.Hour, 12), nil
}

func methodsOf(c providers.Capabilities) []payrouter.Method {
	var ms []payrouter.Method
	for _, m := range payrouter.Methods {
		if _, ok := c.Methods[m]; ok {
			ms = append(ms, m)
		}
	}
	return ms
}

// BreakerRequest forces a provider's breaker open or gives it back to auto.
type BreakerRequest struct {
	Method string `json:"method"` // a method or "*"
	State  string `json:"state"`  // forced_open | auto
	Reason string `json:"reason"`
}

// SetBreaker applies r to provider (operator).
func (s *Service) SetBreaker(ctx context.Context, a Actor, provider string, r BreakerRequest) (*store.BreakerOverride, error) {
	if err := need(a, Operator); err != nil {
		return nil, err
	}
	var p *Provider
	for i := range s.c.Providers {
		if s.c.Providers[i].Name == provider {
			p = &s.c.Providers[i]
		}
	}
	if p == nil {
		return nil, payrouter.Errorf(payrouter.ErrNotFound, "resource_missing", "no provider %q", provider)
	}
	if r.Method != "*" {
		if _, ok := p.Caps.Methods[payrouter.Method(r.Method)]; !ok {
			return nil, payrouter.InvalidParam("method", "must be \"*\" or a method %s supports", provider)
		}
	}
	if r.State != "forced_open" && r.State != "auto" {
		return nil, payrouter.InvalidParam("state", "must be forced_open or auto")
	}
	if err := needReason(r.Reason); err != nil {
		return nil, err
	}
	before, had := s.c.Forced.Lookup(provider, payrouter.Method(r.Method))
	if had && before.Method != r.Method { // a "*" matched; the exact key is what changes
		had = false
	}
	beforeState := map[string]string{"state": "auto"}
	if had {
		beforeState = map[string]string{"state": "forced_open", "reason": before.Reason}
	}
	var o *store.BreakerOverride
	if r.State == "forced_open" {
		o = &store.BreakerOverride{Provider: provider, Method: r.Method, Reason: r.Reason, Actor: a.ID, At: s.c.Now()}
		if err := s.c.Overrides.SetBreakerOverride(ctx, *o); err != nil {
			return nil, err
		}
	} else if err := s.c.Overrides.ClearBreakerOverride(ctx, provider, r.Method); err != nil {
		return nil, err
	}
	if err := s.c.Forced.Refresh(ctx); err != nil {
		s.c.Log.Warn("ops: refreshing breaker overrides", "err", err)
	}
	after := map[string]string{"state": r.State}
	if o != nil {
		after["reason"] = o.Reason
	}
	return o, s.audit(ctx, a, "breaker."+r.State, provider+"/"+r.Method, r.Reason, beforeState, after)
}

// --- anomalies ---

// Anomaly is an anomaly with its resolution.
type Anomaly struct {
	ID         int64                    `json:"id"`
	Kind       string                   `json:"kind"`
	PaymentID  string                   `json:"payment_id,omitempty"`
	Provider   string                   `json:"provider,omitempty"`
	Detail     string                   `json:"detail"`
	CreatedAt  time.Time                `json:"created_at"`
	Status     string                   `json:"status"` // open | resolved
	Resolution *store.AnomalyResolution `json:"resolution,omitempty"`
}

// Anomalies lists anomalies newest first.
func (s *Service) Anomalies(ctx context.Context, a Actor, limit int) (List[Anomaly], error) {
	if err := need(a, Viewer); err != nil {
		return List[Anomaly]{}, err
	}
	as, err := s.c.Payments.ListAnomalies(ctx, limit)
	if err != nil {
		return List[Anomaly]{}, err
	}
	ids := make([]int64, len(as))
	for i, x := range as {
		ids[i] = x.ID
	}
	res, err := s.c.Resolutions.AnomalyResolutions(ctx, ids)
	if err != nil {
		return List[Anomaly]{}, err
	}
	out := List[Anomaly]{Data: []Anomaly{}}
	for _, x := range as {
		an := Anomaly{ID: x.ID, Kind: x.Kind, PaymentID: x.PaymentID, Provider: x.Provider, Detail: x.Detail, CreatedAt: x.CreatedAt, Status: "open"}
		if r, ok := res[x.ID]; ok {
			an.Status, an.Resolution = "resolved", &r
		}
		out.Data = append(out.Data, an)
	}
	return out, nil
}

// OpenAnomalies counts the unresolved anomalies among the newest 10000.
func (s *Service) OpenAnomalies(ctx context.Context) (int, error) {
	l, err := s.Anomalies(ctx, Actor{ID: "metrics", Role: Viewer}, 10000)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, x := range l.Data {
		if x.Status == "open" {
			n++
		}
	}
	return n, nil
}

// ResolveAnomaly closes anomaly id with a note (operator).
func (s *Service) ResolveAnomaly(ctx context.Context, a Actor, id int64, reason string) error {
	if err := need(a, Operator); err != nil {
		return err
	}
	if err := needReason(reason); err != nil {
		return err
	}
	ok, err := s.c.Resolutions.ResolveAnomaly(ctx, store.AnomalyResolution{AnomalyID: id, Note: reason, Actor: a.ID, ResolvedAt: s.c.Now()})
	if err != nil {
		return err
	}
	if !ok {
		return payrouter.Errorf(payrouter.ErrInvalidState, "already_resolved", "anomaly %d is already resolved", id)
	}
	return s.audit(ctx, a, "anomaly.resolve", fmt.Sprintf("anomaly/%d", id), reason,
		map[string]string{"status": "open"}, map[string]string{"status": "resolved"})
}

// --- payments ---

// PaymentView is a payment as ops see it: with its merchant, its events
// and each event's merchant-webhook delivery.
type PaymentView struct {
	MerchantID string             `json:"merchant_id"`
	Payment    *payrouter.Payment `json:"payment"`
	Events     []EventView        `json:"events"`
}

// EventView is an event with its delivery (nil when none was due).
type EventView struct {
	ID        string              `json:"id"`
	Seq       int64               `json:"seq"`
	Type      payrouter.EventType `json:"type"`
	CreatedAt time.Time           `json:"created_at"`
	Delivery  *store.Delivery     `json:"delivery,omitempty"`
}

// maxEventScan bounds the events read to find one payment's (the event
// table has no payment index; ops search is rare).
const maxEventScan = 20000

// SearchPayments finds payments across merchants by payment id, merchant
// reference or provider payment id.
func (s *Service) SearchPayments(ctx context.Context, a Actor, q string) (List[PaymentView], error) {
	out := List[PaymentView]{Data: []PaymentView{}}
	if err := need(a, Viewer); err != nil {
		return out, err
	}
	q = strings.TrimSpace(q)
	var found []*payrouter.Payment
	seen := map[string]bool{}
	add := func(p *payrouter.Payment) {
		if p != nil && !seen[p.ID] {
			seen[p.ID] = true
			found = append(found, p)
		}
	}
	if q == "" {
		for _, m := range s.c.Merchants {
			ps, err := s.c.Payments.ListPayments(ctx, store.ListFilter{MerchantID: m, Limit: 20})
			if err != nil {
				return out, err
			}
			for _, p := range ps {
				add(p)
			}
		}
		sort.Slice(found, func(i, j int) bool { return found[i].CreatedAt.After(found[j].CreatedAt) })
		if len(found) > 20 {
			found = found[:20]
		}
	} else {
		if p, err := s.c.Payments.GetPayment(ctx, "", q); err == nil {
			add(p)
		} else if !errors.Is(err, payrouter.ErrNotExist) {
			return out, err
		}
		for _, m := range s.c.Merchants {
			ps, err := s.c.Payments.ListPayments(ctx, store.ListFilter{MerchantID: m, Reference: q, Limit: 20})
			if err != nil {
				return out, err
			}
			for _, p := range ps {
				add(p)
			}
		}
		for _, pr := range s.c.Providers {
			if p, err := s.c.Payments.FindPayment(ctx, pr.Name, q); err == nil {
				add(p)
			} else if !errors.Is(err, payrouter.ErrNotExist) {
				return out, err
			}
		}
	}
	for _, p := range found {
		v := PaymentView{MerchantID: p.MerchantID, Payment: p, Events: []EventView{}}
		if q != "" { // events only for a search, not the recent list
			evs, err := s.paymentEvents(ctx, p)
			if err != nil {
				return out, err
			}
			v.Events = evs
		}
		out.Data = append(out.Data, v)
	}
	return out, nil
}

func (s *Service) paymentEvents(ctx context.Context, p *payrouter.Payment) ([]EventView, error) {
	out := []EventView{}
	var after int64
	for read := 0; read < maxEventScan; {
		evs, err := s.c.Payments.ListEvents(ctx, p.MerchantID, after, 1000)
		if err != nil {
			return nil, err
		}
		for _, e := range evs {
			if e.PaymentID != p.ID {
				continue
			}
			ev := EventView{ID: e.ID, Seq: e.Seq, Type: e.Type, CreatedAt: e.CreatedAt}
			if d, err := s.c.Payments.GetDelivery(ctx, p.MerchantID, e.Seq); err == nil {
				ev.Delivery = d
			} else if !errors.Is(err, payrouter.ErrNotExist) {
				return nil, err
			}
			out = append(out, ev)
		}
		if len(evs) < 1000 {
			break
		}
		read += len(evs)
		after = evs[len(evs)-1].Seq
	}
	return out, nil
}

// Deliveries lists merchant-webhook deliveries (status "" = any).
func (s *Service) Deliveries(ctx context.Context, a Actor, status string, limit int) (List[store.Delivery], error) {
	if err := need(a, Viewer); err != nil {
		return List[store.Delivery]{}, err
	}
	ds, err := s.c.Payments.ListDeliveries(ctx, store.DeliveryFilter{Status: status, Limit: limit})
	if err != nil {
		return List[store.Delivery]{}, err
	}
	if ds == nil {
		ds = []store.Delivery{}
	}
	return List[store.Delivery]{Data: ds}, nil
}

// Redeliver queues event seq's merchant webhook again (operator).
func (s *Service) Redeliver(ctx context.Context, a Actor, seq int64, reason string) (*store.Delivery, error) {
	if err := need(a, Operator); err != nil {
		return nil, err
	}
	if err := needReason(reason); err != nil {
		return nil, err
	}
	var before any
	if d, err := s.c.Payments.GetDelivery(ctx, "", seq); err == nil {
		before = map[string]any{"status": d.Status, "attempts": d.Attempts}
	}
	d, err := s.c.Payments.Redeliver(ctx, "", seq, s.c.Now())
	if err != nil {
		return nil, err
	}
	return d, s.audit(ctx, a, "delivery.redeliver", payrouter.EventID(seq), reason, before, map[string]any{"status": d.Status})
}

// Audit lists the audit log newest first.
func (s *Service) Audit(ctx context.Context, a Actor, limit int) (List[store.AuditEntry], error) {
	if err := need(a, Viewer); err != nil {
		return List[store.AuditEntry]{}, err
	}
	es, err := s.c.Audit.ListAudit(ctx, limit)
	return List[store.AuditEntry]{Data: es}, err
}
