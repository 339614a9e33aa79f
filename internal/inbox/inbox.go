// Package inbox receives provider webhooks durably: verify, store the raw
// body, answer, then apply. Applying happens from the store, so a crash
// between receipt and processing loses nothing: Run finishes it after a
// restart. Duplicates (same provider event id) are stored once, and a
// notification counts as a duplicate only once it has been dealt with: one
// whose claim the provider's status API does not bear out yet (or that
// could not be applied) stays pending, is checked again with a growing
// delay, and is checked at once when the provider delivers it again.
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
	"strings"
	"sync/atomic"
	"time"

	"github.com/payrouter/payrouter"
	"github.com/payrouter/payrouter/internal/store"
	"github.com/payrouter/payrouter/providers"
)

// Applier applies a verified notification (router.Router). It returns the
// outcome (router.Outcome*); OutcomeUnconfirmed keeps the item pending.
type Applier interface {
	ApplyNotification(ctx context.Context, n *providers.Notification) (string, error)
}

// Outcomes the inbox adds to the Applier's.
const (
	OutcomeDuplicate = "duplicate" // already dealt with: nothing done
	OutcomeQueued    = "queued"    // stored; applying failed for now and is retried
	// outcomeUnconfirmed is router.OutcomeUnconfirmed (the inbox does not
	// import the router).
	outcomeUnconfirmed = "unconfirmed"
)

// Source is one provider's webhook endpoint configuration.
type Source struct {
	Parser providers.WebhookParser
	// AllowedIPs, when not empty, are the CIDRs webhooks may come from.
	AllowedIPs []netip.Prefix
}

// Inbox is safe for concurrent use. The exported tunables must be set
// before use; zero values take the defaults.
type Inbox struct {
	store   store.Inbox
	apply   Applier
	sources map[string]Source
	log     *slog.Logger

	// Now is the clock (default time.Now).
	Now func() time.Time
	// RetryBase is the first wait before a pending item is checked again
	// (default 10s); it doubles per check up to RetryMax (default 15m).
	RetryBase, RetryMax time.Duration
	// ConfirmFor is how long an unconfirmed notification is checked again
	// before it is closed as unconfirmed (default 24h). An item that could
	// not be applied (store or provider failing) is retried for ever.
	ConfirmFor time.Duration

	// Received counts webhooks stored (new items), Refused those refused,
	// Duplicates redeliveries of items already dealt with, Unconfirmed the
	// checks that left a notification unconfirmed.
	Received, Refused, Duplicates, Unconfirmed atomic.Int64
}

