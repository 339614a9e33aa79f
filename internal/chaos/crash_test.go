// Package chaos holds payrouter's crash test: the real binary, killed with
// SIGKILL in the middle of concurrent payments and restarted on the same
// store, must bring every payment to its true state — the state the
// providers' ledgers show — with none lost and none charged twice.
//
// The simulators run in a separate `payrouter sim` process, so their
// ledgers (the truth) survive the router's death.
package chaos

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/payrouter/payrouter"
	"github.com/payrouter/payrouter/internal/app/apptest"
	"github.com/payrouter/payrouter/internal/sim"
)

const apiKey = "sk_sandbox_demo"

var remoteSims = []string{"stripe", "xendit", "midtrans"}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// buildBinary builds cmd/payrouter into dir.
func buildBinary(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "payrouter")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/payrouter")
	cmd.Dir = filepath.Dir(apptest.RepoFile("go.mod"))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// writeConfig copies config.yaml with the store in dir, the listen
// address, the remote simulators and a quick resolver.
func writeConfig(t *testing.T, dir string, routerPort, simPort int) string {
	t.Helper()
	data, err := os.ReadFile(apptest.RepoFile("config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	s := string(data)
	// The store: sqlite in dir, whatever the shipped default.
	s = regexp.MustCompile(`(?m)^  driver: .*$`).ReplaceAllLiteralString(s, "  driver: sqlite")
	s = regexp.MustCompile(`(?m)^  dsn: .*$`).ReplaceAllLiteralString(s, "  dsn: "+filepath.Join(dir, "payrouter.db"))
	for _, r := range []struct{ old, new string }{
		{`listen: ":8080"`, fmt.Sprintf(`listen: "127.0.0.1:%d"`, routerPort)},
		{"sandbox: true", fmt.Sprintf("sandbox: true\nsim_url: \"http://127.0.0.1:%d\"", simPort)},
		{"  deadline: 30s", "  deadline: 3s\n  resolve_every: 100ms\n  resolve_backoff: 100ms"},
	} {
		if !strings.Contains(s, r.old) {
			t.Fatalf("config.yaml no longer contains %q: update the crash test", r.old)
		}
		s = strings.Replace(s, r.old, r.new, 1)
	}
	s += "\nlog:\n  level: warn\n"
	path := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// start runs the binary with args, its output in dir/name.log.
func start(t *testing.T, dir, name, bin string, args ...string) *exec.Cmd {
	t.Helper()
	logf, err := os.OpenFile(filepath.Join(dir, name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), "PAYROUTER_REDIS_URL=")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
		logf.Close()
	})
	return cmd
}

func waitUp(t *testing.T, url string) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
	}
	t.Fatalf("%s did not come up", url)
}

var client = &http.Client{Timeout: 15 * time.Second}

func call(method, url string, body any) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+apiKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

func mustCall(t *testing.T, method, url string, body any) []byte {
	t.Helper()
	st, b, err := call(method, url, body)
	if err != nil || st >= 300 {
		t.Fatalf("%s %s: %d %v %s", method, url, st, err, b)
	}
	return b
}

// listPayments reads every payment of the demo merchant through the API.
func listPayments(t *testing.T, base string) map[string]*payrouter.Payment {
	t.Helper()
	out := map[string]*payrouter.Payment{}
	after := ""
	for {
		url := base + "/v1/payments?limit=50" // 100 never reports has_more (store clamps limit+1 to 100)
		if after != "" {
			url += "&starting_after=" + after
		}
		var page struct {
			Data    []*payrouter.Payment `json:"data"`
			HasMore bool                 `json:"has_more"`
		}
		if err := json.Unmarshal(mustCall(t, "GET", url, nil), &page); err != nil {
			t.Fatal(err)
		}
		for _, p := range page.Data {
			out[p.ID] = p
		}
		if !page.HasMore || len(page.Data) == 0 {
			return out
		}
		after = page.Data[len(page.Data)-1].ID
	}
}

func ledgerOf(t *testing.T, simBase, provider string) []sim.LedgerEntry {
	t.Helper()
	var l []sim.LedgerEntry
	if err := json.Unmarshal(mustCall(t, "GET", simBase+"/sim/"+provider+"/_ledger", nil), &l); err != nil {
		t.Fatal(err)
	}
	return l
}

func charged(status string) bool {
	switch strings.ToLower(status) {
	case "succeeded", "capture", "settlement", "authorize", "requires_capture", "awaiting_capture",
		"refund", "partial_refund", "refunded", "partially_refunded":
		return true
	}
	return false
}

var attemptSuffix = regexp.MustCompile(`_a[0-9]+$`)

// settled: terminal, every attempt's outcome known.
func settled(p *payrouter.Payment) bool {
	if !p.Status.Terminal() {
		return false
	}
	for _, a := range p.Attempts {
		switch a.Status {
		case payrouter.AttemptPending, payrouter.AttemptAmbiguous:
			return false
		case payrouter.AttemptRequiresAction, payrouter.AttemptProcessing:
			if a.Provider != p.Provider || a.ProviderPaymentID != p.ProviderPaymentID {
				return false
			}
		}
	}
	return true
}

