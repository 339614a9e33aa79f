package events_test

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/payrouter/payrouter"
	"github.com/payrouter/payrouter/internal/events"
	"github.com/payrouter/payrouter/internal/store"
)

// syncBuffer is a bytes.Buffer safe to read while the command writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func depsFor(st store.Store, eps map[string]events.Endpoint) events.Deps {
	return events.Deps{Open: func(ctx context.Context, cfgPath string) (*events.Env, func(), error) {
		return &events.Env{Store: st, Endpoints: eps}, func() {}, nil
	}}
}

func lines(s string) []string {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

func TestTailFollows(t *testing.T) {
	st := openStore(t)
	pay(t, st, "m1", 1) // events 1, 2
	pay(t, st, "m2", 2) // events 3, 4
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errOut syncBuffer
	done := make(chan int)
	go func() {
		done <- events.Tail(ctx, []string{"--json", "-n", "3", "--every", "10ms", "--config", "x.yaml"}, &out, &errOut, depsFor(st, nil))
	}()
	waitLines := func(n int) []string {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for len(lines(out.String())) < n {
			if time.Now().After(deadline) {
				t.Fatalf("tail printed %q (stderr %q), want %d lines", out.String(), errOut.String(), n)
			}
			time.Sleep(5 * time.Millisecond)
		}
		return lines(out.String())
	}
	waitLines(3)
	pay(t, st, "m1", 3) // events 5, 6 arrive while tailing
	got := waitLines(5)
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("tail exit %d after ctx done, want 0 (stderr %q)", code, errOut.String())
	}
	var ids []string
	for _, l := range got {
		var e struct {
			ID, Type, Merchant string
			PaymentID          string `json:"payment_id"`
			Data               json.RawMessage
		}
		if err := json.Unmarshal([]byte(l), &e); err != nil || e.Merchant == "" || len(e.Data) == 0 {
			t.Fatalf("line %q is not an event with merchant and data: %v", l, err)
		}
		ids = append(ids, e.ID)
	}
	want := []string{payrouter.EventID(2), payrouter.EventID(3), payrouter.EventID(4), payrouter.EventID(5), payrouter.EventID(6)}
	if strings.Join(ids, ",") != strings.Join(want, ",") {
		t.Errorf("tail printed %v, want %v (the last 3, then the new ones)", ids, want)
	}
}

func TestTailAfterAndMerchant(t *testing.T) {
	st := openStore(t)
	pay(t, st, "m1", 1)
	pay(t, st, "m2", 2)
	pay(t, st, "m1", 3)
	tests := []struct {
		name string
		args []string
		want []string // event id and type of each line
	}{
		{"from the start", []string{"--after", "0"}, []string{"evt_0000000000000001  ", "evt_0000000000000006  "}},
		{"after an id, one merchant", []string{"--after", "evt_0000000000000002", "--merchant", "m1"},
			[]string{"evt_0000000000000005  ", "evt_0000000000000006  "}},
		{"last one of m2", []string{"-n", "1", "--merchant", "m2"}, []string{"evt_0000000000000004  "}},
		{"none", []string{"-n", "0"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			var out, errOut syncBuffer
			if code := events.Tail(ctx, append(tt.args, "--every", "50ms"), &out, &errOut, depsFor(st, nil)); code != 0 {
				t.Fatalf("exit %d, stderr %q", code, errOut.String())
			}
			got := lines(out.String())
			if len(tt.want) == 0 && len(got) != 0 {
				t.Fatalf("printed %q, want nothing", got)
			}
			if len(tt.want) > 0 && (len(got) == 0 || !strings.HasPrefix(got[0], tt.want[0]) || !strings.HasPrefix(got[len(got)-1], tt.want[len(tt.want)-1])) {
				t.Fatalf("printed %q, want first/last %q", got, tt.want)
			}
			for _, l := range got {
				if !strings.Contains(l, "status=") || !strings.Contains(l, "merchant=") {
					t.Errorf("line %q lacks the payment summary", l)
				}
			}
		})
	}
}

