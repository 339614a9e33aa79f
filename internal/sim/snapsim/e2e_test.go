package snapsim_test

import (
	"bytes"
	"context"
	"crypto/rsa"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/payrouter/payrouter"
	"github.com/payrouter/payrouter/internal/sim"
	"github.com/payrouter/payrouter/internal/sim/simtest"
	"github.com/payrouter/payrouter/internal/sim/snapsim"
	"github.com/payrouter/payrouter/internal/snapbi"
	"github.com/payrouter/payrouter/providers"
	"github.com/payrouter/payrouter/providers/dana"
	"github.com/payrouter/payrouter/providers/gopay"
	"github.com/payrouter/payrouter/providers/ovo"
)

// adapter is what the three wallet adapters share.
type adapter interface {
	providers.Provider
	providers.StatusChecker
	providers.WebhookParser
}

type walletCase struct {
	name    string
	method  payrouter.Method
	newSim  func(snapsim.Options) *snapsim.Backend
	newProv func(c adapterConfig) (adapter, error)
	cancel  bool // has a cancel API
	// snapStatuses: the wallet reports SNAP's 04 (refunded) and 06
	// (failed); DANA documents neither (a refunded payment stays 00, a
	// failed one is closed: 05).
	snapStatuses bool
}

// adapterConfig is the common subset of the wallet Configs.
type adapterConfig struct {
	base, clientID, secret, merchant string
	priv                             *rsa.PrivateKey
	walletPub                        *rsa.PublicKey
}

var wallets = []walletCase{
	{"dana", payrouter.MethodDANA, snapsim.NewDANA, func(c adapterConfig) (adapter, error) {
		return dana.New(dana.Config{ClientID: c.clientID, PrivateKey: c.priv, ProviderPublicKey: c.walletPub, MerchantID: c.merchant, BaseURL: c.base, Timeout: 5 * time.Second})
	}, true, false},
	{"ovo", payrouter.MethodOVO, snapsim.NewOVO, func(c adapterConfig) (adapter, error) {
		return ovo.New(ovo.Config{ClientID: c.clientID, PrivateKey: c.priv, ProviderPublicKey: c.walletPub, MerchantID: c.merchant, BaseURL: c.base, Timeout: 5 * time.Second})
	}, false, true},
	{"gopay", payrouter.MethodGoPay, snapsim.NewGoPay, func(c adapterConfig) (adapter, error) {
		return gopay.New(gopay.Config{ClientID: c.clientID, ClientSecret: c.secret, PrivateKey: c.priv, ProviderPublicKey: c.walletPub, MerchantID: c.merchant, BaseURL: c.base, Timeout: 5 * time.Second})
	}, true, true},
}

type captured struct {
	header http.Header
	body   []byte
	n      *providers.Notification
	err    error
}

type env struct {
	t        *testing.T
	w        walletCase
	prov     adapter
	sim      *sim.Sim
	base     string // .../sim/<name>
	partner  *rsa.PrivateKey
	wallet   *rsa.PrivateKey
	cfg      adapterConfig
	mu       sync.Mutex
	hooks    []captured
	hookSrv  *httptest.Server
	notifier *sim.Notifier
}

