package router

import (
	"context"
	"testing"
	"time"

	"github.com/payrouter/payrouter"
	"github.com/payrouter/payrouter/providers"
)

// judge: a claim is borne out by the same status or one it moves on to;
// refuted when the payment ended otherwise; else unconfirmed (not yet).
func TestJudge(t *testing.T) {
	const (
		ra  = payrouter.StatusRequiresAction
		ok  = payrouter.StatusSucceeded
		exp = payrouter.StatusExpired
		can = payrouter.StatusCanceled
		ref = payrouter.StatusRefunded
	)
	tests := []struct {
		name          string
		kind          providers.NotificationKind
		claim, actual payrouter.Status
		want          string
	}{
		{"same", providers.KindPayment, ok, ok, ""},
		{"pending claim, paid since", providers.KindPayment, ra, ok, ""},
		{"pending claim, expired since", providers.KindPayment, ra, exp, ""},
		{"settled claim, refunded since", providers.KindPayment, ok, ref, ""},
		{"settlement claim, status API lags", providers.KindPayment, ok, ra, OutcomeUnconfirmed},
		{"relabelled expire, still pending", providers.KindPayment, exp, ra, OutcomeUnconfirmed},
		{"relabelled expire, paid since", providers.KindPayment, exp, ok, OutcomeRefuted},
		{"relabelled cancel, expired", providers.KindPayment, can, exp, OutcomeRefuted},
		{"success claim, expired", providers.KindPayment, ok, exp, OutcomeRefuted},
		{"unmapped claim", providers.KindPayment, "", ok, OutcomeUnconfirmed},
		{"unmapped both", providers.KindPayment, "", "", ""},
		{"refund confirmed", providers.KindRefund, ref, payrouter.StatusPartiallyRefunded, ""},
		{"refund not visible yet", providers.KindRefund, ref, ok, OutcomeUnconfirmed},
		{"refund of a dead payment", providers.KindRefund, ref, exp, OutcomeRefuted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := judge(&providers.Notification{Kind: tt.kind, Status: tt.claim}, &providers.Result{Status: tt.actual}); got != tt.want {
				t.Errorf("judge(%s claims %q, status API %q) = %q, want %q", tt.kind, tt.claim, tt.actual, got, tt.want)
			}
		})
	}
}

// A refund claim is borne out only by that refund, for that amount, when
// the status answer lists refunds (the refund key is not signed).
func TestJudgeRefundNeedsThatRefund(t *testing.T) {
	listed := &providers.Result{Status: payrouter.StatusPartiallyRefunded, Refunds: []providers.ReportedRefund{{RefundID: "rf_1", Amount: 5000}}}
	tests := []struct {
		name string
		n    providers.Notification
		want string
	}{
		{"the listed refund", providers.Notification{RefundID: "rf_1", Amount: 5000}, ""},
		{"another refund's key", providers.Notification{RefundID: "rf_2", Amount: 5000}, OutcomeUnconfirmed},
		{"another amount", providers.Notification{RefundID: "rf_1", Amount: 9000}, OutcomeUnconfirmed},
	}
	for _, tt := range tests {
		tt.n.Kind = providers.KindRefund
		if got := judge(&tt.n, listed); got != tt.want {
			t.Errorf("%s: judge = %q, want %q", tt.name, got, tt.want)
		}
	}
}

// A refusal of our credentials is kept (and reported once per call) until
// a call the provider answers past them; transport errors and breaker
// refusals change nothing.
func TestGuardedCredentialsRefused(t *testing.T) {
	f := &fake{}
	g := Guard("stripe", f, time.Second, BreakerSettings{MinRequests: 100}, nil)
	var seen []string
	g.OnCredentialsRefused = func(provider, op string, err *providers.Error) { seen = append(seen, provider+"/"+op) }
	call := func(err error) {
		f.authorize = func(context.Context) (*providers.Result, error) {
			return &providers.Result{Status: payrouter.StatusSucceeded}, err
		}
		_, _ = g.Authorize(context.Background(), &providers.AuthorizeRequest{Method: payrouter.MethodCard})
	}
	if _, ok := g.CredentialsRefused(); ok {
		t.Fatal("refused before any call")
	}
	call(providers.CredentialsRefused(401, "api_key_invalid", "bad key"))
	call(providers.CredentialsRefused(401, "api_key_invalid", "bad key"))
	call(&providers.Error{Class: providers.Ambiguous, Code: "timeout"}) // says nothing about the key
	cr, ok := g.CredentialsRefused()
	if !ok || cr.Count != 2 || cr.HTTPStatus != 401 || cr.Code != "api_key_invalid" || cr.Op != "authorize" || cr.Since.After(cr.Last) {
		t.Fatalf("CredentialsRefused = %+v, %v; want 2 refusals of authorize, HTTP 401", cr, ok)
	}
	if len(seen) != 2 || seen[0] != "stripe/authorize" {
		t.Errorf("reported %v, want two stripe/authorize", seen)
	}
	call(&providers.Error{Class: providers.Declined, Code: "card_declined"}) // answered past our key
	if cr, ok := g.CredentialsRefused(); ok {
		t.Errorf("still refused after a decline: %+v", cr)
	}
	call(providers.CredentialsRefused(403, "", "no permission"))
	call(nil)
	if cr, ok := g.CredentialsRefused(); ok {
		t.Errorf("still refused after a success: %+v", cr)
	}
}
