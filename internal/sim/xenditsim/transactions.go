package xenditsim

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/payrouter/payrouter"
	"github.com/payrouter/payrouter/internal/sim"
)

// Fee is one sandbox fee rule: Percent in basis points (half-up rounding,
// as payrouter's rules compute expected fees) plus a fixed amount in minor
// units per currency.
type Fee struct {
	BP    int64
	Fixed map[payrouter.Currency]int64
}

// DefaultFees is the sandbox fee table by payrouter method, the figures of
// the shipped config.yaml's fees.xendit (Xendit's published rates, VAT
// included: the simulator reports value_added_tax 0).
func DefaultFees() map[string]Fee {
	return map[string]Fee{
		"card":          {BP: 290, Fixed: map[payrouter.Currency]int64{"IDR": 2000}},
		"ovo":           {BP: 273},
		"dana":          {BP: 150},
		"shopeepay":     {BP: 200},
		"linkaja":       {BP: 150},
		"qris":          {BP: 70},
		"bank_transfer": {Fixed: map[payrouter.Currency]int64{"IDR": 4000}},
	}
}

func (f Fee) of(amount int64, cur payrouter.Currency) int64 {
	return (amount*f.BP+5000)/10000 + f.Fixed[cur]
}

// method is the payrouter method of a payment request, for the fee table.
func (p *pr) method() string {
	switch p.Type {
	case "CARD":
		return "card"
	case "QR_CODE":
		return "qris"
	case "VIRTUAL_ACCOUNT":
		return "bank_transfer"
	}
	return strings.ToLower(p.ChannelCode)
}

func (p *pr) channelCategory() string {
	if p.Type == "CARD" {
		return "CARDS"
	}
	return p.Type // EWALLET, QR_CODE, VIRTUAL_ACCOUNT are Xendit's categories too
}

// txn is one transaction of Xendit's Transaction API.
type txn struct {
	ID, ProductID, Type, ReferenceID string
	ChannelCategory, ChannelCode     string
	Currency                         payrouter.Currency
	Amount, Fee                      int64 // minor units, positive
	Cashflow                         string
	Created, EstimatedSettlement     time.Time
}

func (b *Backend) recordPaymentLocked(p *pr) {
	now := b.opts.Now()
	fee := b.opts.Fees[p.method()].of(p.Captured, p.Currency)
	b.txns = append(b.txns, &txn{ID: "txn_" + uuid(), ProductID: p.ID, Type: "PAYMENT", ReferenceID: p.ReferenceID,
		ChannelCategory: p.channelCategory(), ChannelCode: p.ChannelCode, Currency: p.Currency, Amount: p.Captured, Fee: fee,
		Cashflow: "MONEY_IN", Created: now, EstimatedSettlement: now.Add(b.opts.SettleAfter)})
}

func (b *Backend) recordRefundLocked(p *pr, rf refund) {
	b.txns = append(b.txns, &txn{ID: "txn_" + uuid(), ProductID: rf.ID, Type: "REFUND", ReferenceID: rf.ReferenceID,
		ChannelCategory: p.channelCategory(), ChannelCode: p.ChannelCode, Currency: p.Currency, Amount: rf.Amount,
		Cashflow: "MONEY_OUT", Created: rf.Created, EstimatedSettlement: rf.Created})
}

// render is the TransactionResponse of xendit-go's balance_and_transaction
// model; b.mu is held.
func (b *Backend) renderTxn(t *txn, now time.Time) map[string]any {
	settlement := "SETTLED"
	if now.Before(t.EstimatedSettlement) {
		settlement = "PENDING"
	}
	var est any
	if t.Cashflow == "MONEY_IN" {
		est = t.EstimatedSettlement.UTC().Format(time.RFC3339Nano)
	}
	return map[string]any{
		"id": t.ID, "product_id": t.ProductID, "type": t.Type, "status": "SUCCESS",
		"channel_category": t.ChannelCategory, "channel_code": t.ChannelCode, "account_identifier": nil,
		"reference_id": t.ReferenceID, "currency": t.Currency, "amount": wire(t.Amount, t.Currency),
		"cashflow": t.Cashflow, "settlement_status": settlement, "estimated_settlement_time": est,
		"business_id": b.opts.BusinessID,
		"fee": map[string]any{"xendit_fee": wire(t.Fee, t.Currency), "value_added_tax": wire(0, t.Currency),
			"xendit_withholding_tax": wire(0, t.Currency), "third_party_withholding_tax": wire(0, t.Currency), "status": "COMPLETED"},
		"created": t.Created.UTC().Format(time.RFC3339Nano), "updated": t.Created.UTC().Format(time.RFC3339Nano),
	}
}