func newEnv(t *testing.T, w walletCase) *env {
	t.Helper()
	partner, wallet, err := snapbi.GenerateSandboxKeys()
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, w: w, partner: partner, wallet: wallet}
	// The router's webhook endpoint, reduced to ParseWebhook: 401 for
	// anything that fails verification, like the real HTTP layer.
	e.hookSrv = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		n, err := e.prov.ParseWebhook(r.Header, body, time.Now())
		e.mu.Lock()
		e.hooks = append(e.hooks, captured{r.Header.Clone(), body, n, err})
		e.mu.Unlock()
		if err != nil {
			rw.WriteHeader(http.StatusUnauthorized)
			return
		}
		rw.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(e.hookSrv.Close)
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	e.base = srv.URL + "/sim/" + w.name
	e.notifier = &sim.Notifier{URL: e.hookSrv.URL + "/webhooks/" + w.name}
	backend := w.newSim(snapsim.Options{
		ClientID: "partner-" + w.name, ClientSecret: "secret-" + w.name,
		PartnerPublicKey: &partner.PublicKey, WalletPrivateKey: wallet,
		Notifier: e.notifier, PublicURL: e.base, MerchantID: "216620000000" + w.name,
	})
	e.sim = sim.New(w.name, backend)
	e.sim.Mount(mux, "/sim/"+w.name)
	e.cfg = adapterConfig{base: e.base, clientID: "partner-" + w.name, secret: "secret-" + w.name, merchant: "216620000000" + w.name,
		priv: partner, walletPub: &wallet.PublicKey}
	if e.prov, err = w.newProv(e.cfg); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *env) authReq(id string, amount int64) *providers.AuthorizeRequest {
	return &providers.AuthorizeRequest{
		PaymentID: id, Attempt: 1, IdempotencyKey: payrouter.AttemptKey(id, 1),
		Amount: amount, Currency: "IDR", Method: e.w.method, Capture: payrouter.CaptureAutomatic,
		Customer: payrouter.Customer{Phone: "+62 812-3456-7890"}, ReturnURL: "https://shop.example/return",
		Description: "test order",
	}
}

func (e *env) post(path string, v any) *http.Response {
	e.t.Helper()
	b, _ := json.Marshal(v)
	resp, err := http.Post(e.base+path, "application/json", bytes.NewReader(b))
	if err != nil {
		e.t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

func (e *env) pay(id string, outcome sim.Outcome) {
	e.t.Helper()
	if resp := e.post("/_pay/"+id, map[string]string{"outcome": string(outcome)}); resp.StatusCode != 200 {
		e.t.Fatalf("_pay %s: HTTP %d", outcome, resp.StatusCode)
	}
}

func (e *env) faults(mode string) {
	e.t.Helper()
	if resp := e.post("/_faults", map[string]string{"mode": mode}); resp.StatusCode != 200 {
		e.t.Fatalf("_faults %s: HTTP %d", mode, resp.StatusCode)
	}
}

func (e *env) lastHook() captured {
	e.t.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.hooks) == 0 {
		e.t.Fatal("no notification arrived")
	}
	return e.hooks[len(e.hooks)-1]
}

func classOf(t *testing.T, err error) *providers.Error {
	t.Helper()
	return simtest.ProviderError(t, err)
}

func TestLifecycle(t *testing.T) {
	outcomes := []struct {
		outcome    sim.Outcome
		want       payrouter.Status
		wantLedger string
	}{
		{sim.OutcomeSuccess, payrouter.StatusSucceeded, "succeeded"},
		{sim.OutcomeFailure, payrouter.StatusFailed, "failed"},
		{sim.OutcomeExpire, payrouter.StatusExpired, "expired"},
	}
	for _, w := range wallets {
		t.Run(w.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, w)
			for i, o := range outcomes {
				if o.outcome == sim.OutcomeFailure && !w.snapStatuses {
					o.want, o.wantLedger = payrouter.StatusCanceled, "canceled"
				}
				t.Run(string(o.outcome), func(t *testing.T) {
					ctx := context.Background()
					req := e.authReq("pay_life"+string(rune('a'+i)), 10000)
					res, err := e.prov.Authorize(ctx, req)
					if err != nil {
						t.Fatalf("Authorize: %v", err)
					}
					if res.Status != payrouter.StatusRequiresAction || res.NextAction == nil || res.NextAction.Type != "redirect" {
						t.Fatalf("Authorize = %+v, want requires_action with a redirect", res)
					}
					if want := e.base + "/checkout/" + res.ProviderPaymentID; res.NextAction.URL != want {
						t.Errorf("next action URL = %q, want %q", res.NextAction.URL, want)
					}
					page, err := http.Get(res.NextAction.URL)
					if err != nil || page.StatusCode != 200 {
						t.Fatalf("checkout page: %v %v", err, page)
					}
					page.Body.Close()

					e.pay(res.ProviderPaymentID, o.outcome)
					h := e.lastHook()
					if h.err != nil {
						t.Fatalf("ParseWebhook refused the simulator's notify: %v", h.err)
					}
					n := h.n
					if n.Status != o.want || n.Amount != 10000 || n.Currency != "IDR" || n.OrderID != req.OrderID() ||
						n.ProviderPaymentID != res.ProviderPaymentID || n.Provider != w.name || n.EventID == "" {
						t.Errorf("notification = %+v, want status %s, 10000 IDR, order %s", n, o.want, req.OrderID())
					}
					st, err := e.prov.Status(ctx, &providers.StatusRequest{ProviderPaymentID: res.ProviderPaymentID, OrderID: req.OrderID()})
					if err != nil {
						t.Fatalf("Status: %v", err)
					}
					if st.Status != o.want {
						t.Errorf("Status = %s, want %s", st.Status, o.want)
					}
					l := e.sim.Backend.Ledger()
					if got := l[len(l)-1]; got.ID != res.ProviderPaymentID || got.Reference != req.OrderID() || got.Amount != 10000 || got.Status != o.wantLedger {
						t.Errorf("ledger entry = %+v", got)
					}
				})
			}
		})
	}
}

