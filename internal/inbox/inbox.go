// Package inbox receives provider webhooks durably: verify, store the raw
// body, answer, then apply. Applying happens from the store, so a crash
// between receipt and processing loses nothing: Run finishes it after a
// restart. Duplicates (same provider event id) are stored once.
package inbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/payrouter/payrouter/internal/store"
	"github.com/payrouter/payrouter/providers"
)

// Applier applies a verified notification (router.Router).
type Applier interface {
	ApplyNotification(ctx context.Context, n *providers.Notification) (string, error)
}

// Source is one provider's webhook endpoint configuration.
type Source struct {
	Parser providers.WebhookParser
	// AllowedIPs, when not empty, are the CIDRs webhooks may come from.
	AllowedIPs []netip.Prefix
}

// Inbox is safe for concurrent use.
type Inbox struct {
	store   store.Store
	apply   Applier
	sources map[string]Source
	log     *slog.Logger
	now     func() time.Time

	Received, Refused, Duplicates atomic.Int64
}

// New returns an inbox for the given providers.
func New(st store.Store, apply Applier, sources map[string]Source, log *slog.Logger) *Inbox {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Inbox{store: st, apply: apply, sources: sources, log: log, now: time.Now}
}

// ParseCIDRs parses webhook_ips entries (CIDRs or single addresses).
func ParseCIDRs(list []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range list {
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("webhook_ips: %q is not a CIDR or an IP address", s)
		}
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

// Result is what Receive did.
type Result struct {
	Status    int    // HTTP status to answer the provider
	Outcome   string // applied | stale | duplicate | …, or "queued" when applying failed for now
	Message   string
	Duplicate bool
}

// signatureHeaders are kept with the raw body for audit; nothing else from
// the request is stored.
var signatureHeaders = []string{"Stripe-Signature", "X-Callback-Token", "X-Signature", "X-Timestamp", "X-Partner-Id", "X-External-Id", "Webhook-Id", "Content-Type"}

// Receive verifies and stores one webhook, then applies it. A webhook that
// fails verification is refused (401) and nothing is stored. Once stored,
// the answer is 200 even if applying fails now: the worker retries it.
func (in *Inbox) Receive(ctx context.Context, provider string, remote netip.Addr, h http.Header, body []byte) Result {
	src, ok := in.sources[provider]
	if !ok {
		return Result{Status: http.StatusNotFound, Message: "no such provider"}
	}
	if len(src.AllowedIPs) > 0 && !allowed(src.AllowedIPs, remote) {
		in.Refused.Add(1)
		in.log.Warn("webhook refused: sender not in webhook_ips", "provider", provider, "remote", remote.String())
		return Result{Status: http.StatusForbidden, Message: "sender not allowed"}
	}
	n, err := src.Parser.ParseWebhook(h, body, in.now())
	if err != nil {
		in.Refused.Add(1)
		var pe *providers.Error
		errors.As(err, &pe)
		code := "invalid"
		if pe != nil {
			code = pe.Code
		}
		// Log the reason, never the body or headers: they may hold secrets.
		in.log.Warn("webhook refused", "provider", provider, "code", code, "bytes", len(body))
		if providers.IsSignatureError(err) {
			return Result{Status: http.StatusUnauthorized, Message: "signature verification failed"}
		}
		return Result{Status: http.StatusBadRequest, Message: "malformed webhook"}
	}
	n.Provider = provider
	parsed, _ := json.Marshal(n)
	item := &store.InboxItem{Provider: provider, EventID: n.EventID, Body: body, Parsed: parsed, ReceivedAt: in.now().UTC(), Headers: map[string]string{}}
	for _, k := range signatureHeaders {
		if v := h.Get(k); v != "" {
			item.Headers[k] = v
		}
	}
	inserted, err := in.store.InsertWebhook(ctx, item)
	if err != nil {
		in.log.Error("webhook not stored", "provider", provider, "err", err)
		return Result{Status: http.StatusInternalServerError, Message: "not stored; retry"}
	}
	in.Received.Add(1)
	if !inserted {
		in.Duplicates.Add(1)
		return Result{Status: http.StatusOK, Outcome: "duplicate", Duplicate: true}
	}
	outcome, err := in.process(context.WithoutCancel(ctx), item, n)
	if err != nil {
		in.log.Warn("webhook stored, applying later", "provider", provider, "event", n.EventID, "err", err)
		return Result{Status: http.StatusOK, Outcome: "queued"}
	}
	return Result{Status: http.StatusOK, Outcome: outcome}
}

func (in *Inbox) process(ctx context.Context, item *store.InboxItem, n *providers.Notification) (string, error) {
	outcome, err := in.apply.ApplyNotification(ctx, n)
	if err != nil {
		return "", err
	}
	if item.ID != 0 {
		if err := in.store.FinishWebhook(ctx, item.ID, outcome, "", in.now().UTC()); err != nil {
			return "", err
		}
	}
	return outcome, nil
}

// Drain applies every stored, unprocessed webhook once; it returns how many
// it finished.
func (in *Inbox) Drain(ctx context.Context) (int, error) {
	items, err := in.store.PendingWebhooks(ctx, 500)
	if err != nil {
		return 0, err
	}
	done := 0
	for i := range items {
		it := &items[i]
		var n providers.Notification
		if err := json.Unmarshal(it.Parsed, &n); err != nil {
			_ = in.store.FinishWebhook(ctx, it.ID, "unparseable", err.Error(), in.now().UTC())
			continue
		}
		if _, err := in.process(ctx, it, &n); err != nil {
			in.log.Warn("webhook apply failed, will retry", "provider", it.Provider, "event", it.EventID, "err", err)
			continue
		}
		done++
	}
	return done, nil
}

// Run drains the inbox every interval until ctx is done (and once at
// start: this is what finishes webhooks received before a crash).
func (in *Inbox) Run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if _, err := in.Drain(ctx); err != nil && ctx.Err() == nil {
			in.log.Error("inbox drain failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func allowed(list []netip.Prefix, a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range list {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// RemoteAddr extracts the client IP of a request (X-Forwarded-For's first
// entry only when trustProxy).
func RemoteAddr(r *http.Request, trustProxy bool) netip.Addr {
	if trustProxy {
		if xff := r.Header.Get("X-Forwarded-For"); xff != "" {
			for i := 0; i < len(xff); i++ {
				if xff[i] == ',' {
					xff = xff[:i]
					break
				}
			}
			if a, err := netip.ParseAddr(trimSpace(xff)); err == nil {
				return a
			}
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	a, _ := netip.ParseAddr(host)
	return a
}

func trimSpace(s string) string {
	for len(s) > 0 && s[0] == ' ' {
		s = s[1:]
	}
	for len(s) > 0 && s[len(s)-1] == ' ' {
		s = s[:len(s)-1]
	}
	return s
}
