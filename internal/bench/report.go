package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
)

// WriteText prints the side-by-side table.
func (r *Result) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "payrouter bench  %s\n", r.Date)
	fmt.Fprintf(&b, "machine: %d CPUs (GOMAXPROCS %d), %s, %s\n", r.CPUs, r.GOMAXPROCS, r.CPUModel, r.GoVersion)
	fmt.Fprintf(&b, "store: %s, durable=%v (%s)\n", r.Store, r.Durable, r.StoreWrites)
	if r.GC != "" {
		fmt.Fprintf(&b, "gc: %s\n", r.GC)
	}
	if r.Rate > 0 {
		fmt.Fprintf(&b, "load: open loop, %g payments/s offered per side (Poisson arrivals, latency from arrival), at most %d in flight, mix %s, webhooks processed=%v",
			r.Rate, r.Concurrency, r.Mix, r.Webhooks)
	} else {
		fmt.Fprintf(&b, "load: concurrency %d, mix %s, webhooks processed=%v", r.Concurrency, r.Mix, r.Webhooks)
	}
	if r.Instances > 1 {
		fmt.Fprintf(&b, ", %d router instances on one store", r.Instances)
	}
	if r.Faults != "" {
		fmt.Fprintf(&b, ", faults %s", r.Faults)
	}
	b.WriteString("\n")
	b.WriteString("router: POST /v1/payments with Idempotency-Key → router → adapter → simulator\n")
	where := "same in-process HTTP server"
	if r.SimProcess {
		where = "simulators in their own process"
	}
	fmt.Fprintf(&b, "direct: stripe-go / midtrans-go → simulator (%s, same concurrency)\n\n", where)
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "\tpayments\terrors\tpayments/s\tp50 ms\tp95 ms\tp99 ms\tmax ms\tCPU µs/payment\t")
	row := func(name string, s Side, counts bool) {
		if counts {
			fmt.Fprintf(tw, "%s\t%d\t%d\t%.0f\t%.3f\t%.3f\t%.3f\t%.3f\t%.0f\t\n", name, s.Payments, s.Errors, s.PerSecond, s.P50MS, s.P95MS, s.P99MS, s.MaxMS, s.CPUMicros)
			return
		}
		fmt.Fprintf(tw, "%s\t\t\t%+.0f\t%+.3f\t%+.3f\t%+.3f\t%+.3f\t%+.0f\t\n", name, s.PerSecond, s.P50MS, s.P95MS, s.P99MS, s.MaxMS, s.CPUMicros)
	}
	row("direct (SDK)", r.Direct, true)
	row("router (API)", r.Router, true)
	row("overhead", r.Overhead, false)
	tw.Flush()
	for _, side := range []struct {
		name string
		s    Side
	}{{"direct", r.Direct}, {"router", r.Router}} {
		if len(side.s.ErrorKinds) == 0 {
			continue
		}
		var kinds []string
		for k, v := range side.s.ErrorKinds {
			kinds = append(kinds, fmt.Sprintf("%s ×%d", k, v))
		}
		slices.Sort(kinds)
		fmt.Fprintf(&b, "%s errors: %s\n", side.name, strings.Join(kinds, ", "))
	}
	if r.SimProcess {
		fmt.Fprintf(&b, "\nmemory (this process: router, store and load generator; the simulators ran in a process of their own):\n")
	} else {
		fmt.Fprintf(&b, "\nmemory (one process: router, store, simulators and load generator together):\n")
	}
	fmt.Fprintf(&b, "  peak RSS (VmHWM) %.1f MB; highest RSS sampled during the router side %.1f MB; RSS at end %.1f MB\n",
		r.PeakRSSMB, r.RouterRSSMB, r.EndRSSMB)
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteJSON prints the result as indented JSON.
func (r *Result) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}