func TestIdempotentReplayAndFaults(t *testing.T) {
	for _, w := range wallets {
		t.Run(w.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, w)
			ctx := context.Background()
			req := e.authReq("pay_idem", 25000)
			r1, err := e.prov.Authorize(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			r2, err := e.prov.Authorize(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			if r1.ProviderPaymentID != r2.ProviderPaymentID {
				t.Errorf("replay gave %s then %s", r1.ProviderPaymentID, r2.ProviderPaymentID)
			}
			if n := len(e.sim.Backend.Ledger()); n != 1 {
				t.Errorf("ledger has %d entries after a replay, want 1", n)
			}

			e.faults("down")
			_, err = e.prov.Authorize(ctx, e.authReq("pay_down", 10000))
			if pe := classOf(t, err); pe.Class != providers.Unavailable {
				t.Errorf("down: class %s, want unavailable (%v)", pe.Class, err)
			}

			e.faults("drop_after_charge")
			dropped := e.authReq("pay_drop", 10000)
			_, err = e.prov.Authorize(ctx, dropped)
			if pe := classOf(t, err); pe.Class != providers.Ambiguous {
				t.Errorf("drop_after_charge: class %s, want ambiguous (%v)", pe.Class, err)
			}
			e.faults("none")
			// Resolving by retrying the same attempt finds the charge that
			// was made, and makes no second one.
			r3, err := e.prov.Authorize(ctx, dropped)
			if err != nil {
				t.Fatalf("retry after drop: %v", err)
			}
			l := e.sim.Backend.Ledger()
			if len(l) != 2 || l[1].ID != r3.ProviderPaymentID {
				t.Errorf("ledger after drop+retry = %+v, want 2 entries, last %s", l, r3.ProviderPaymentID)
			}
		})
	}
}