func TestCommandUsageErrors(t *testing.T) {
	st := openStore(t)
	tests := []struct {
		name string
		run  func(args []string, out, errOut *syncBuffer) int
		args []string
	}{
		{"tail positional", tail(st), []string{"extra"}},
		{"tail bad after", tail(st), []string{"--after", "evt_x"}},
		{"tail bad flag", tail(st), []string{"--nope"}},
		{"redeliver nothing", redeliver(st, nil), nil},
		{"redeliver ids and dead", redeliver(st, nil), []string{"--dead", "evt_0000000000000001"}},
		{"redeliver bad id", redeliver(st, nil), []string{"pay_123"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut syncBuffer
			if code := tt.run(tt.args, &out, &errOut); code != 2 {
				t.Errorf("exit %d, want 2 (stderr %q)", code, errOut.String())
			}
			if errOut.String() == "" {
				t.Error("no message on stderr")
			}
		})
	}
}

func tail(st store.Store) func([]string, *syncBuffer, *syncBuffer) int {
	return func(args []string, out, errOut *syncBuffer) int {
		return events.Tail(context.Background(), args, out, errOut, depsFor(st, nil))
	}
}

func redeliver(st store.Store, eps map[string]events.Endpoint) func([]string, *syncBuffer, *syncBuffer) int {
	return func(args []string, out, errOut *syncBuffer) int {
		return events.RedeliverCmd(context.Background(), args, out, errOut, depsFor(st, eps))
	}
}

func TestRedeliverCommand(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	pay(t, st, "m1", 1) // events 1, 2
	pay(t, st, "m2", 2) // events 3, 4: m2 has no webhook_url
	eps := map[string]events.Endpoint{"m1": {URL: "http://127.0.0.1:1/hook", Secret: "s"}}
	// Event 1 dead-lettered.
	if err := st.EnqueueDeliveries(ctx, events.WebhookCursor, 4, []store.Delivery{{Seq: 1, MerchantID: "m1"}, {Seq: 2, MerchantID: "m1"}}); err != nil {
		t.Fatal(err)
	}
	cl, _ := st.ClaimDeliveries(ctx, time.Now().Add(time.Minute), time.Minute, 1)
	cl[0].Status, cl[0].Attempts, cl[0].LastError = store.DeliveryDead, 31, "HTTP 500"
	if ok, err := st.FinishDelivery(ctx, &cl[0]); !ok || err != nil {
		t.Fatal(ok, err)
	}

	var out, errOut syncBuffer
	if code := redeliver(st, eps)([]string{"--dead"}, &out, &errOut); code != 0 {
		t.Fatalf("--dead: exit %d, stderr %q", code, errOut.String())
	}
	if got := out.String(); !strings.Contains(got, "evt_0000000000000001: queued") || !strings.Contains(got, "was dead after 31 attempts, last error: HTTP 500") {
		t.Errorf("--dead printed %q", got)
	}
	if d, _ := st.GetDelivery(ctx, "", 1); d.Status != store.DeliveryPending {
		t.Errorf("after --dead, delivery 1 is %s, want pending", d.Status)
	}
	out, errOut = syncBuffer{}, syncBuffer{}
	if code := redeliver(st, eps)([]string{"--dead"}, &out, &errOut); code != 0 || !strings.Contains(out.String(), "no dead-lettered") {
		t.Errorf("--dead with none: exit %d, %q", code, out.String())
	}

	out, errOut = syncBuffer{}, syncBuffer{}
	code := redeliver(st, eps)([]string{"evt_0000000000000002", "3", "evt_0000000000000099"}, &out, &errOut)
	if code != 1 {
		t.Errorf("mixed ids: exit %d, want 1", code)
	}
	if !strings.Contains(out.String(), "evt_0000000000000002: queued") {
		t.Errorf("stdout %q lacks event 2", out.String())
	}
	if e := errOut.String(); !strings.Contains(e, "evt_0000000000000003: the merchant has no webhook_url") ||
		!strings.Contains(e, "evt_0000000000000099: no such event") {
		t.Errorf("stderr %q lacks the two refusals", e)
	}
}
