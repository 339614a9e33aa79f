package bench

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/payrouter/payrouter/internal/sim"
)

func TestParseMix(t *testing.T) {
	tests := []struct {
		in      string
		want    Mix
		wantErr bool
	}{
		{"card=80,qris=20", Mix{80, 20}, false},
		{"qris=100,card=0", Mix{0, 100}, false},
		{"card=80", Mix{}, true},
		{"card=50,qris=60", Mix{}, true},
		{"card=80,gopay=20", Mix{}, true},
		{"card=x,qris=20", Mix{}, true},
		{"card=50,card=50", Mix{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseMix(tt.in)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("ParseMix(%q) = %v, %v; want %v, error %v", tt.in, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestParseFaults(t *testing.T) {
	tests := []struct {
		in      string
		wantErr bool
	}{
		{"", false},
		{"stripe=flaky:0.25", false},
		{"midtrans=slow:20,stripe=error:503", false},
		{"stripe=flaky:2", true},
		{"paypal=down", true},
		{"stripe=explode", true},
		{"stripe=error:200", true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			_, err := ParseFaults(tt.in)
			if (err != nil) != tt.wantErr {
				t.Errorf("ParseFaults(%q) error = %v, want error %v", tt.in, err, tt.wantErr)
			}
		})
	}
	f, _ := ParseFaults("stripe=flaky:0.25,midtrans=slow:20")
	if f["stripe"].ErrorRate != 0.25 || f["midtrans"].LatencyMS != 20 {
		t.Errorf("ParseFaults = %+v, want stripe rate 0.25 and midtrans 20 ms", f)
	}
}

func TestOptionBounds(t *testing.T) {
	base := Options{Duration: time.Second, Concurrency: 4, Mix: Mix{80, 20}, Store: "sqlite"}
	tests := []struct {
		name string
		mut  func(o *Options)
	}{
		{"no duration", func(o *Options) { o.Duration = 0 }},
		{"too long", func(o *Options) { o.Duration = MaxDuration + time.Second }},
		{"too many", func(o *Options) { o.Count = MaxCount + 1 }},
		{"no workers", func(o *Options) { o.Concurrency = 0 }},
		{"too many workers", func(o *Options) { o.Concurrency = MaxConcurrency + 1 }},
		{"postgres without dsn", func(o *Options) { o.Store = "postgres" }},
		{"unknown store", func(o *Options) { o.Store = "mysql" }},
		{"negative rate", func(o *Options) { o.Rate = -1 }},
		{"rate too high", func(o *Options) { o.Rate = MaxRate + 1 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := base
			tt.mut(&o)
			if _, err := Run(context.Background(), o); err == nil {
				t.Errorf("Run(%+v) = nil error, want a bound refused", o)
			}
		})
	}
	if err := loopbackOnly("http://10.0.0.1:80"); err == nil {
		t.Error("loopbackOnly(10.0.0.1) = nil, want refused")
	}
	if err := loopbackOnly("http://127.0.0.1:8080"); err != nil {
		t.Errorf("loopbackOnly(127.0.0.1) = %v, want nil", err)
	}
}

// TestRun runs a small count through both sides: every payment succeeds
// and the report has both rows.
func TestRun(t *testing.T) {
	res, err := Run(context.Background(), Options{Count: 80, Concurrency: 4, Mix: Mix{80, 20}, Store: "sqlite", Durable: true})
	if err != nil {
		t.Fatal(err)
	}
	for name, s := range map[string]Side{"router": res.Router, "direct": res.Direct} {
		if s.Payments != 80 || s.Errors != 0 {
			t.Errorf("%s: %d payments, %d errors (%v); want 80 and 0", name, s.Payments, s.Errors, s.ErrorKinds)
		}
		if s.P50MS <= 0 || s.P50MS > s.P99MS || s.P99MS > s.MaxMS {
			t.Errorf("%s: percentiles p50 %v p99 %v max %v not ordered", name, s.P50MS, s.P99MS, s.MaxMS)
		}
	}
	var buf bytes.Buffer
	if err := res.WriteText(&buf); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"direct (SDK)", "router (API)", "overhead", "peak RSS"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, buf.String())
		}
	}
}

// TestRunOpenLoop: with a rate, the arrivals set the pace, not the
// answers: 40 payments per side at 100/s take about 0.4 s though 16 may be
// in flight and the simulators answer in 20 ms (a closed loop of 16 workers
// would be done in about 0.05 s).
func TestRunOpenLoop(t *testing.T) {
	f, _ := ParseFaults("stripe=slow:20,midtrans=slow:20")
	res, err := Run(context.Background(), Options{Count: 40, Rate: 100, Concurrency: 16, Mix: Mix{80, 20}, Store: "sqlite", Faults: f})
	if err != nil {
		t.Fatal(err)
	}
	for name, s := range map[string]Side{"router": res.Router, "direct": res.Direct} {
		if s.Payments != 40 || s.Errors != 0 {
			t.Errorf("%s: %d payments, %d errors (%v); want 40 and 0", name, s.Payments, s.Errors, s.ErrorKinds)
		}
		if s.Seconds < 0.25 || s.Seconds > 2 || s.P50MS < 20 {
			t.Errorf("%s: %.2f s, p50 %.1f ms; want about 0.4 s (paced by the arrivals) and at least the 20 ms latency", name, s.Seconds, s.P50MS)
		}
	}
	var buf bytes.Buffer
	if err := res.WriteText(&buf); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "open loop, 100 payments/s") {
		t.Errorf("report does not say the load was open:\n%s", buf.String())
	}
}