func TestCancelRefundAndErrors(t *testing.T) {
	for _, w := range wallets {
		t.Run(w.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, w)
			ctx := context.Background()

			t.Run("cancel", func(t *testing.T) {
				req := e.authReq("pay_cancel", 10000)
				res, err := e.prov.Authorize(ctx, req)
				if err != nil {
					t.Fatal(err)
				}
				cr, err := e.prov.Cancel(ctx, &providers.CancelRequest{ProviderPaymentID: res.ProviderPaymentID, OrderID: req.OrderID(), IdempotencyKey: "cancel_1"})
				if !w.cancel {
					if pe := classOf(t, err); pe.Class != providers.Invalid || pe.Code != "unsupported" {
						t.Errorf("cancel without API = %v, want invalid/unsupported", err)
					}
					return
				}
				if err != nil || cr.Status != payrouter.StatusCanceled {
					t.Fatalf("Cancel = %+v, %v", cr, err)
				}
				st, err := e.prov.Status(ctx, &providers.StatusRequest{OrderID: req.OrderID()})
				if err != nil || st.Status != payrouter.StatusCanceled {
					t.Errorf("Status after cancel = %+v, %v", st, err)
				}
			})

			t.Run("refund", func(t *testing.T) {
				req := e.authReq("pay_refund", 10000)
				res, err := e.prov.Authorize(ctx, req)
				if err != nil {
					t.Fatal(err)
				}
				e.pay(res.ProviderPaymentID, sim.OutcomeSuccess)
				rr := &providers.RefundRequest{ProviderPaymentID: res.ProviderPaymentID, OrderID: req.OrderID(), RefundID: "re_1",
					IdempotencyKey: "re_1", Amount: 4000, Currency: "IDR", Reason: "customer request"}
				r1, err := e.prov.Refund(ctx, rr)
				if err != nil || r1.Status != payrouter.RefundSucceeded || r1.ProviderRefundID == "" {
					t.Fatalf("Refund = %+v, %v", r1, err)
				}
				r2, err := e.prov.Refund(ctx, rr)
				if err != nil || r2.ProviderRefundID != r1.ProviderRefundID {
					t.Errorf("repeated refund = %+v, %v; want the same refund %s", r2, err, r1.ProviderRefundID)
				}
				rest := *rr
				rest.RefundID, rest.IdempotencyKey, rest.Amount = "re_2", "re_2", 6000
				if _, err := e.prov.Refund(ctx, &rest); err != nil {
					t.Fatal(err)
				}
				wantLedger, wantStatus := "refunded", payrouter.StatusRefunded
				if !w.snapStatuses {
					wantLedger, wantStatus = "succeeded", payrouter.StatusSucceeded
				}
				l := e.sim.Backend.Ledger()
				if got := l[len(l)-1]; got.Refunded != 10000 || got.Status != wantLedger {
					t.Errorf("ledger after refunds = %+v, want %s with 10000 refunded", got, wantLedger)
				}
				st, err := e.prov.Status(ctx, &providers.StatusRequest{ProviderPaymentID: res.ProviderPaymentID})
				if err != nil || st.Status != wantStatus {
					t.Errorf("Status after full refund = %+v, %v; want %s", st, err, wantStatus)
				}
				over := *rr
				over.RefundID, over.IdempotencyKey = "re_3", "re_3"
				if _, err := e.prov.Refund(ctx, &over); classOf(t, err).Class != providers.Invalid {
					t.Errorf("refund beyond the amount = %v, want invalid", err)
				}
			})

			errs := []struct {
				name      string
				mod       func(*providers.AuthorizeRequest)
				wantClass providers.Class
				wantCode  string
			}{
				{"insufficient funds", func(r *providers.AuthorizeRequest) { r.Amount = snapsim.InsufficientFundsAmount }, providers.Declined, "insufficient_funds"},
				{"usd", func(r *providers.AuthorizeRequest) { r.Currency = "USD" }, providers.Invalid, "unsupported"},
				{"other method", func(r *providers.AuthorizeRequest) { r.Method = payrouter.MethodCard }, providers.Invalid, "unsupported"},
				{"manual capture", func(r *providers.AuthorizeRequest) { r.Capture = payrouter.CaptureManual }, providers.Invalid, "unsupported"},
			}
			if w.name == "ovo" {
				errs = append(errs, struct {
					name      string
					mod       func(*providers.AuthorizeRequest)
					wantClass providers.Class
					wantCode  string
				}{"no phone", func(r *providers.AuthorizeRequest) { r.Customer.Phone = "" }, providers.Invalid, "phone_required"})
			}
			for i, tt := range errs {
				t.Run(tt.name, func(t *testing.T) {
					req := e.authReq("pay_err"+string(rune('a'+i)), 10000)
					tt.mod(req)
					_, err := e.prov.Authorize(ctx, req)
					if pe := classOf(t, err); pe.Class != tt.wantClass || pe.Code != tt.wantCode {
						t.Errorf("Authorize = %v, want %s/%s", err, tt.wantClass, tt.wantCode)
					}
				})
			}
			t.Run("status of unknown payment", func(t *testing.T) {
				_, err := e.prov.Status(ctx, &providers.StatusRequest{OrderID: "pay_nope_a1"})
				if pe := classOf(t, err); pe.Class != providers.Invalid || pe.Code != "not_found" {
					t.Errorf("Status = %v, want invalid/not_found", err)
				}
			})
		})
	}
}