var (
	txnTypes    = map[string]bool{"BATCH_DISBURSEMENT": true, "DISBURSEMENT": true, "PAYMENT": true, "REMITTANCE": true, "REMITTANCE_PAYOUT": true, "REMITTANCE_COLLECTION": true, "TRANSFER": true, "PLATFORM_FEE": true, "REFUND": true, "CASHBACK": true, "TOPUP": true, "WITHDRAWAL": true, "OTHER": true}
	txnStatuses = map[string]bool{"SUCCESS": true, "PENDING": true, "FAILED": true, "REVERSED": true, "VOIDED": true}
)

// listTransactions serves GET /transactions with the query parameters of
// xendit-go's GetAllTransactions: types, statuses, channel_categories,
// reference_id, product_id, currency, created[gte]/created[lte] and
// updated[…] (RFC 3339), limit (1–50, default 10) and the cursors after_id
// / before_id. Newest first; has_more and a "next" link tell the client to
// page on with after_id = the last id.
func (b *Backend) listTransactions(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	bad := func(msg string) {
		a := apiErr(400, "API_VALIDATION_ERROR", msg)
		sim.WriteJSON(w, a.status, a.body)
	}
	for _, t := range q["types"] {
		if !txnTypes[t] {
			bad("types: unknown transaction type " + t)
			return
		}
	}
	for _, s := range q["statuses"] {
		if !txnStatuses[s] {
			bad("statuses: unknown transaction status " + s)
			return
		}
	}
	limit := 10
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > 50 {
			bad("limit must be an integer between 1 and 50")
			return
		}
		limit = n
	}
	var bounds [4]*time.Time // created gte, lte; updated gte, lte
	for i, k := range []string{"created[gte]", "created[lte]", "updated[gte]", "updated[lte]"} {
		if v := q.Get(k); v != "" {
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				bad(k + " must be an RFC 3339 time")
				return
			}
			bounds[i] = &t
		}
	}
	in := func(list []string, v string) bool {
		if len(list) == 0 {
			return true
		}
		for _, x := range list {
			if x == v {
				return true
			}
		}
		return false
	}
	b.mu.Lock()
	now := b.opts.Now()
	var match []*txn
	for i := len(b.txns) - 1; i >= 0; i-- {
		t := b.txns[i]
		switch {
		case !in(q["types"], t.Type), !in(q["statuses"], "SUCCESS"), !in(q["channel_categories"], t.ChannelCategory),
			q.Get("reference_id") != "" && q.Get("reference_id") != t.ReferenceID,
			q.Get("product_id") != "" && q.Get("product_id") != t.ProductID,
			q.Get("currency") != "" && q.Get("currency") != string(t.Currency):
			continue
		}
		skip := false
		for j, bnd := range bounds {
			if bnd == nil {
				continue
			}
			if (j%2 == 0 && t.Created.Before(*bnd)) || (j%2 == 1 && t.Created.After(*bnd)) {
				skip = true
			}
		}
		if !skip {
			match = append(match, t)
		}
	}
	start, end := 0, len(match)
	if after := q.Get("after_id"); after != "" {
		start = len(match)
		for i, t := range match {
			if t.ID == after {
				start = i + 1
			}
		}
	} else if before := q.Get("before_id"); before != "" {
		end = 0
		for i, t := range match {
			if t.ID == before {
				end = i
			}
		}
		if end-limit > start {
			start = end - limit
		}
	}
	page := match[start:end]
	hasMore := len(page) > limit
	if hasMore {
		page = page[:limit]
	}
	data := make([]map[string]any, 0, len(page))
	for _, t := range page {
		data = append(data, b.renderTxn(t, now))
	}
	b.mu.Unlock()
	resp := map[string]any{"has_more": hasMore, "data": data}
	if hasMore {
		next := r.URL.Query()
		next.Del("before_id")
		next.Set("after_id", page[len(page)-1].ID)
		resp["links"] = []map[string]string{{"href": "/transactions?" + next.Encode(), "rel": "next", "method": "GET"}}
	}
	sim.WriteJSON(w, http.StatusOK, resp)
}

