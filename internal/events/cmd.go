package events

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"github.com/payrouter/payrouter/internal/cliflag"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/payrouter/payrouter"
	"github.com/payrouter/payrouter/internal/store"
)

// Env is what the commands need from a config file: its store and the
// merchants' webhook endpoints.
type Env struct {
	Store     DeliveryStore
	Endpoints map[string]Endpoint
}

// Deps are what the commands need from the wiring (cmd/payrouter).
type Deps struct {
	// Open opens the store configured in the config file at cfgPath; the
	// returned func closes it.
	Open func(ctx context.Context, cfgPath string) (*Env, func(), error)
	// Now is the clock (nil: time.Now).
	Now func() time.Time
}

func (d Deps) now() time.Time {
	if d.Now != nil {
		return d.Now()
	}
	return time.Now()
}

// Exit codes of the commands.
const (
	exitOK    = 0
	exitFail  = 1 // the store failed, or some events could not be redelivered
	exitUsage = 2
)

func newFlags(name string, stderr io.Writer, usage string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: payrouter %s\n", usage)
		fs.PrintDefaults()
	}
	return fs
}

// parseSeq accepts an event id (evt_0000000000000042) or its number.
func parseSeq(s string) (int64, error) {
	if n, err := strconv.ParseInt(s, 10, 64); err == nil && n >= 0 {
		return n, nil
	}
	n, err := payrouter.ParseEventID(s)
	if err != nil || !strings.HasPrefix(s, "evt_") {
		return 0, fmt.Errorf("%q is not an event id like evt_0000000000000042", s)
	}
	return n, nil
}

func (d Deps) open(ctx context.Context, cfgPath string, stderr io.Writer) (*Env, func(), bool) {
	if d.Open == nil {
		fmt.Fprintln(stderr, "payrouter: no store available")
		return nil, nil, false
	}
	env, closeFn, err := d.Open(ctx, cfgPath)
	if err != nil {
		fmt.Fprintf(stderr, "payrouter: %v\n", err)
		return nil, nil, false
	}
	return env, closeFn, true
}

// Tail is `payrouter events tail [--config F] [--after ID | -n N]
// [--merchant M] [--json] [--every D]`: it prints the last N events (10),
// or every event after ID, then follows the stream from the store like
// tail -f, one line per event, until ctx is done (exit 0). --json prints
// each event as one JSON object per line, with its merchant. A store error
// exits 1, a usage error 2.
func Tail(ctx context.Context, args []string, stdout, stderr io.Writer, deps Deps) int {
	fs := newFlags("events tail", stderr, "events tail [--config config.yaml] [--after evt_… | -n 10] [--merchant id] [--json]")
	cfgPath := fs.String("config", "config.yaml", "config file (its store is read)")
	afterFlag := fs.String("after", "", "print every event after this id (0: from the start) instead of the last -n")
	last := fs.Int("n", 10, "how many past events to print before following")
	merchant := fs.String("merchant", "", "only this merchant's events")
	asJSON := fs.Bool("json", false, "one JSON object per line")
	every := fs.Duration("every", time.Second, "how often to poll the store")
	pos, err := cliflag.Parse(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		return 0 // --help: the usage is printed
	}
	if err != nil {
		return exitUsage
	}
	if len(pos) > 0 || *last < 0 || *every <= 0 {
		fs.Usage()
		return exitUsage
	}
	var after int64 = -1
	if *afterFlag != "" {
		if after, err = parseSeq(*afterFlag); err != nil {
			fmt.Fprintf(stderr, "payrouter: --after: %v\n", err)
			return exitUsage
		}
	}
	env, closeFn, ok := deps.open(ctx, *cfgPath, stderr)
	if !ok {
		return exitFail
	}
	defer closeFn()
	st := env.Store

	show := func(e payrouter.Event) bool {
		if err := printEvent(stdout, e, *asJSON); err != nil {
			fmt.Fprintf(stderr, "payrouter: %v\n", err)
			return false
		}
		return true
	}
	const page = 1000
	if after < 0 {
		// The last N: walk to the end keeping a ring of N (the store lists
		// oldest first only). Costs one pass over the stream, once.
		ring := make([]payrouter.Event, 0, *last)
		after = 0
		for {
			evs, err := st.ListEvents(ctx, *merchant, after, page)
			if err != nil {
				return storeFailed(ctx, stderr, err)
			}
			for _, e := range evs {
				if *last > 0 {
					if len(ring) == *last {
						ring = ring[1:]
					}
					ring = append(ring, e)
				}
				after = e.Seq
			}
			if len(evs) < page {
				break
			}
		}
		for _, e := range ring {
			if !show(e) {
				return exitFail
			}
		}
	}
	t := time.NewTicker(*every)
	defer t.Stop()
	for {
		for {
			evs, err := st.ListEvents(ctx, *merchant, after, page)
			if err != nil {
				return storeFailed(ctx, stderr, err)
			}
			for _, e := range evs {
				if !show(e) {
					return exitFail
				}
				after = e.Seq
			}
			if len(evs) < page {
				break
			}
		}
		select {
		case <-ctx.Done():
			return exitOK
		case <-t.C:
		}
	}
}