func TestForgedNotifications(t *testing.T) {
	for _, w := range wallets {
		t.Run(w.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, w)
			res, err := e.prov.Authorize(context.Background(), e.authReq("pay_forge", 10000))
			if err != nil {
				t.Fatal(err)
			}
			e.pay(res.ProviderPaymentID, sim.OutcomeSuccess)
			real := e.lastHook()
			if real.err != nil {
				t.Fatalf("genuine notify refused: %v", real.err)
			}
			_, attacker, err := snapbi.GenerateSandboxKeys()
			if err != nil {
				t.Fatal(err)
			}
			path := "/webhooks/" + w.name
			now := time.Now()
			resign := func(key *rsa.PrivateKey, body []byte, at time.Time) http.Header {
				h, err := snapbi.SignNotification(key, http.MethodPost, path, body, at)
				if err != nil {
					t.Fatal(err)
				}
				return h
			}
			tampered := bytes.Replace(real.body, []byte(`"10000.00"`), []byte(`"1000000.00"`), 1)
			if bytes.Equal(tampered, real.body) {
				t.Fatal("test bug: amount not found in notify body")
			}
			cases := []struct {
				name string
				h    http.Header
				body []byte
			}{
				{"signed by another key", resign(attacker, real.body, now), real.body},
				{"tampered amount", real.header, tampered},
				{"stale timestamp", resign(e.wallet, real.body, now.Add(-10*time.Minute)), real.body},
				{"signed for another path", func() http.Header {
					h, _ := snapbi.SignNotification(e.wallet, http.MethodPost, "/webhooks/other", real.body, now)
					return h
				}(), real.body},
				{"no signature", http.Header{"X-Timestamp": {snapbi.Timestamp(now)}}, real.body},
			}
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					n, err := e.prov.ParseWebhook(c.h, c.body, now)
					if !providers.IsSignatureError(err) {
						t.Errorf("ParseWebhook = %+v, %v; want a signature error", n, err)
					}
				})
			}
			// Posted through the router's endpoint, a forgery is a 401.
			resp, err := http.Post(e.notifier.URL, "application/json", bytes.NewReader(tampered))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("forged POST answered %d, want 401", resp.StatusCode)
			}
		})
	}
}

