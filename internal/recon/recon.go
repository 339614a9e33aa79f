// Package recon reconciles providers' settlements against payrouter's
// ledger (the store's payments, attempts and refunds) for finance.
//
// Every amount is an integer in payrouter minor units of its currency (IDR
// exponent 0); no float is used anywhere. Settlements come from a
// provider's API (providers.SettlementLister, whose adapter already converts
// to payrouter units) or from a CSV file (ParseCSV). Each settlement line is
// joined to the attempt that produced it by provider and provider payment id,
// else by the order id sent to the provider (the attempt's idempotency key;
// for a refund line also payrouter's refund id),
// and given a Class; ledger payments that should have settled but did not
// become lines of their own.
package recon

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/payrouter/payrouter"
	"github.com/payrouter/payrouter/internal/store"
	"github.com/payrouter/payrouter/providers"
)

// Class is the outcome of reconciling one line.
type Class string

const (
	// Matched: the settlement agrees with the ledger within the tolerance.
	Matched Class = "matched"
	// AmountMismatch: a payment settled for another amount (or currency)
	// than payrouter captured, or settled for an attempt payrouter did not
	// capture (a charge payrouter believes failed).
	AmountMismatch Class = "amount_mismatch"
	// FeeMismatch: the amount matches but the settled fee differs from the
	// rules' expected fee by more than the tolerance.
	FeeMismatch Class = "fee_mismatch"
	// RefundMismatch: a refund settled that payrouter has no succeeded
	// refund of that amount for.
	RefundMismatch Class = "refund_mismatch"
	// MissingInLedger: a settlement nobody asked for (no attempt has its
	// id), or an orphan provider webhook the store recorded as an anomaly.
	MissingInLedger Class = "missing_in_ledger"
	// MissingInSettlement: a captured payment (or succeeded refund) older
	// than Options.SettleAfter with no settlement line.
	MissingInSettlement Class = "missing_in_settlement"
	// DuplicateSettlement: a second payment settlement for one attempt — a
	// double charge signal.
	DuplicateSettlement Class = "duplicate_settlement"
	// Chargeback: the provider took a payment's money back (a dispute
	// lost or being fought); always finance's business, never matched.
	Chargeback Class = "chargeback"
	// Other: fee, adjustment, payout and other lines not tied to a payment;
	// listed and totalled, never a discrepancy by themselves.
	Other Class = "other"
)

// Discrepancy reports whether a line of this class needs finance's attention.
func (c Class) Discrepancy() bool { return c != Matched && c != Other }

// Entry is one settlement line with where it came from ("api" or
// "file.csv:12"), so every report line can be traced back.
type Entry struct {
	providers.Settlement
	Source string
	// Batch is the payout batch the line was paid out in and PayoutOn its
	// payout date (YYYY-MM-DD), when the source says.
	Batch    string
	PayoutOn string
}

// Options bound one reconciliation run.
type Options struct {
	// From and To bound the window [From, To). Payments created in it are
	// expected to settle; payments created up to Lookback before From are
	// still joined (they may settle inside the window).
	From, To time.Time
	// Lookback (default 30 days) is how far before From payments are loaded
	// for matching only.
	Lookback time.Duration
	// SettleAfter (default 72h): a captured payment created later than
	// To − SettleAfter is not yet expected in a settlement.
	SettleAfter time.Duration
	// Tolerance in minor units per line: amount and fee deltas whose
	// absolute value is at most Tolerance count as matched (the delta is
	// still reported). Missing and duplicate lines are always discrepancies.
	Tolerance int64
	// RunTolerance > 0 bounds what the per-line tolerance may hide in
	// total: when the absolute amount and fee deltas of the matched lines
	// add up to more, the report counts one more discrepancy and says so
	// (ToleranceExceeded).
	RunTolerance int64
	// Providers are the provider names that have a settlement source; only
	// their payments can be missing in settlement. Orphan-webhook anomalies
	// are reported for these providers too.
	Providers []string
	// Fee, when set, is the fee model the router routes by
	// (rules.RuleSet.ExpectedFee): the expected fee of a partial capture
	// is computed on the captured amount with it. Without it the attempt's
	// expected fee (on the authorised amount) is used.
	Fee func(provider string, method payrouter.Method, cur payrouter.Currency, amount int64) (int64, bool)
}

