package main

import (
	"context"
	"fmt"
	"os"
	"runtime/pprof"
	"time"

	"github.com/payrouter/payrouter/internal/bench"
	"github.com/payrouter/payrouter/internal/gctune"
)

// benchCmd: payrouter bench [--duration 20s | --count N] [--concurrency 32]
// [--mix card=80,qris=20] [--store sqlite|postgres --postgres-dsn DSN [--instances N]]
// [--durable=true|false] [--faults stripe=flaky:0.1] [--provider-latency 200ms] [--webhooks] [--json]
func benchCmd(ctx context.Context, args []string, stdout, stderr writer) int {
	fs := newFlags("bench", "bench [--duration 20s | --count N] [--concurrency 32 | --rate N --concurrency MAX] [--mix card=80,qris=20] [flags]", stderr)
	dur := fs.Duration("duration", 20*time.Second, "measured time of the whole run, split between router and direct (max 10m)")
	count := fs.Int("count", 0, "payments per side instead of --duration (max 1000000)")
	conc := fs.Int("concurrency", 32, "concurrent workers, the same on both sides (max 1024)")
	rate := fs.Float64("rate", 0, "open loop: payments per second offered to each side (Poisson arrivals, at most --concurrency in flight); 0: closed loop")
	mix := fs.String("mix", "card=80,qris=20", "method mix in percent: card (Stripe) and qris (Midtrans)")
	st := fs.String("store", "sqlite", "router store: sqlite (fresh temporary file) or postgres")
	dsn := fs.String("postgres-dsn", "", "PostgreSQL DSN for --store postgres (its tables are created if missing)")
	durable := fs.Bool("durable", true, "sqlite: synchronous=full (fsync every commit) or, false, off")
	faults := fs.String("faults", "", "simulator faults for the run, e.g. stripe=flaky:0.1,midtrans=slow:20")
	latency := fs.Duration("provider-latency", 0, "both simulators answer after this long (stripe=slow and midtrans=slow; --faults for a provider overrides)")
	instances := fs.Int("instances", 1, "router instances sharing the store (postgres only), the router side's load spread over them")
	simProc := fs.Bool("sim-process", false, "run the simulators in a `payrouter sim` process of their own, so memory is the router's")
	webhooks := fs.Bool("webhooks", false, "process the simulators' webhooks in the router during the router side")
	warmup := fs.Duration("warmup", time.Second, "warm-up per side before measuring")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile of the whole run to this file (go tool pprof)")
	pprofAddr := fs.String("pprof", "", "serve net/http/pprof on this loopback address during the run (e.g. 127.0.0.1:6060), for goroutine and block profiles mid-run")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "payrouter bench: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if *cpuprofile != "" {
		pf, err := os.Create(*cpuprofile)
		if err != nil {
			fmt.Fprintf(stderr, "payrouter bench: %v\n", err)
			return 1
		}
		defer pf.Close()
		if err := pprof.StartCPUProfile(pf); err != nil {
			fmt.Fprintf(stderr, "payrouter bench: %v\n", err)
			return 1
		}
		defer pprof.StopCPUProfile()
	}
	if *pprofAddr != "" {
		stop, err := bench.ServePprof(*pprofAddr)
		if err != nil {
			fmt.Fprintf(stderr, "payrouter bench: %v\n", err)
			return 2
		}
		defer stop()
	}
	m, err := bench.ParseMix(*mix)
	if err != nil {
		fmt.Fprintf(stderr, "payrouter bench: %v\n", err)
		return 2
	}
	f, err := bench.ParseFaults(*faults)
	if err != nil {
		fmt.Fprintf(stderr, "payrouter bench: %v\n", err)
		return 2
	}
	if err := bench.WithLatency(f, *latency); err != nil {
		fmt.Fprintf(stderr, "payrouter bench: %v\n", err)
		return 2
	}
	var simBin string
	if *simProc {
		if simBin, err = os.Executable(); err != nil {
			fmt.Fprintf(stderr, "payrouter bench: %v\n", err)
			return 1
		}
	}
	// The router runs in this process: its collector is set as serve
	// sets it by default (GOGC and GOMEMLIMIT in the environment win).
	gc := gctune.Apply(gctune.Settings{}, gctune.Env{})
	res, err := bench.Run(ctx, bench.Options{GC: gc.String(), Duration: *dur, Count: *count, Concurrency: *conc, Rate: *rate, Mix: m,
		Store: *st, PostgresDSN: *dsn, Durable: *durable, Faults: f, Webhooks: *webhooks, Instances: *instances, SimBinary: simBin, Warmup: *warmup, Progress: stderr})
	if err != nil {
		fmt.Fprintf(stderr, "payrouter bench: %v\n", err)
		return 1
	}
	if *asJSON {
		err = res.WriteJSON(stdout)
	} else {
		err = res.WriteText(stdout)
	}
	if err != nil {
		fmt.Fprintf(stderr, "payrouter bench: %v\n", err)
		return 1
	}
	return 0
}