func TestSimulatorRefusesBadSignatures(t *testing.T) {
	for _, w := range wallets {
		t.Run(w.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, w)
			stranger, _, err := snapbi.GenerateSandboxKeys()
			if err != nil {
				t.Fatal(err)
			}
			t.Run("signed with the wrong key", func(t *testing.T) {
				cfg := e.cfg
				cfg.priv = stranger
				p, err := w.newProv(cfg)
				if err != nil {
					t.Fatal(err)
				}
				// Token wallets refuse the token request; DANA (no token)
				// refuses the payment itself.
				want := "4017300"
				if pathOf(w).AccessTokenPath == "" {
					want = "4015400"
				}
				_, err = p.Authorize(context.Background(), e.authReq("pay_stranger", 10000))
				if pe := classOf(t, err); pe.Class != providers.Unavailable || pe.Code != providers.CodeCredentialsRefused || pe.ProviderCode != want {
					t.Errorf("Authorize = %v, want unavailable/credentials_refused with provider code %s", err, want)
				}
			})
			t.Run("transaction with a bad signature", func(t *testing.T) {
				c, err := snapbi.NewClient(snapbi.Config{BaseURL: e.base, ClientID: e.cfg.clientID, PrivateKey: e.partner,
					ProviderPublicKey: e.cfg.walletPub, AccessTokenPath: pathOf(w).AccessTokenPath})
				if err != nil {
					t.Fatal(err)
				}
				var tok string
				if c.UsesAccessToken() {
					if tok, err = c.AccessToken(context.Background()); err != nil {
						t.Fatal(err)
					}
				}
				body := []byte(`{"partnerReferenceNo":"x_a1","merchantId":"` + e.cfg.merchant + `","amount":{"value":"10000.00","currency":"IDR"},"additionalInfo":{"phoneNumber":"0812345678"}}`)
				req, _ := http.NewRequest(http.MethodPost, e.base+pathOf(w).PaymentPath, bytes.NewReader(body))
				if tok != "" {
					req.Header.Set("Authorization", "Bearer "+tok)
				}
				req.Header.Set("X-TIMESTAMP", snapbi.Timestamp(time.Now()))
				req.Header.Set("X-PARTNER-ID", e.cfg.clientID)
				req.Header.Set("X-EXTERNAL-ID", "123")
				req.Header.Set("CHANNEL-ID", "95221")
				req.Header.Set("X-SIGNATURE", "bm90IGEgc2lnbmF0dXJl")
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				var env snapbi.Envelope
				_ = json.NewDecoder(resp.Body).Decode(&env)
				if resp.StatusCode != 401 || env.ResponseCode != "4015400" {
					t.Errorf("bad signature answered %d %s, want 401 4015400", resp.StatusCode, env.ResponseCode)
				}
				if n := len(e.sim.Backend.Ledger()); n != 0 {
					t.Errorf("a refused request created %d ledger entries", n)
				}
			})
		})
	}
}

func pathOf(w walletCase) snapsim.Wallet {
	switch w.name {
	case "dana":
		return snapsim.DANA()
	case "ovo":
		return snapsim.OVO()
	}
	return snapsim.GoPay()
}

func TestExternalIDConflict(t *testing.T) {
	e := newEnv(t, wallets[0])
	c, err := snapbi.NewClient(snapbi.Config{BaseURL: e.base, ClientID: e.cfg.clientID, PrivateKey: e.partner,
		ProviderPublicKey: e.cfg.walletPub, AccessTokenPath: snapsim.DANA().AccessTokenPath, ChannelID: "95221"})
	if err != nil {
		t.Fatal(err)
	}
	send := func(ref string) error {
		return c.Do(context.Background(), snapbi.Request{Path: snapsim.DANA().PaymentPath, ExternalID: "42",
			Body: danaOrder(ref, e.cfg.merchant, time.Now())}, nil)
	}
	if err := send("a_a1"); err != nil {
		t.Fatal(err)
	}
	err = send("b_a1")
	if pe := classOf(t, err); pe.Class != providers.Invalid || pe.Code != "duplicate" || !strings.HasPrefix(pe.ProviderCode, "409") {
		t.Errorf("reused X-EXTERNAL-ID with another body = %v, want invalid/duplicate 409", err)
	}
}

// danaOrder is a create-order body with every field DANA's models mark
// required.
func danaOrder(ref, merchant string, now time.Time) map[string]any {
	return map[string]any{"partnerReferenceNo": ref, "merchantId": merchant,
		"amount":    snapbi.Money{Value: "10000.00", Currency: "IDR"},
		"validUpTo": snapbi.Timestamp(now.Add(10 * time.Minute)),
		"urlParams": []map[string]string{{"url": "https://shop.example/return", "type": "PAY_RETURN", "isDeeplink": "N"}},
		"additionalInfo": map[string]any{"mcc": "5999", "order": map[string]any{"orderTitle": "t"},
			"envInfo": map[string]any{"sourcePlatform": "IPG", "terminalType": "SYSTEM"}}}
}