// New returns an inbox for the given providers.
func New(st store.Inbox, apply Applier, sources map[string]Source, log *slog.Logger) *Inbox {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Inbox{store: st, apply: apply, sources: sources, log: log, Now: time.Now}
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

// Result is what Receive did with a webhook it accepted.
type Result struct {
	EventID   string
	Outcome   string // the Applier's outcome, OutcomeDuplicate or OutcomeQueued
	Duplicate bool
}

// Refusal says why a webhook was refused.
type Refusal string

const (
	RefusedUnknownProvider Refusal = "unknown_provider"   // no webhook endpoint of that name
	RefusedSender          Refusal = "sender_not_allowed" // outside the provider's webhook_ips
	RefusedSignature       Refusal = "signature_invalid"  // forged, stale, tampered, unsigned
	RefusedMalformed       Refusal = "malformed"          // verified, but not a notification we can read
)

// RefusedError is a webhook Receive refused: nothing was stored. The HTTP
// layer maps Reason to a status.
type RefusedError struct {
	Provider string
	Reason   Refusal
	Code     string // the parser's error code, if any
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("inbox: %s webhook refused: %s", e.Provider, e.Reason)
}

// keptHeaders are stored with the raw body for audit: signatures, their
// timestamps and ids, which authenticate nothing by themselves. Nothing
// else from the request is kept — in particular no secret: not Xendit's
// X-Callback-Token (its webhooks' only credential), not Authorization.
var keptHeaders = []string{"Stripe-Signature", "X-Signature", "X-Timestamp", "X-Partner-Id", "X-External-Id", "Webhook-Id", "Content-Type"}

// Receive verifies and stores one webhook, then applies it. A webhook that
// fails verification is a *RefusedError and nothing is stored. Once stored
// it is accepted even if applying fails now (OutcomeQueued: the inbox
// retries). A webhook already stored is OutcomeDuplicate once it has been
// dealt with; while its item is still pending (unconfirmed, or queued) the
// redelivery is applied again now. Other errors are the store's.
func (in *Inbox) Receive(ctx context.Context, provider string, remote netip.Addr, h http.Header, body []byte) (Result, error) {
	src, ok := in.sources[provider]
	if !ok {
		return Result{}, &RefusedError{Provider: provider, Reason: RefusedUnknownProvider}
	}
	if len(src.AllowedIPs) > 0 && !allowed(src.AllowedIPs, remote) {
		in.Refused.Add(1)
		in.log.Warn("webhook refused: sender not in webhook_ips", "provider", provider, "remote", remote.String())
		return Result{}, &RefusedError{Provider: provider, Reason: RefusedSender}
	}
	now := in.Now()
	n, err := src.Parser.ParseWebhook(h, body, now)
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
		reason := RefusedMalformed
		if providers.IsSignatureError(err) {
			reason = RefusedSignature
		}
		return Result{}, &RefusedError{Provider: provider, Reason: reason, Code: code}
	}
	n.Provider = provider
	parsed, _ := json.Marshal(n)
	item := &store.InboxItem{Provider: provider, EventID: n.EventID, Body: body, Parsed: parsed, ReceivedAt: now.UTC(), Headers: map[string]string{}}
	for _, k := range keptHeaders {
		if v := h.Get(k); v != "" {
			item.Headers[k] = v
		}
	}
	prev, err := in.store.GetWebhook(ctx, provider, n.EventID)
	switch {
	case err == nil && prev.Outcome != "":
		in.Duplicates.Add(1)
		return Result{EventID: n.EventID, Outcome: OutcomeDuplicate, Duplicate: true}, nil
	case err == nil:
		// Still pending: the provider's redelivery is the moment to look again.
		outcome, _ := in.process(context.WithoutCancel(ctx), prev, n)
		return Result{EventID: n.EventID, Outcome: outcome}, nil
	case !errors.Is(err, payrouter.ErrNotExist):
		return Result{}, fmt.Errorf("inbox: read stored %s webhook: %w", provider, err)
	}
	return in.receiveNew(context.WithoutCancel(ctx), item, n)
}

// receiveNew applies a webhook not stored yet, then stores it with its
// outcome: one write besides the payment's instead of two (store, then
// mark done). Applying first is safe: the provider gets its 200 only once
// the item is stored, and until then a crash only means a redelivery,
// which applies again as a no-op (dedupe is by what was applied). An item
// left pending (unconfirmed, or applying failed) is stored pending and due
// later, as before.
func (in *Inbox) receiveNew(ctx context.Context, item *store.InboxItem, n *providers.Notification) (Result, error) {
	outcome, applyErr := in.apply.ApplyNotification(ctx, n)
	finished := applyErr == nil && outcome != outcomeUnconfirmed
	if finished {
		item.Outcome = outcome
	}
	inserted, err := in.store.InsertWebhook(ctx, item)
	if err != nil {
		in.log.Error("webhook not stored", "provider", item.Provider, "err", err)
		return Result{}, fmt.Errorf("inbox: store %s webhook: %w", item.Provider, err)
	}
	if !inserted {
		// A concurrent delivery of the same event stored it first. What
		// this one applied stands (applying is idempotent: of concurrent
		// deliveries exactly one finds the change to make), so it reports
		// its own outcome; the stored item keeps the other's.
		in.Duplicates.Add(1)
		if finished {
			return Result{EventID: n.EventID, Outcome: outcome, Duplicate: true}, nil
		}
		return Result{EventID: n.EventID, Outcome: OutcomeDuplicate, Duplicate: true}, nil
	}
	in.Received.Add(1)
	now := in.Now().UTC()
	switch {
	case applyErr != nil:
		in.log.Warn("webhook stored, applying later", "provider", item.Provider, "event", item.EventID, "err", applyErr)
		in.retry(ctx, item, "apply failed: "+applyErr.Error(), now)
		return Result{EventID: n.EventID, Outcome: OutcomeQueued}, nil
	case !finished:
		in.Unconfirmed.Add(1)
		in.retry(ctx, item, "not confirmed by the provider's status API yet", now)
	}
	return Result{EventID: n.EventID, Outcome: outcome}, nil
}

