package stripesim

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

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
	var req struct {
		Kind              string `json:"kind"`
		ProviderPaymentID string `json:"provider_payment_id"`
		Delta             int64  `json:"delta"`
	}
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<16))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		sim.WriteJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
		return
	}
	err := b.SettlementFault(req.Kind, req.ProviderPaymentID, req.Delta)
	switch {
	case errors.Is(err, sim.ErrNotFound):
		sim.WriteJSON(w, http.StatusNotFound, map[string]string{"error": "no charge balance transaction for " + req.ProviderPaymentID})
	case err != nil:
		sim.WriteJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
	default:
		sim.WriteJSON(w, http.StatusOK, req)
	}
}