// TestRunOpenLoopBounded: a rate far above what the slots can serve does
// not run past the duration (arrivals still waiting at the deadline are not
// sent).
func TestRunOpenLoopBounded(t *testing.T) {
	f, _ := ParseFaults("stripe=slow:50,midtrans=slow:50")
	start := time.Now()
	res, err := Run(context.Background(), Options{Duration: 800 * time.Millisecond, Rate: MaxRate, Concurrency: 2, Mix: Mix{80, 20}, Store: "sqlite", Faults: f})
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("run took %v for a 0.8 s duration", d)
	}
	if res.Router.Seconds > 1.5 || res.Direct.Seconds > 1.5 {
		t.Errorf("sides ran %.2f s and %.2f s, want about 0.4 s each", res.Router.Seconds, res.Direct.Seconds)
	}
}

// TestRunFaults: a flaky Stripe simulator shows up as errors, counted, on
// both sides; the run still completes.
func TestRunFaults(t *testing.T) {
	f, _ := ParseFaults("stripe=flaky:0.5")
	res, err := Run(context.Background(), Options{Count: 40, Concurrency: 2, Mix: Mix{100, 0}, Store: "sqlite", Faults: f})
	if err != nil {
		t.Fatal(err)
	}
	if res.Direct.Errors == 0 {
		t.Errorf("direct side: 0 errors with stripe flaky at 0.5, want some")
	}
	if res.Direct.Payments != 40 || res.Router.Payments != 40 {
		t.Errorf("payments direct %d router %d, want 40 each", res.Direct.Payments, res.Router.Payments)
	}
}

func TestWithLatency(t *testing.T) {
	f, err := ParseFaults("stripe=flaky:0.5")
	if err != nil {
		t.Fatal(err)
	}
	if err := WithLatency(f, 200*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if f["stripe"].Mode != "flaky" || f["midtrans"].Mode != "slow" || f["midtrans"].LatencyMS != 200 {
		t.Errorf("faults = %+v; want stripe kept flaky, midtrans slow 200 ms", f)
	}
	if err := WithLatency(map[string]sim.Faults{}, time.Microsecond); err == nil {
		t.Error("latency 1µs accepted")
	}
}