// process applies item's notification n and records the result: finished
// with its outcome, or kept pending and due again later (unconfirmed, or
// applying failed). It returns the outcome (OutcomeQueued when applying
// failed) and whether the item is finished.
func (in *Inbox) process(ctx context.Context, item *store.InboxItem, n *providers.Notification) (string, bool) {
	now := in.Now().UTC()
	outcome, err := in.apply.ApplyNotification(ctx, n)
	switch {
	case err != nil:
		in.log.Warn("webhook stored, applying later", "provider", item.Provider, "event", item.EventID, "err", err)
		in.retry(ctx, item, "apply failed: "+err.Error(), now)
		return OutcomeQueued, false
	case outcome == outcomeUnconfirmed && now.Sub(item.ReceivedAt) < in.confirmFor():
		in.Unconfirmed.Add(1)
		in.retry(ctx, item, "not confirmed by the provider's status API yet", now)
		return outcome, false
	}
	note := ""
	if outcome == outcomeUnconfirmed {
		note = fmt.Sprintf("never confirmed by the provider's status API in %s", in.confirmFor())
	}
	if err := in.store.FinishWebhook(ctx, item.ID, outcome, note, now); err != nil && !errors.Is(err, payrouter.ErrNotExist) {
		// Applied, but the item stays pending: applying again is a no-op.
		in.log.Warn("webhook applied, not marked done", "provider", item.Provider, "event", item.EventID, "err", err)
	}
	return outcome, true
}

func (in *Inbox) retry(ctx context.Context, item *store.InboxItem, note string, now time.Time) {
	base, max := in.RetryBase, in.RetryMax
	if base <= 0 {
		base = 10 * time.Second
	}
	if max <= 0 {
		max = 15 * time.Minute
	}
	wait := max
	if item.Attempts < 30 && base<<item.Attempts < max {
		wait = base << item.Attempts
	}
	if err := in.store.RetryWebhook(ctx, item.ID, note, now.Add(wait)); err != nil && !errors.Is(err, payrouter.ErrNotExist) {
		// It stays due now: the next drain takes it again.
		in.log.Warn("webhook retry not scheduled", "provider", item.Provider, "event", item.EventID, "err", err)
	}
}

func (in *Inbox) confirmFor() time.Duration {
	if in.ConfirmFor > 0 {
		return in.ConfirmFor
	}
	return 24 * time.Hour
}

// Drain applies every stored, unprocessed webhook that is due once; it
// returns how many it finished.
func (in *Inbox) Drain(ctx context.Context) (int, error) {
	items, err := in.store.DueWebhooks(ctx, in.Now().UTC(), 500)
	if err != nil {
		return 0, err
	}
	done := 0
	for i := range items {
		it := &items[i]
		var n providers.Notification
		if err := json.Unmarshal(it.Parsed, &n); err != nil {
			_ = in.store.FinishWebhook(ctx, it.ID, "unparseable", err.Error(), in.Now().UTC())
			continue
		}
		if _, finished := in.process(ctx, it, &n); finished {
			done++
		}
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

// ClientAddr is the address a request comes from, for webhook_ips. The
// TCP peer is the client unless it is a trusted proxy (in trusted); then
// X-Forwarded-For is read from the right — each proxy appends the address
// it got the request from — skipping trusted proxies, and the first
// untrusted entry is the client. Entries left of it were written by the
// client and are never believed. A malformed entry in the part read, or a
// chain of trusted proxies only, yields the invalid Addr (allowed by no
// webhook_ips list).
func ClientAddr(r *http.Request, trusted []netip.Prefix) netip.Addr {
	peer := peerAddr(r.RemoteAddr)
	if !allowed(trusted, peer) {
		return peer
	}
	hops := r.Header.Values("X-Forwarded-For")
	for i := len(hops) - 1; i >= 0; i-- {
		parts := strings.Split(hops[i], ",")
		for j := len(parts) - 1; j >= 0; j-- {
			a, err := netip.ParseAddr(strings.TrimSpace(parts[j]))
			if err != nil {
				return netip.Addr{}
			}
			a = a.Unmap()
			if !allowed(trusted, a) {
				return a
			}
		}
	}
	if len(hops) == 0 {
		return peer // a trusted proxy's own request
	}
	return netip.Addr{}
}

func peerAddr(remote string) netip.Addr {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	a, _ := netip.ParseAddr(host)
	return a.Unmap()
}
