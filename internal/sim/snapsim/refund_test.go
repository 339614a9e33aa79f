package snapsim_test

import (
	"context"
	"testing"

	"github.com/payrouter/payrouter"
	"github.com/payrouter/payrouter/internal/sim"
	"github.com/payrouter/payrouter/providers"
)

// Each wallet adapter against its simulator: a refund whose answer was
// lost (refunded, then the connection dropped) is found by its
// partnerRefundNo through the refund inquiry; one never sent is
// not_found; money moved once.
func TestRefundStatus(t *testing.T) {
	for _, w := range wallets {
		t.Run(w.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, w)
			ctx := context.Background()
			rc, ok := e.prov.(providers.RefundStatusChecker)
			if !ok {
				t.Fatalf("%s adapter has no RefundStatus", w.name)
			}
			req := e.authReq("pay_rq", 10000)
			res, err := e.prov.Authorize(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			e.pay(res.ProviderPaymentID, sim.OutcomeSuccess)
			q := &providers.RefundStatusRequest{ProviderPaymentID: res.ProviderPaymentID, OrderID: req.OrderID(), RefundID: "re_lost", Amount: 4000, Currency: "IDR"}
			if _, err := rc.RefundStatus(ctx, q); classOf(t, err).Code != "not_found" {
				t.Fatalf("RefundStatus before the refund = %v, want not_found", err)
			}
			e.faults("drop_after_refund")
			_, err = e.prov.Refund(ctx, &providers.RefundRequest{ProviderPaymentID: res.ProviderPaymentID, OrderID: req.OrderID(),
				RefundID: "re_lost", IdempotencyKey: "re_lost", Amount: 4000, Currency: "IDR"})
			if pe := classOf(t, err); pe.Class != providers.Ambiguous {
				t.Fatalf("Refund with its answer dropped = %v, want ambiguous", pe)
			}
			// Only the refund's answer is lost: the inquiry is served.
			for _, by := range []*providers.RefundStatusRequest{q, {OrderID: req.OrderID(), RefundID: "re_lost"}} {
				got, err := rc.RefundStatus(ctx, by)
				if err != nil || got.Status != payrouter.RefundSucceeded || got.ProviderRefundID == "" {
					t.Fatalf("RefundStatus(%+v) = %+v, %v; want succeeded with refundNo", by, got, err)
				}
			}
			e.faults("none")
			if _, err := rc.RefundStatus(ctx, &providers.RefundStatusRequest{OrderID: "nope_a1", RefundID: "re_lost"}); classOf(t, err).Code != "not_found" {
				t.Errorf("RefundStatus for an unknown payment = %v, want not_found", err)
			}
			for _, l := range e.sim.Backend.Ledger() {
				if l.ID == res.ProviderPaymentID && l.Refunded != 4000 {
					t.Errorf("ledger refunded = %d, want 4000 (once)", l.Refunded)
				}
			}
		})
	}
}
