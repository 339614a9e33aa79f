package stripesim

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/payrouter/payrouter/internal/sim"
)

// SettlementFault changes what the balance transactions say about a
// PaymentIntent, for reconciliation tests (the control API's POST
// /sim/stripe/_settlement_faults): "drop" removes its charge balance
// transaction, "amount" and "fee" add delta (Stripe's units) to its amount
// or fee, "duplicate" lists it a second time under a new id, and "orphan"
// adds a charge payrouter never made (source providerPaymentID or a fresh
// ch_ id, amount delta or 1000, USD). It returns sim.ErrNotFound when the
// PaymentIntent has no charge balance transaction.
func (b *Backend) SettlementFault(kind, providerPaymentID string, delta int64) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if kind == "orphan" {
		id := providerPaymentID
		if id == "" {
			id = "ch_orphan_" + randID(16)
		}
		amount := delta
		if amount <= 0 {
			amount = 1000
		}
		b.bts = append(b.bts, &balanceTxn{ID: "txn_" + randID(24), Amount: amount, Fee: fee(amount, "usd"), Currency: "usd",
			Type: "charge", Source: id, Created: b.opts.Now().Unix()})
		return nil
	}
	pi := b.intents[providerPaymentID]
	if pi == nil {
		return sim.ErrNotFound
	}
	for i, t := range b.bts {
		if t.Type != "charge" || t.Source != pi.LatestCharge {
			continue
		}
		switch kind {
		case "drop":
			b.bts = append(b.bts[:i:i], b.bts[i+1:]...)
		case "amount":
			t.Amount += delta
		case "fee":
			t.Fee += delta
		case "duplicate":
			d := *t
			d.ID = "txn_" + randID(24)
			b.bts = append(b.bts, &d)
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

// payoutID is the automatic daily payout a balance transaction is paid out
// in: one per currency and UTC day of its creation (available at once in
// the sandbox, paid out the same day).
func payoutID(t *balanceTxn) string {
	return "po_" + t.Currency + "_" + time.Unix(t.Created, 0).UTC().Format("20060102")
}

// listPayouts serves GET /v1/payouts (created[gte|gt|lt|lte] filters, no
// paging: the sandbox holds few): one paid automatic payout per currency
// and day, of the net of its balance transactions, newest first; list the
// transactions of one with GET /v1/balance_transactions?payout=po_….
func (b *Backend) listPayouts(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	b.mu.Lock()
	type po struct {
		id, cur string
		day     int64
		net     int64
	}
	idx := map[string]int{}
	var pos []po
	for _, t := range b.bts {
		id := payoutID(t)
		i, ok := idx[id]
		if !ok {
			i = len(pos)
			idx[id] = i
			day := time.Unix(t.Created, 0).UTC().Truncate(24 * time.Hour).Unix()
			pos = append(pos, po{id: id, cur: t.Currency, day: day})
		}
		pos[i].net += t.Amount - t.Fee
	}
	b.mu.Unlock()
	data := []any{}
	for i := len(pos) - 1; i >= 0; i-- {
		p := pos[i]
		skip := false
		for _, op := range []string{"gte", "gt", "lt", "lte"} {
			v := q.Get("created[" + op + "]")
			if v == "" {
				continue
			}
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				writeErr(w, apiErr(400, "invalid_request_error", "parameter_invalid_integer", "Invalid integer: "+v, "created"))
				return
			}
			switch {
			case op == "gte" && p.day < n, op == "gt" && p.day <= n, op == "lt" && p.day >= n, op == "lte" && p.day > n:
				skip = true
			}
		}
		if skip {
			continue
		}
		data = append(data, map[string]any{"id": p.id, "object": "payout", "amount": p.net, "currency": p.cur, "arrival_date": p.day,
			"created": p.day, "status": "paid", "automatic": true, "method": "standard", "type": "bank_account",
			"balance_transaction": "txn_" + p.id, "livemode": false, "metadata": map[string]string{}})
	}
	sim.WriteJSON(w, 200, map[string]any{"object": "list", "url": "/v1/payouts", "has_more": false, "data": data})
}
