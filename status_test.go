package payrouter

import (
	"errors"
	"testing"
	"time"
)

// Every pair of statuses: allowed (and which event), stale (no-op), or
// impossible (an anomaly). Nothing changes unless allowed.
func TestTransitions(t *testing.T) {
	const (
		ok      = "ok"
		stale   = "stale"
		anomaly = "anomaly"
	)
	want := map[Status]map[Status]string{
		StatusProcessing: {StatusRequiresAction: ok, StatusAuthorized: ok, StatusSucceeded: ok, StatusPartiallyRefunded: anomaly,
			StatusRefunded: anomaly, StatusFailed: ok, StatusCanceled: ok, StatusExpired: ok},
		StatusRequiresAction: {StatusProcessing: ok, StatusAuthorized: ok, StatusSucceeded: ok, StatusPartiallyRefunded: anomaly,
			StatusRefunded: anomaly, StatusFailed: ok, StatusCanceled: ok, StatusExpired: ok},
		StatusAuthorized: {StatusProcessing: stale, StatusRequiresAction: stale, StatusSucceeded: ok, StatusPartiallyRefunded: anomaly,
			StatusRefunded: anomaly, StatusFailed: ok, StatusCanceled: ok, StatusExpired: ok},
		StatusSucceeded: {StatusProcessing: stale, StatusRequiresAction: stale, StatusAuthorized: stale, StatusPartiallyRefunded: ok,
			StatusRefunded: ok, StatusFailed: anomaly, StatusCanceled: anomaly, StatusExpired: anomaly},
		StatusPartiallyRefunded: {StatusProcessing: stale, StatusRequiresAction: stale, StatusAuthorized: stale, StatusSucceeded: stale,
			StatusRefunded: ok, StatusFailed: anomaly, StatusCanceled: anomaly, StatusExpired: anomaly},
		StatusRefunded: {StatusProcessing: stale, StatusRequiresAction: stale, StatusAuthorized: stale, StatusSucceeded: stale,
			StatusPartiallyRefunded: stale, StatusFailed: anomaly, StatusCanceled: anomaly, StatusExpired: anomaly},
		StatusFailed: {StatusProcessing: stale, StatusRequiresAction: stale, StatusAuthorized: anomaly, StatusSucceeded: anomaly,
			StatusPartiallyRefunded: anomaly, StatusRefunded: anomaly, StatusCanceled: stale, StatusExpired: stale},
		StatusCanceled: {StatusProcessing: stale, StatusRequiresAction: stale, StatusAuthorized: anomaly, StatusSucceeded: anomaly,
			StatusPartiallyRefunded: anomaly, StatusRefunded: anomaly, StatusFailed: stale, StatusExpired: stale},
		StatusExpired: {StatusProcessing: stale, StatusRequiresAction: stale, StatusAuthorized: anomaly, StatusSucceeded: anomaly,
			StatusPartiallyRefunded: anomaly, StatusRefunded: anomaly, StatusFailed: stale, StatusCanceled: stale},
	}
	events := map[Status]EventType{StatusRequiresAction: EventRequiresAction, StatusAuthorized: EventAuthorized,
		StatusSucceeded: EventSuccess, StatusFailed: EventFailed, StatusCanceled: EventFailed, StatusExpired: EventFailed}
	now := time.Unix(1700000000, 0)
	for _, from := range Statuses {
		for _, to := range Statuses {
			w := stale
			if from != to {
				w = want[from][to]
			}
			t.Run(string(from)+"→"+string(to), func(t *testing.T) {
				p := &Payment{ID: "pay_1", Status: from, Amount: 100, AmountCaptured: 100}
				changed, err := p.Advance(to, now)
				var ae *AnomalyError
				got := stale
				switch {
				case changed && err == nil:
					got = ok
				case errors.As(err, &ae):
					got = anomaly
				case err != nil:
					t.Fatalf("unexpected error %v", err)
				}
				if got != w {
					t.Fatalf("got %s, want %s", got, w)
				}
				ev := p.PendingEvents()
				if got != ok {
					if p.Status != from || len(ev) != 0 {
						t.Fatalf("a refused transition changed the payment: status %s, %d events", p.Status, len(ev))
					}
					return
				}
				if p.Status != to {
					t.Fatalf("status = %s, want %s", p.Status, to)
				}
				if e, has := events[to]; has && (len(ev) != 1 || ev[0].Type != e) {
					t.Fatalf("events = %+v, want one %s", ev, e)
				}
			})
		}
	}
}