func storeFailed(ctx context.Context, stderr io.Writer, err error) int {
	if ctx.Err() != nil {
		return exitOK // interrupted mid-query: the normal way to stop tail
	}
	fmt.Fprintf(stderr, "payrouter: %v\n", err)
	return exitFail
}

// tailEvent is an event as --json prints it: the merchant's event plus
// the merchant it belongs to (ops see every merchant).
type tailEvent struct {
	ID         string              `json:"id"`
	Type       payrouter.EventType `json:"type"`
	CreatedAt  time.Time           `json:"created_at"`
	PaymentID  string              `json:"payment_id"`
	MerchantID string              `json:"merchant"`
	Data       json.RawMessage     `json:"data"`
}

// summary is what one text line shows of the payment.
type summary struct {
	Status   string `json:"status"`
	Amount   int64  `json:"amount"`
	Currency string `json:"currency"`
	Failure  *struct {
		Code string `json:"code"`
	} `json:"failure"`
	Refund *struct {
		Amount int64  `json:"amount"`
		Status string `json:"status"`
	} `json:"refund"`
}

func printEvent(w io.Writer, e payrouter.Event, asJSON bool) error {
	if asJSON {
		b, err := json.Marshal(tailEvent{e.ID, e.Type, e.CreatedAt.UTC(), e.PaymentID, e.MerchantID, e.Data})
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "%s\n", b)
		return err
	}
	var s summary
	_ = json.Unmarshal(e.Data, &s) // a line without the summary is still useful
	line := fmt.Sprintf("%s  %s  %-23s  %s  merchant=%s  status=%s amount=%d %s",
		e.ID, e.CreatedAt.UTC().Format(time.RFC3339), e.Type, e.PaymentID, e.MerchantID, s.Status, s.Amount, s.Currency)
	if s.Failure != nil && s.Failure.Code != "" {
		line += " failure=" + s.Failure.Code
	}
	if s.Refund != nil {
		line += fmt.Sprintf(" refund=%d(%s)", s.Refund.Amount, s.Refund.Status)
	}
	_, err := fmt.Fprintln(w, line)
	return err
}

// RedeliverCmd is `payrouter events redeliver [--config F] [--merchant M]
// (--dead | evt_… …)`: it queues the given events (or every dead-lettered
// delivery, of one merchant with --merchant) for delivery again, with a
// fresh retry window; the running payrouter sends them on its next round.
// One line per event on stdout. Exit 1 when any could not be queued (an
// unknown event, a merchant without webhook_url), 2 on usage errors.
func RedeliverCmd(ctx context.Context, args []string, stdout, stderr io.Writer, deps Deps) int {
	fs := newFlags("events redeliver", stderr, "events redeliver [--config config.yaml] [--merchant id] (--dead | evt_… …)")
	cfgPath := fs.String("config", "config.yaml", "config file (its store and merchants)")
	merchant := fs.String("merchant", "", "only this merchant's events")
	dead := fs.Bool("dead", false, "redeliver every dead-lettered delivery")
	pos, err := cliflag.Parse(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		return 0 // --help: the usage is printed
	}
	if err != nil {
		return exitUsage
	}
	if (len(pos) == 0) == !*dead {
		fmt.Fprintln(stderr, "payrouter: give event ids or --dead (not both)")
		fs.Usage()
		return exitUsage
	}
	var seqs []int64
	for _, p := range pos {
		n, err := parseSeq(p)
		if err != nil {
			fmt.Fprintf(stderr, "payrouter: %v\n", err)
			return exitUsage
		}
		seqs = append(seqs, n)
	}
	env, closeFn, ok := deps.open(ctx, *cfgPath, stderr)
	if !ok {
		return exitFail
	}
	defer closeFn()
	if *dead {
		var after int64
		for {
			ds, err := env.Store.ListDeliveries(ctx, store.DeliveryFilter{MerchantID: *merchant, Status: store.DeliveryDead, After: after, Limit: 1000})
			if err != nil {
				fmt.Fprintf(stderr, "payrouter: %v\n", err)
				return exitFail
			}
			for _, d := range ds {
				seqs = append(seqs, d.Seq)
				after = d.Seq
			}
			if len(ds) < 1000 {
				break
			}
		}
		if len(seqs) == 0 {
			fmt.Fprintln(stdout, "no dead-lettered deliveries")
			return exitOK
		}
	}
	code := exitOK
	for _, seq := range seqs {
		id := payrouter.EventID(seq)
		prev, _ := env.Store.GetDelivery(ctx, *merchant, seq)
		d, err := Redeliver(ctx, env.Store, env.Endpoints, *merchant, seq, deps.now().UTC())
		if err != nil {
			var pe *payrouter.Error
			if errors.As(err, &pe) {
				fmt.Fprintf(stderr, "%s: %s\n", id, pe.Message)
			} else {
				fmt.Fprintf(stderr, "%s: %v\n", id, err)
			}
			code = exitFail
			continue
		}
		was := "never sent"
		if prev != nil {
			was = fmt.Sprintf("was %s after %d attempts", prev.Status, prev.Attempts)
			if prev.LastError != "" {
				was += ", last error: " + prev.LastError
			}
		}
		fmt.Fprintf(stdout, "%s: queued for redelivery to merchant %s (%s)\n", id, d.MerchantID, was)
	}
	return code
}