func (o *Options) defaults() error {
	if o.Lookback == 0 {
		o.Lookback = 30 * 24 * time.Hour
	}
	if o.SettleAfter == 0 {
		o.SettleAfter = 72 * time.Hour
	}
	switch {
	case o.To.IsZero() || o.From.IsZero():
		return fmt.Errorf("recon: from and to are required")
	case !o.From.Before(o.To):
		return fmt.Errorf("recon: from %s is not before to %s", o.From.Format(time.RFC3339), o.To.Format(time.RFC3339))
	case o.Tolerance < 0 || o.SettleAfter < 0 || o.Lookback < 0:
		return fmt.Errorf("recon: tolerance, settle-after and lookback must not be negative")
	}
	return nil
}

// Line is one reconciled line: a settlement, a ledger payment or refund
// missing from the settlements, or an orphan-webhook anomaly. Amounts are
// minor units of Currency; refunds settle as negative amounts.
type Line struct {
	Class             Class              `json:"class"`
	Provider          string             `json:"provider"`
	Type              string             `json:"type"` // payment | refund | fee | adjustment | webhook | …
	Currency          payrouter.Currency `json:"currency,omitempty"`
	Method            payrouter.Method   `json:"method,omitempty"` // the ledger payment's
	PaymentID         string             `json:"payment_id,omitempty"`
	ProviderPaymentID string             `json:"provider_payment_id,omitempty"`
	OrderID           string             `json:"order_id,omitempty"`
	RefundID          string             `json:"refund_id,omitempty"`
	Batch             string             `json:"payout_batch,omitempty"`
	SettledAt         *time.Time         `json:"settled_at,omitempty"`
	Status            string             `json:"settlement_status,omitempty"`
	SettledAmount     int64              `json:"settled_amount"`
	SettledFee        int64              `json:"settled_fee"`
	SettledNet        int64              `json:"settled_net"`
	LedgerAmount      int64              `json:"ledger_amount"` // captured (payment) or refunded (refund, positive)
	ExpectedFee       int64              `json:"expected_fee"`
	AmountDelta       int64              `json:"amount_delta"` // |settled amount| − ledger amount
	FeeDelta          int64              `json:"fee_delta"`    // settled fee − expected fee (payments)
	Source            string             `json:"source"`
	Detail            string             `json:"detail,omitempty"`
}

// Report is the outcome of a run.
type Report struct {
	GeneratedAt  time.Time `json:"generated_at"`
	From         time.Time `json:"from"`
	To           time.Time `json:"to"`
	SettleAfter  string    `json:"settle_after"`
	Tolerance    int64     `json:"tolerance"`
	RunTolerance int64     `json:"run_tolerance,omitempty"`
	// MatchedDeltas is the sum of |amount delta| + |fee delta| of the
	// matched lines: what the per-line tolerance absorbed.
	MatchedDeltas     int64    `json:"matched_deltas"`
	ToleranceExceeded bool     `json:"tolerance_exceeded,omitempty"`
	Providers         []string `json:"providers"`
	Discrepancies     int      `json:"discrepancies"`
	Totals            []Total  `json:"totals"`
	Lines             []Line   `json:"lines"`
}

// Total sums the lines of one provider × currency. Fees are what the
// provider took (positive); Refunds is the sum of refund settlements
// (negative); Missing is the ledger amount of missing_in_settlement lines.
type Total struct {
	Provider      string             `json:"provider"`
	Currency      payrouter.Currency `json:"currency,omitempty"`
	Lines         int                `json:"lines"`
	Classes       map[Class]int      `json:"classes"`
	Discrepancies int                `json:"discrepancies"`
	Gross         int64              `json:"gross"`
	Refunds       int64              `json:"refunds"`
	FeesExpected  int64              `json:"fees_expected"`
	FeesSettled   int64              `json:"fees_settled"`
	Net           int64              `json:"net"`
	Missing       int64              `json:"missing"`
	AmountDelta   int64              `json:"amount_delta"`
	FeeDelta      int64              `json:"fee_delta"`
}