func TestExactlyOneTerminalEvent(t *testing.T) {
	now := time.Unix(1700000000, 0)
	p := &Payment{ID: "pay_1", Status: StatusProcessing, Amount: 100}
	seq := []Status{StatusRequiresAction, StatusProcessing, StatusSucceeded, StatusSucceeded, StatusRequiresAction, StatusFailed, StatusExpired}
	terminal := 0
	for _, s := range seq {
		_, _ = p.Advance(s, now)
		for _, e := range p.PendingEvents() {
			if e.Type == EventSuccess || e.Type == EventFailed {
				terminal++
			}
		}
	}
	if terminal != 1 || p.Status != StatusSucceeded {
		t.Fatalf("terminal events = %d, status %s; want 1, succeeded", terminal, p.Status)
	}
}

func TestRefunds(t *testing.T) {
	now := time.Unix(1700000000, 0)
	p := &Payment{ID: "pay_1", Status: StatusSucceeded, Amount: 1000, AmountCaptured: 800}
	p.Refunds = []Refund{{ID: "re_1", Amount: 300, Status: RefundPending}, {ID: "re_2", Amount: 500, Status: RefundPending}}
	if got := p.Refundable(); got != 0 {
		t.Fatalf("refundable with 800 pending of 800 captured = %d, want 0", got)
	}
	if err := p.SettleRefund("re_1", true, "", now); err != nil || p.Status != StatusPartiallyRefunded || p.AmountRefunded != 300 {
		t.Fatalf("after re_1: %v %s %d", err, p.Status, p.AmountRefunded)
	}
	if err := p.SettleRefund("re_1", true, "", now); err != nil || p.AmountRefunded != 300 {
		t.Fatalf("settling twice counted twice: %d", p.AmountRefunded)
	}
	if err := p.SettleRefund("re_2", false, "declined", now); err != nil || p.Status != StatusPartiallyRefunded || p.Refundable() != 500 {
		t.Fatalf("failed refund: %v %s refundable %d", err, p.Status, p.Refundable())
	}
	p.Refunds = append(p.Refunds, Refund{ID: "re_3", Amount: 500, Status: RefundPending})
	if err := p.SettleRefund("re_3", true, "", now); err != nil || p.Status != StatusRefunded || p.AmountRefunded != 800 {
		t.Fatalf("full: %v %s %d", err, p.Status, p.AmountRefunded)
	}
	if err := p.SettleRefund("re_x", true, "", now); err == nil {
		t.Fatal("unknown refund settled")
	}
	var types []EventType
	for _, e := range p.PendingEvents() {
		types = append(types, e.Type)
	}
	want := []EventType{EventRefundSuccess, EventRefundFailed, EventRefundSuccess}
	if len(types) != len(want) {
		t.Fatalf("events %v, want %v", types, want)
	}
	for i := range want {
		if types[i] != want[i] {
			t.Fatalf("events %v, want %v", types, want)
		}
	}
}

func TestEventID(t *testing.T) {
	id := EventID(42)
	if id != "evt_0000000000000042" {
		t.Fatalf("EventID(42) = %s", id)
	}
	if n, err := ParseEventID(id); err != nil || n != 42 {
		t.Fatalf("ParseEventID = %d, %v", n, err)
	}
	for _, bad := range []string{"", "evt_", "pay_1", "evt_-1", "evt_x"} {
		if _, err := ParseEventID(bad); err == nil {
			t.Errorf("ParseEventID(%q) accepted", bad)
		}
	}
}