// balance serves GET /balance?account_type=CASH|HOLDING|TAX&currency=…:
// CASH is the net of settled transactions, HOLDING of those still pending
// settlement, TAX 0 (the sandbox charges no separate tax).
func (b *Backend) balance(w http.ResponseWriter, r *http.Request) {
	acct := r.URL.Query().Get("account_type")
	if acct == "" {
		acct = "CASH"
	}
	if acct != "CASH" && acct != "HOLDING" && acct != "TAX" {
		a := apiErr(400, "API_VALIDATION_ERROR", "account_type must be one of CASH, HOLDING, TAX")
		sim.WriteJSON(w, a.status, a.body)
		return
	}
	cur, err := payrouter.ParseCurrency(orDefault(r.URL.Query().Get("currency"), "IDR"))
	if err != nil {
		a := apiErr(400, "API_VALIDATION_ERROR", "currency is not valid")
		sim.WriteJSON(w, a.status, a.body)
		return
	}
	b.mu.Lock()
	now := b.opts.Now()
	var sum int64
	for _, t := range b.txns {
		if t.Currency != cur || acct == "TAX" || (acct == "CASH") == now.Before(t.EstimatedSettlement) {
			continue
		}
		net := t.Amount - t.Fee
		if t.Cashflow == "MONEY_OUT" {
			net = -t.Amount - t.Fee
		}
		sum += net
	}
	b.mu.Unlock()
	sim.WriteJSON(w, http.StatusOK, map[string]any{"balance": wire(sum, cur)})
}

// simulate is test mode's POST /payment_requests/{id}/payments/simulate:
// the end user pays a payment request awaiting them (QRIS, VA, e-wallet).
// It answers xendit-go's PaymentSimulation {status, message} and sends the
// payment webhook, as Xendit does, asynchronously.
func (b *Backend) simulate(r *http.Request, _ []byte) answer {
	b.mu.Lock()
	p := b.prs[r.PathValue("id")]
	if p == nil {
		b.mu.Unlock()
		return apiErr(404, "DATA_NOT_FOUND", "payment request was not found")
	}
	if p.Status != "PENDING" && p.Status != "REQUIRES_ACTION" {
		b.mu.Unlock()
		return apiErr(409, "INVALID_PAYMENT_REQUEST_STATUS", "payment request is "+p.Status+" and cannot be paid")
	}
	b.completeLocked(p, sim.OutcomeSuccess)
	hook := b.webhookBody(p, eventFor(p.Status))
	b.mu.Unlock()
	b.notifyAsync(hook)
	return answer{http.StatusOK, map[string]any{"status": "PENDING", "message": "Payment simulation for payment request " + p.ID + " is being processed"}}
}

// SettlementFault changes what the settlement data (GET /transactions)
// says about a payment, for reconciliation tests (the control API's
// POST /sim/xendit/_settlement_faults): "drop" removes its PAYMENT
// transaction, "amount" and "fee" add delta (minor units) to its amount or
// fee, "duplicate" lists it a second time under a new transaction id, and
// "orphan" adds a settled payment payrouter never made (product_id
// providerPaymentID or a fresh id, amount delta or 10000, IDR). It returns
// sim.ErrNotFound when the payment has no transaction.
func (b *Backend) SettlementFault(kind, providerPaymentID string, delta int64) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if kind == "orphan" {
		id := providerPaymentID
		if id == "" {
			id = "pr-" + uuid()
		}
		amount := delta
		if amount <= 0 {
			amount = 10000
		}
		now := b.opts.Now()
		b.txns = append(b.txns, &txn{ID: "txn_" + uuid(), ProductID: id, Type: "PAYMENT", ReferenceID: "orphan-" + id,
			ChannelCategory: "QR_CODE", ChannelCode: "QRIS", Currency: "IDR", Amount: amount, Fee: b.opts.Fees["qris"].of(amount, "IDR"),
			Cashflow: "MONEY_IN", Created: now, EstimatedSettlement: now})
		return nil
	}
	for i, t := range b.txns {
		if t.ProductID != providerPaymentID || t.Type != "PAYMENT" {
			continue
		}
		switch kind {
		case "drop":
			b.txns = append(b.txns[:i:i], b.txns[i+1:]...)
		case "amount":
			t.Amount += delta
		case "fee":
			t.Fee += delta
		case "duplicate":
			d := *t
			d.ID = "txn_" + uuid()
			b.txns = append(b.txns, &d)
		default:
			return fmt.Errorf("kind must be drop, amount, fee, duplicate or orphan, not %q", kind)
		}
		return nil
	}
	return sim.ErrNotFound
}

func (b *Backend) handleSettlementFault(w http.ResponseWriter, r *http.Request) {
	sim.ServeSettlementFault(w, r, func(f sim.SettlementFault) error {
		return b.SettlementFault(f.Kind, f.ProviderPaymentID, f.Delta)
	})
}