// Ledger is what recon reads from the store (store.Store implements it).
type Ledger interface {
	ScanPayments(ctx context.Context, since time.Time, fn func(*payrouter.Payment) error) error
	ListAnomalies(ctx context.Context, limit int) ([]store.Anomaly, error)
}

// maxAnomalies bounds the anomalies read (newest first); more than this
// many orphan webhooks in one window is a problem no report line fixes.
const maxAnomalies = 100000

// Run loads the ledger for the window and reconciles entries against it.
// It returns an error only when the ledger cannot be read or opts are
// invalid; discrepancies are in the Report.
func Run(ctx context.Context, l Ledger, entries []Entry, opts Options, now time.Time) (*Report, error) {
	if err := opts.defaults(); err != nil {
		return nil, err
	}
	var payments []*payrouter.Payment
	err := l.ScanPayments(ctx, opts.From.Add(-opts.Lookback), func(p *payrouter.Payment) error {
		if p.CreatedAt.Before(opts.To) {
			payments = append(payments, p)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("recon: scan payments: %w", err)
	}
	anomalies, err := l.ListAnomalies(ctx, maxAnomalies)
	if err != nil {
		return nil, fmt.Errorf("recon: list anomalies: %w", err)
	}
	return Reconcile(payments, anomalies, entries, opts, now)
}

// attemptRef is one attempt the settlements can join to, with what has
// been matched against it so far.
type attemptRef struct {
	p           *payrouter.Payment
	a           *payrouter.Attempt
	captured    int64          // what payrouter captured through this attempt
	expectedFee int64          // on the captured amount
	refunds     []ledgerRefund // succeeded refunds not yet matched
	paid        int            // payment settlement lines seen
}

type ledgerRefund struct {
	id     string
	amount int64
	at     time.Time
}

// Reconcile classifies entries against payments and anomalies. It is pure:
// the same inputs give the same report (lines sorted by provider, time,
// source). Entries outside opts.Providers are still reconciled (their
// provider is added).
func Reconcile(payments []*payrouter.Payment, anomalies []store.Anomaly, entries []Entry, opts Options, now time.Time) (*Report, error) {
	if err := opts.defaults(); err != nil {
		return nil, err
	}
	reconciled := map[string]bool{}
	for _, p := range opts.Providers {
		reconciled[p] = true
	}
	for _, e := range entries {
		reconciled[e.Provider] = true
	}
	idx := indexLedger(payments, reconciled, opts.Fee)
	lines := settlementLines(entries, idx, opts)
	lines = append(lines, unsettledLines(idx.refs, opts)...)
	lines = append(lines, orphanLines(anomalies, reconciled, opts)...)

	names := make([]string, 0, len(reconciled))
	for n := range reconciled {
		names = append(names, n)
	}
	sort.Strings(names)
	rep := &Report{GeneratedAt: now.UTC(), From: opts.From.UTC(), To: opts.To.UTC(), SettleAfter: opts.SettleAfter.String(),
		Tolerance: opts.Tolerance, Providers: names, Lines: lines}
	if rep.Lines == nil {
		rep.Lines = []Line{}
	}
	rep.total()
	for _, l := range rep.Lines {
		if l.Class == Matched {
			rep.MatchedDeltas += abs(l.AmountDelta) + abs(l.FeeDelta)
		}
	}
	rep.RunTolerance = opts.RunTolerance
	if opts.RunTolerance > 0 && rep.MatchedDeltas > opts.RunTolerance {
		rep.ToleranceExceeded = true
		rep.Discrepancies++
	}
	return rep, nil
}

// ledgerIndex finds the attempt a settlement line is about.
type ledgerIndex struct {
	byPPID, byOrder, byPayment map[[2]string]*attemptRef // by (provider, id)
	byRefund                   map[[2]string]*attemptRef // payrouter refund id → the capturing attempt
	refs                       []*attemptRef             // every attempt at a reconciled provider
}

// indexLedger indexes the attempts at reconciled providers by provider
// payment id, order id (the attempt key) and, for the capturing attempt,
// payment id.
func indexLedger(payments []*payrouter.Payment, reconciled map[string]bool, feeOf func(string, payrouter.Method, payrouter.Currency, int64) (int64, bool)) *ledgerIndex {
	l := &ledgerIndex{byPPID: map[[2]string]*attemptRef{}, byOrder: map[[2]string]*attemptRef{}, byPayment: map[[2]string]*attemptRef{},
		byRefund: map[[2]string]*attemptRef{}}
	for _, p := range payments {
		capIdx := capturingAttempt(p)
		for i := range p.Attempts {
			a := &p.Attempts[i]
			if !reconciled[a.Provider] {
				continue
			}
			r := &attemptRef{p: p, a: a, expectedFee: a.ExpectedFee}
			if i == capIdx {
				r.captured = p.AmountCaptured
				if r.captured != p.Amount && feeOf != nil {
					// A partial capture pays the fee on what was captured.
					if f, ok := feeOf(a.Provider, p.Method, p.Currency, r.captured); ok {
						r.expectedFee = f
					}
				}
				for _, rf := range p.Refunds {
					l.byRefund[[2]string{a.Provider, rf.ID}] = r
					if rf.Status == payrouter.RefundSucceeded {
						r.refunds = append(r.refunds, ledgerRefund{id: rf.ID, amount: rf.Amount, at: rf.CreatedAt})
					}
				}
				l.byPayment[[2]string{a.Provider, p.ID}] = r
			}
			if a.ProviderPaymentID != "" {
				l.byPPID[[2]string{a.Provider, a.ProviderPaymentID}] = r
			}
			if a.IdempotencyKey != "" {
				l.byOrder[[2]string{a.Provider, a.IdempotencyKey}] = r
			}
			l.refs = append(l.refs, r)
		}
	}
	return l
}

func (l *ledgerIndex) find(e *Entry) *attemptRef {
	if r := l.byPPID[[2]string{e.Provider, e.ProviderPaymentID}]; e.ProviderPaymentID != "" && r != nil {
		return r
	}
	if e.RefundID != "" {
		if r := l.byRefund[[2]string{e.Provider, e.RefundID}]; r != nil {
			return r
		}
	}
	if e.OrderID == "" {
		return nil
	}
	if r := l.byOrder[[2]string{e.Provider, e.OrderID}]; r != nil {
		return r
	}
	// A refund line may carry payrouter's refund id as its reference
	// (Xendit's refund transactions echo the refund's reference_id).
	if r := l.byRefund[[2]string{e.Provider, e.OrderID}]; e.Type == "refund" && r != nil {
		return r
	}
	// Finance exports sometimes carry payrouter's payment id itself.
	return l.byPayment[[2]string{e.Provider, e.OrderID}]
}

// settlementLines classifies every settlement entry against the ledger, in
// provider then settlement order.
func settlementLines(entries []Entry, idx *ledgerIndex, opts Options) []Line {
	var lines []Line
	sorted := append([]Entry(nil), entries...)
	sort.SliceStable(sorted, func(i, j int) bool {
		a, b := sorted[i], sorted[j]
		if a.Provider != b.Provider {
			return a.Provider < b.Provider
		}
		return a.SettledAt.Before(b.SettledAt)
	})

	// One-to-many: a provider that settles one capture in several lines
	// (instalments, a split payout). When every line of an attempt is
	// smaller than its capture and they add up to it (within the
	// tolerance), they are one settlement, not duplicates.
	splits := map[*attemptRef]*split{}
	{
		parts := map[*attemptRef][]int64{}
		for i := range sorted {
			e := &sorted[i]
			if e.Type != "payment" {
				continue
			}
			if r := idx.find(e); r != nil && e.Currency == r.p.Currency {
				parts[r] = append(parts[r], e.Amount)
			}
		}
		for r, ps := range parts {
			if len(ps) < 2 || r.captured == 0 {
				continue
			}
			var sum int64
			whole := false
			for _, a := range ps {
				sum += a
				whole = whole || abs(a) >= r.captured
			}
			if !whole && abs(sum-r.captured) <= opts.Tolerance {
				splits[r] = &split{n: len(ps)}
			}
		}
	}
	for i := range sorted {
		e := &sorted[i]
		at := e.SettledAt
		l := Line{Provider: e.Provider, Type: e.Type, Currency: e.Currency, ProviderPaymentID: e.ProviderPaymentID,
			OrderID: e.OrderID, RefundID: e.RefundID, Batch: e.Batch, SettledAt: &at, Status: e.Status, SettledAmount: e.Amount, SettledFee: e.Fee,
			SettledNet: e.Net, Source: e.Source}
		r := idx.find(e)
		if r != nil {
			l.PaymentID, l.Method = r.p.ID, r.p.Method
			if l.ProviderPaymentID == "" {
				l.ProviderPaymentID = r.a.ProviderPaymentID
			}
			if l.OrderID == "" {
				l.OrderID = r.a.IdempotencyKey
			}
		}
		switch {
		case e.Type == "chargeback":
			l.Class = Chargeback
			l.Detail = "the provider took this payment's money back (dispute)"
			if r == nil {
				l.Class = MissingInLedger
				l.Detail = "chargeback of a payment payrouter does not know"
			}
		case e.Type != "payment" && e.Type != "refund":
			l.Class = Other
		case r == nil:
			l.Class = MissingInLedger
			l.Detail = "no payrouter attempt has this provider payment id or order id"
		case e.Currency != r.p.Currency:
			l.Class = AmountMismatch
			l.Detail = fmt.Sprintf("settled in %s, payment is in %s", e.Currency, r.p.Currency)
			if e.Type == "payment" {
				r.paid++ // it is this attempt's settlement, only wrong
			}
		case e.Type == "payment" && splits[r] != nil:
			splits[r].add(&l, r, &lines, opts.Tolerance)
		case e.Type == "payment":
			classifyPayment(&l, r, opts.Tolerance)
		default:
			classifyRefund(&l, r, opts.Tolerance)
		}
		lines = append(lines, l)
	}
	return lines
}

// unsettledLines are what should have settled by now and did not.
func unsettledLines(refs []*attemptRef, opts Options) []Line {
	var lines []Line
	due := opts.To.Add(-opts.SettleAfter)
	for _, r := range refs {
		p := r.p
		if r.captured > 0 && r.paid == 0 && !p.CreatedAt.Before(opts.From) && !p.CreatedAt.After(due) {
			lines = append(lines, Line{Class: MissingInSettlement, Provider: r.a.Provider, Type: "payment", Currency: p.Currency, Method: p.Method,
				PaymentID: p.ID, ProviderPaymentID: r.a.ProviderPaymentID, OrderID: r.a.IdempotencyKey,
				LedgerAmount: r.captured, ExpectedFee: r.expectedFee, AmountDelta: -r.captured, Source: "ledger",
				Detail: fmt.Sprintf("captured %s, created %s, no settlement line", payrouter.FormatDecimal(r.captured, p.Currency.Exponent()), p.CreatedAt.UTC().Format(time.RFC3339))})
		}
		for _, rf := range r.refunds {
			amt, at := rf.amount, rf.at
			if !at.Before(opts.From) && !at.After(due) {
				lines = append(lines, Line{Class: MissingInSettlement, Provider: r.a.Provider, Type: "refund", Currency: p.Currency, Method: p.Method,
					PaymentID: p.ID, ProviderPaymentID: r.a.ProviderPaymentID, OrderID: r.a.IdempotencyKey, RefundID: rf.id,
					LedgerAmount: amt, AmountDelta: -amt, Source: "ledger",
					Detail: fmt.Sprintf("refund of %s succeeded at %s, no settlement line", payrouter.FormatDecimal(amt, p.Currency.Exponent()), at.UTC().Format(time.RFC3339))})
			}
		}
	}
	return lines
}

// orphanLines are the orphan webhooks of the window: money nobody asked for.
func orphanLines(anomalies []store.Anomaly, reconciled map[string]bool, opts Options) []Line {
	var lines []Line
	for _, a := range anomalies {
		if a.Kind != store.AnomalyOrphan || !reconciled[a.Provider] || a.CreatedAt.Before(opts.From) || !a.CreatedAt.Before(opts.To) {
			continue
		}
		at := a.CreatedAt
		lines = append(lines, Line{Class: MissingInLedger, Provider: a.Provider, Type: "webhook", PaymentID: a.PaymentID,
			SettledAt: &at, Source: fmt.Sprintf("anomaly:%d", a.ID), Detail: "orphan webhook: " + a.Detail})
	}
	return lines
}

// capturingAttempt is the index of the attempt that captured the payment,
// or -1: the last succeeded attempt, else the one the payment names.
func capturingAttempt(p *payrouter.Payment) int {
	if p.AmountCaptured == 0 {
		return -1
	}
	for i := len(p.Attempts) - 1; i >= 0; i-- {
		if p.Attempts[i].Status == payrouter.AttemptSucceeded {
			return i
		}
	}
	for i := len(p.Attempts) - 1; i >= 0; i-- {
		a := p.Attempts[i]
		if a.Provider == p.Provider && a.ProviderPaymentID != "" && a.ProviderPaymentID == p.ProviderPaymentID {
			return i
		}
	}
	return -1
}

func abs(n int64) int64 {
	if n < 0 {
		return -n
	}
	return n
}

// split collects the lines of one capture settled in parts: the first
// line carries the capture and the expected fee, the last decides the fee
// check on the sum of the parts' fees.
type split struct {
	n, seen int
	fee     int64
	first   int // index in lines of the first part
}

func (sp *split) add(l *Line, r *attemptRef, lines *[]Line, tol int64) {
	sp.seen++
	sp.fee += l.SettledFee
	r.paid = 1
	l.Class = Matched
	l.Detail = fmt.Sprintf("part %d of %d of one capture", sp.seen, sp.n)
	if sp.seen == 1 {
		sp.first = len(*lines)
		l.LedgerAmount, l.ExpectedFee = r.captured, r.expectedFee
		return
	}
	if sp.seen == sp.n {
		f := &(*lines)[sp.first]
		f.FeeDelta = sp.fee - r.expectedFee
		var sum int64
		for _, x := range (*lines)[sp.first:] {
			if x.PaymentID == r.p.ID && x.Type == "payment" {
				sum += abs(x.SettledAmount)
			}
		}
		f.AmountDelta = sum + abs(l.SettledAmount) - r.captured
		if abs(f.FeeDelta) > tol {
			f.Class = FeeMismatch
			f.Detail += ": the parts' fees differ from the rules' expected fee"
		}
	}
}

func classifyPayment(l *Line, r *attemptRef, tol int64) {
	r.paid++
	l.LedgerAmount, l.ExpectedFee = r.captured, r.expectedFee
	l.AmountDelta = abs(l.SettledAmount) - r.captured
	l.FeeDelta = l.SettledFee - r.expectedFee
	switch {
	case r.paid > 1:
		l.Class = DuplicateSettlement
		l.Detail = fmt.Sprintf("payment settlement #%d for one attempt: double charge?", r.paid)
		// The first line already accounted for the capture.
		l.LedgerAmount, l.ExpectedFee, l.AmountDelta, l.FeeDelta = 0, 0, abs(l.SettledAmount), l.SettledFee
	case r.captured == 0:
		l.Class = AmountMismatch
		l.Detail = fmt.Sprintf("settled, but payrouter captured nothing through this attempt (attempt %s, payment %s)", r.a.Status, r.p.Status)
	case abs(l.AmountDelta) > tol:
		l.Class = AmountMismatch
		l.Detail = "settled amount differs from the captured amount"
	case abs(l.FeeDelta) > tol:
		l.Class = FeeMismatch
		l.Detail = "settled fee differs from the rules' expected fee"
	default:
		l.Class = Matched
	}
}

// classifyRefund matches a refund settlement to the unmatched succeeded
// refund with its refund id when the line carries one, else to one of the
// same amount (then the nearest within the tolerance).
func classifyRefund(l *Line, r *attemptRef, tol int64) {
	amt := abs(l.SettledAmount)
	best := -1
	if l.RefundID != "" {
		for k, x := range r.refunds {
			if x.id == l.RefundID && abs(x.amount-amt) <= tol {
				best = k
			}
		}
	} else {
		for k, x := range r.refunds {
			if d := abs(x.amount - amt); d <= tol && (best < 0 || d < abs(r.refunds[best].amount-amt)) {
				best = k
			}
		}
	}
	if best < 0 && l.RefundID == "" && len(r.refunds) > 1 {
		// Many-to-one: a provider that settles a payment's refunds in one
		// line; it matches when it is all of them.
		var all int64
		ids := make([]string, 0, len(r.refunds))
		for _, x := range r.refunds {
			all += x.amount
			ids = append(ids, x.id)
		}
		if abs(all-amt) <= tol {
			l.Class, l.LedgerAmount, l.AmountDelta = Matched, all, amt-all
			l.Detail = fmt.Sprintf("%d refunds in one line: %s", len(ids), strings.Join(ids, ", "))
			r.refunds = nil
			return
		}
	}
	if best < 0 {
		var left int64
		for _, x := range r.refunds {
			left += x.amount
		}
		l.Class = RefundMismatch
		l.AmountDelta = amt
		l.Detail = fmt.Sprintf("no succeeded payrouter refund of this amount (unmatched refunds total %d, payment status %s)", left, r.p.Status)
		return
	}
	l.Class = Matched
	l.LedgerAmount = r.refunds[best].amount
	l.RefundID = r.refunds[best].id
	l.AmountDelta = amt - l.LedgerAmount
	r.refunds = append(r.refunds[:best], r.refunds[best+1:]...)
}

func (rep *Report) total() {
	idx := map[[2]string]int{}
	for _, l := range rep.Lines {
		k := [2]string{l.Provider, string(l.Currency)}
		i, ok := idx[k]
		if !ok {
			i = len(rep.Totals)
			idx[k] = i
			rep.Totals = append(rep.Totals, Total{Provider: l.Provider, Currency: l.Currency, Classes: map[Class]int{}})
		}
		t := &rep.Totals[i]
		t.Lines++
		t.Classes[l.Class]++
		if l.Class.Discrepancy() {
			t.Discrepancies++
			rep.Discrepancies++
		}
		switch {
		case l.Class == MissingInSettlement:
			t.Missing += l.LedgerAmount
			continue
		case l.Type == "payment":
			t.Gross += l.SettledAmount
			t.FeesExpected += l.ExpectedFee
			t.FeeDelta += l.FeeDelta
		case l.Type == "refund", l.Type == "chargeback":
			t.Refunds += l.SettledAmount
		}
		t.FeesSettled += l.SettledFee
		t.Net += l.SettledNet
		t.AmountDelta += l.AmountDelta
	}
	sort.Slice(rep.Totals, func(i, j int) bool {
		a, b := rep.Totals[i], rep.Totals[j]
		if a.Provider != b.Provider {
			return a.Provider < b.Provider
		}
		return a.Currency < b.Currency
	})
	if rep.Totals == nil {
		rep.Totals = []Total{}
	}
}

// EntryLister is a settlement source that keeps each line's source and
// payout batch (ReportClient).
type EntryLister interface {
	Entries(ctx context.Context, from, to time.Time) ([]Entry, error)
}

// Fetch lists the settlements of [from, to) from each lister, in name
// order, tagging each with Source "api". An error names the provider and
// wraps the adapter's *providers.Error.
func Fetch(ctx context.Context, listers map[string]providers.SettlementLister, from, to time.Time) ([]Entry, error) {
	names := make([]string, 0, len(listers))
	for n := range listers {
		names = append(names, n)
	}
	sort.Strings(names)
	var out []Entry
	for _, n := range names {
		if el, ok := listers[n].(EntryLister); ok {
			es, err := el.Entries(ctx, from, to)
			if err != nil {
				return nil, fmt.Errorf("recon: %s settlements: %w", n, err)
			}
			for _, e := range es {
				e.Provider = n
				out = append(out, e)
			}
			continue
		}
		ss, err := listers[n].Settlements(ctx, from, to)
		if err != nil {
			return nil, fmt.Errorf("recon: %s settlements: %w", n, err)
		}
		for _, s := range ss {
			s.Provider = n
			out = append(out, Entry{Settlement: s, Source: "api", Batch: s.Batch})
		}
	}
	return out, nil
}