func TestCrashMidPaymentsLosesNothingChargesOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the crash test builds and runs the binary")
	}
	dir := t.TempDir()
	bin := buildBinary(t, dir)
	routerPort, simPort := freePort(t), freePort(t)
	cfg := writeConfig(t, dir, routerPort, simPort)
	base := fmt.Sprintf("http://127.0.0.1:%d", routerPort)
	simBase := fmt.Sprintf("http://127.0.0.1:%d", simPort)

	start(t, dir, "sim", bin, "sim", "--config", cfg, "--listen", fmt.Sprintf("127.0.0.1:%d", simPort), "--router", base)
	waitUp(t, simBase+"/sim/stripe/_ledger")
	router := start(t, dir, "router", bin, "serve", "--config", cfg)
	waitUp(t, base+"/healthz")
	// Some failover while it dies: stripe refuses or drops a fifth of calls.
	mustCall(t, "POST", simBase+"/sim/stripe/_faults", sim.Faults{Mode: "flaky", ErrorRate: 0.2})

	const n = 200
	type sent struct {
		status int
		p      payrouter.Payment
	}
	results := make([]sent, n)
	var answered atomic.Int64
	var wg sync.WaitGroup
	killed := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			method := "card"
			if i%5 == 4 {
				method = "qris"
			}
			body := map[string]any{"amount": 150000 + i, "currency": "IDR", "method": method, "reference": fmt.Sprintf("crash-%d", i),
				"customer": map[string]string{"name": "Budi", "email": "budi@example.com", "phone": "+6281234567890"}}
			if method == "card" {
				body["payment_method_tokens"] = map[string]string{"stripe": "tok_sandbox_success", "xendit": "tok_sandbox_success", "midtrans": "tok_sandbox_success"}
			}
			st, b, err := call("POST", base+"/v1/payments", body)
			if err != nil {
				return // the router died under it: no answer, nothing promised
			}
			results[i].status = st
			if st == 201 {
				_ = json.Unmarshal(b, &results[i].p)
			}
			answered.Add(1)
		}()
	}
	// Kill when some answers are out and many calls are in flight.
	go func() {
		defer close(killed)
		for deadline := time.Now().Add(20 * time.Second); answered.Load() < n/4 && time.Now().Before(deadline); {
			time.Sleep(time.Millisecond)
		}
		_ = router.Process.Kill() // SIGKILL
		_ = router.Wait()
	}()
	<-killed
	wg.Wait()
	acked := map[string]bool{}
	for i, r := range results {
		switch r.status {
		case 0: // no answer
		case 201:
			acked[r.p.ID] = true
		default:
			t.Errorf("payment %d: status %d before the kill", i, r.status)
		}
	}
	t.Logf("killed after %d answers (%d accepted) of %d", answered.Load(), len(acked), n)

	router = start(t, dir, "router", bin, "serve", "--config", cfg)
	waitUp(t, base+"/healthz")
	mustCall(t, "POST", simBase+"/sim/stripe/_faults", sim.Faults{Mode: "none"})
	left, pending := 0, 0
	for _, p := range listPayments(t, base) {
		if !settled(p) {
			left++
		}
		for _, a := range p.Attempts {
			if a.Status == payrouter.AttemptPending {
				pending++
			}
		}
	}
	t.Logf("after the restart: %d payments unsettled, %d attempts recorded but never completed", left, pending)

	// Wait until every stored payment is settled; the customer pays what
	// waits for them (on either side of the crash).
	paid := map[string]bool{}
	var ps map[string]*payrouter.Payment
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		ps = listPayments(t, base)
		open := 0
		for _, p := range ps {
			if p.Status == payrouter.StatusRequiresAction && p.ProviderPaymentID != "" && !paid[p.ID] {
				paid[p.ID] = true
				mustCall(t, "POST", simBase+"/sim/"+p.Provider+"/_pay/"+p.ProviderPaymentID, map[string]string{"outcome": "success"})
			}
			if !settled(p) {
				open++
			}
		}
		if open == 0 {
			break
		}
		if time.Now().After(deadline) {
			for _, p := range ps {
				if !settled(p) {
					t.Errorf("not settled: %s %s via %s attempts %+v", p.ID, p.Status, p.Provider, p.Attempts)
				}
			}
			t.Fatalf("%d of %d payments not settled a minute after the restart", open, len(ps))
		}
	}

	// None lost: every accepted payment is stored.
	for id := range acked {
		if ps[id] == nil {
			t.Errorf("payment %s was accepted (201) and is gone after the crash", id)
		}
	}
	// Every stored payment is in its true state per the ledgers, charged
	// at most once; every charge belongs to a stored payment.
	byPayment := map[string][]string{}
	for _, prov := range remoteSims {
		for _, e := range ledgerOf(t, simBase, prov) {
			if charged(e.Status) {
				id := attemptSuffix.ReplaceAllString(e.Reference, "")
				byPayment[id] = append(byPayment[id], prov)
			}
		}
	}
	counts := map[payrouter.Status]int{}
	for id, p := range ps {
		counts[p.Status]++
		got := byPayment[id]
		switch {
		case len(got) > 1:
			t.Errorf("payment %s charged %d times: %v", id, len(got), got)
		case p.Status == payrouter.StatusSucceeded && (len(got) != 1 || got[0] != p.Provider):
			t.Errorf("payment %s succeeded via %s, ledgers show charges at %v", id, p.Provider, got)
		case p.Status.Failed() && len(got) != 0:
			t.Errorf("payment %s is %s, ledgers show charges at %v", id, p.Status, got)
		}
	}
	for id, provs := range byPayment {
		if ps[id] == nil {
			t.Errorf("charge at %v for %s, a payment the router does not have", provs, id)
		}
	}
	t.Logf("%d payments stored (%d accepted before the kill): %v", len(ps), len(acked), counts)
	if len(ps) < len(acked) || len(ps) == 0 {
		t.Errorf("%d payments stored, want at least the %d accepted", len(ps), len(acked))
	}
}
