// Package checkout is payrouter's hosted checkout page: one page, for every
// provider, that a merchant sends the customer to (next_action.url of a
// payment created with "checkout": "hosted"). The customer sees the
// merchant, the amount and the methods the rules can route; choosing one
// runs the normal router path; the page then shows the provider's action (QR
// code, virtual account, e-wallet link, card) and the live status, and ends
// on the result with a link back to the merchant's return_url.
//
// The page is server-rendered and works without JavaScript (plain forms, a
// meta refresh while waiting); checkout.js only enhances it (status
// polling, copy buttons). Tokens are HMACs of the payment id, so they need
// no storage, are bound to one payment and die with it. Forms carry a
// CSRF token (double submit: a cookie and a field). Card numbers never reach
// payrouter: in sandbox the page offers the simulators' test cards; in
// production cards are tokenized by the provider (see README).
package checkout

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/payrouter/payrouter"
	"github.com/payrouter/payrouter/internal/qrcode"
	"github.com/payrouter/payrouter/router"
)

//go:embed templates/*.html static/*
var files embed.FS

// Payments reads payments (any merchant's: the token is the authority).
type Payments interface {
	GetPayment(ctx context.Context, merchantID, id string) (*payrouter.Payment, error)
}

// Router is what the page asks of the router.
type Router interface {
	CheckoutMethods(p *payrouter.Payment) []payrouter.Method
	Choose(ctx context.Context, id string, c router.Choice) (*payrouter.Payment, error)
	Cancel(ctx context.Context, merchantID, id string) (*payrouter.Payment, error)
}

// Server serves /checkout/.
type Server struct {
	Payments Payments
	Router   Router
	// Secret keys the page tokens; every instance must share it.
	Secret []byte
	// PublicURL is where customers reach payrouter (no trailing slash).
	PublicURL string
	// Merchants maps a merchant id to its display name.
	Merchants map[string]string
	// Sandbox offers the simulators' test cards.
	Sandbox bool
	Log     *slog.Logger
	// Limit is the number of POSTs one token may make per minute (0: 20).
	Limit int

	once  sync.Once
	tmpl  *template.Template
	mu    sync.Mutex
	posts map[string][]time.Time
}

// Token is the page token of payment id: the id and a 128-bit HMAC tag.
func Token(secret []byte, id string) string {
	return id + "." + tag(secret, id)
}

func tag(secret []byte, id string) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("payrouter checkout\x00" + id))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:16])
}

// URL is the page of payment p.
func (s *Server) URL(p *payrouter.Payment) string {
	return s.PublicURL + "/checkout/" + Token(s.Secret, p.ID)
}

func (s *Server) paymentID(token string) (string, bool) {
	id, t, ok := strings.Cut(token, ".")
	if !ok || id == "" || len(s.Secret) == 0 {
		return "", false
	}
	return id, hmac.Equal([]byte(t), []byte(tag(s.Secret, id)))
}

// Mount registers the page's routes on mux.
func (s *Server) Mount(mux *http.ServeMux) {
	mux.HandleFunc("GET /checkout/{token}", s.page)
	mux.HandleFunc("POST /checkout/{token}", s.post)
	mux.HandleFunc("GET /checkout/{token}/status", s.status)
	static, _ := fs.Sub(files, "static")
	mux.Handle("GET /assets/checkout/", http.StripPrefix("/assets/checkout/", http.FileServerFS(static)))
}

// csp allows only this origin's script and style, no framing, forms to
// self only.
const csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

func headers(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Security-Policy", csp)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer") // the URL is the token
	h.Set("Cache-Control", "no-store")
}

func (s *Server) templates() *template.Template {
	s.once.Do(func() {
		s.tmpl = template.Must(template.New("").Funcs(template.FuncMap{
			"t":  func(lang, key string, args ...any) string { return tf(lang, key, args...) },
			"dt": func(t *time.Time) string { return t.In(wib).Format("02 Jan 2006 15:04 MST") },
		}).ParseFS(files, "templates/*.html"))
		s.posts = map[string][]time.Time{}
	})
	return s.tmpl
}

var wib = time.FixedZone("WIB", 7*3600)

func tf(lang, key string, args ...any) string {
	m := translate(lang, key)
	if len(args) > 0 {
		return fmt.Sprintf(m, args...)
	}
	return m
}

// load resolves the token to its payment; nil after answering 404.
func (s *Server) load(w http.ResponseWriter, r *http.Request, lang string) *payrouter.Payment {
	id, ok := s.paymentID(r.PathValue("token"))
	var p *payrouter.Payment
	if ok {
		var err error
		p, err = s.Payments.GetPayment(r.Context(), "", id)
		if err != nil && !errors.Is(err, payrouter.ErrNotExist) {
			s.Log.Error("checkout: load payment", "payment", id, "err", err)
			http.Error(w, "internal error", http.StatusInternalServerError)
			return nil
		}
	}
	if p == nil || p.Checkout != payrouter.CheckoutHosted {
		// One answer for a bad token and an unknown payment: nothing leaks.
		w.WriteHeader(http.StatusNotFound)
		_ = s.templates().ExecuteTemplate(w, "notfound.html", map[string]string{"Lang": lang})
		return nil
	}
	return p
}

func (s *Server) page(w http.ResponseWriter, r *http.Request) {
	headers(w)
	lang := matchLang(r)
	p := s.load(w, r, lang)
	if p == nil {
		return
	}
	v := s.view(w, r, p, lang)
	v.Step = r.URL.Query().Get("step")
	v.Error = r.URL.Query().Get("error")
	s.render(w, http.StatusOK, v)
}

func (s *Server) render(w http.ResponseWriter, status int, v *view) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if err := s.templates().ExecuteTemplate(w, "page.html", v); err != nil {
		s.Log.Error("checkout: render", "err", err)
	}
}

// status answers the page's script: the payment's status only.
func (s *Server) status(w http.ResponseWriter, r *http.Request) {
	headers(w)
	p := s.load(w, r, "en")
	if p == nil {
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]string{"status": string(p.Status)})
}

const csrfCookie = "payrouter_checkout_csrf"

// csrf returns the request's CSRF token, setting a new cookie when there
// is none (scoped to this payment's page).
func csrf(w http.ResponseWriter, r *http.Request) string {
	if c, err := r.Cookie(csrfCookie); err == nil && len(c.Value) >= 22 {
		return c.Value
	}
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	v := base64.RawURLEncoding.EncodeToString(b)
	http.SetCookie(w, &http.Cookie{Name: csrfCookie, Value: v, Path: "/checkout/" + r.PathValue("token"),
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
	return v
}

// allow is the per-token POST rate limit: Limit per minute, sliding.
func (s *Server) allow(token string, now time.Time) bool {
	limit := s.Limit
	if limit == 0 {
		limit = 20
	}
	s.templates()
	s.mu.Lock()
	defer s.mu.Unlock()
	kept := s.posts[token][:0]
	for _, t := range s.posts[token] {
		if now.Sub(t) < time.Minute {
			kept = append(kept, t)
		}
	}
	if len(kept) >= limit {
		s.posts[token] = kept
		return false
	}
	s.posts[token] = append(kept, now)
	if len(s.posts) > 100_000 { // bound memory under a flood of tokens
		for k, ts := range s.posts {
			if len(ts) == 0 || now.Sub(ts[len(ts)-1]) >= time.Minute {
				delete(s.posts, k)
			}
		}
	}
	return true
}

func (s *Server) post(w http.ResponseWriter, r *http.Request) {
	headers(w)
	lang := matchLang(r)
	token := r.PathValue("token")
	p := s.load(w, r, lang)
	if p == nil {
		return
	}
	self := "/checkout/" + token
	if !s.allow(token, time.Now()) {
		w.Header().Set("Retry-After", "60")
		v := s.view(w, r, p, lang)
		v.Error = "error_rate"
		s.render(w, http.StatusTooManyRequests, v)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 4<<10)
	c, err := r.Cookie(csrfCookie)
	if err != nil || subtle.ConstantTimeCompare([]byte(c.Value), []byte(r.PostFormValue("csrf"))) != 1 {
		v := s.view(w, r, p, lang)
		v.Error = "error_form"
		s.render(w, http.StatusForbidden, v)
		return
	}
	if r.PostFormValue("action") == "cancel" {
		if _, err := s.Router.Cancel(r.Context(), p.MerchantID, p.ID); err != nil {
			s.Log.Warn("checkout: cancel", "payment", p.ID, "err", err)
			http.Redirect(w, r, self+"?error=error_state", http.StatusSeeOther)
			return
		}
		http.Redirect(w, r, self, http.StatusSeeOther)
		return
	}
	m := payrouter.Method(r.PostFormValue("method"))
	ch := router.Choice{Method: m, Bank: r.PostFormValue("bank"), Phone: strings.TrimSpace(r.PostFormValue("phone")), CardToken: r.PostFormValue("card_token")}
	// Methods that need one more answer from the customer get a step.
	switch {
	case m == payrouter.MethodCard && ch.CardToken == "":
		http.Redirect(w, r, self+"?step=card", http.StatusSeeOther)
		return
	case m == payrouter.MethodBankTransfer && ch.Bank == "" && p.Bank == "":
		http.Redirect(w, r, self+"?step=bank", http.StatusSeeOther)
		return
	case m == payrouter.MethodOVO && ch.Phone == "" && (p.Customer == nil || p.Customer.Phone == ""):
		http.Redirect(w, r, self+"?step=phone", http.StatusSeeOther)
		return
	}
	if ch.Bank == "" {
		ch.Bank = p.Bank
	}
	if m == payrouter.MethodCard && !s.Sandbox {
		http.Redirect(w, r, self+"?error=error_unavailable", http.StatusSeeOther)
		return
	}
	if _, err := s.Router.Choose(r.Context(), p.ID, ch); err != nil {
		var pe *payrouter.Error
		code := "error_unavailable"
		if errors.As(err, &pe) && pe.Type == payrouter.ErrInvalidState {
			code = "error_state"
		}
		s.Log.Info("checkout: choice refused", "payment", p.ID, "method", m, "err", err)
		http.Redirect(w, r, self+"?error="+code, http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, self, http.StatusSeeOther)
}

// view is what page.html shows.
type view struct {
	Lang, Token, CSRF   string
	Merchant            string
	Amount, Description string
	Reference           string
	Status              payrouter.Status
	Step, Error         string
	Methods             []payrouter.Method
	Banks               []string
	TestCards           [][2]string // token, message key
	Action              *action
	ExpiresAt           *time.Time
	Final               bool
	ReturnURL           string
	// Refresh is the meta refresh period (seconds) while waiting; 0 none.
	Refresh int
}

// Title is the page's title.
func (v *view) Title() string { return tf(v.Lang, "title", v.Merchant) }

// action is the provider's next step for the customer.
type action struct {
	Kind       string // qr | va | redirect | deeplink | push
	URL        string
	QR         template.HTML
	VANumber   string
	Bank       string
	BillerCode string
	Provider   string
}

var banks = []string{"bca", "bni", "bri", "permata", "mandiri"}

func (s *Server) view(w http.ResponseWriter, r *http.Request, p *payrouter.Payment, lang string) *view {
	v := &view{
		Lang: lang, Token: r.PathValue("token"), CSRF: csrf(w, r),
		Merchant: s.Merchants[p.MerchantID], Amount: payrouter.FormatMoney(p.Amount, p.Currency),
		Description: p.Description, Reference: p.Reference, Status: p.Status, ExpiresAt: p.ExpiresAt,
		Banks: banks,
	}
	if v.Merchant == "" {
		v.Merchant = p.MerchantID
	}
	switch p.Status {
	case payrouter.StatusRequiresAction:
		if len(p.Attempts) == 0 {
			v.Methods = s.Router.CheckoutMethods(p)
			if !s.Sandbox {
				v.Methods = without(v.Methods, payrouter.MethodCard)
			}
			if s.Sandbox {
				v.TestCards = [][2]string{{"tok_sandbox_success", "tok_success"}, {"tok_sandbox_decline", "tok_decline"},
					{"tok_sandbox_insufficient_funds", "tok_insufficient"}, {"tok_sandbox_3ds", "tok_3ds"}}
			}
			break
		}
		v.Action = s.action(p, lang)
		v.Refresh = 5
	case payrouter.StatusProcessing:
		v.Refresh = 3
	default:
		v.Final = true
		v.ReturnURL = returnURL(p)
	}
	return v
}

func without(ms []payrouter.Method, drop payrouter.Method) []payrouter.Method {
	out := ms[:0:0]
	for _, m := range ms {
		if m != drop {
			out = append(out, m)
		}
	}
	return out
}

func (s *Server) action(p *payrouter.Payment, lang string) *action {
	na := p.NextAction
	a := &action{Provider: translate(lang, string(p.Method))}
	if p.Method == payrouter.MethodCard {
		a.Provider = translate(lang, "card")
	}
	if na == nil {
		// Push to the phone (OVO): nothing to show but the wait.
		a.Kind = "push"
		return a
	}
	a.URL, a.VANumber, a.Bank, a.BillerCode = na.URL, na.VANumber, strings.ToUpper(na.Bank), na.BillerCode
	switch {
	case na.Type == "bank_transfer" || na.VANumber != "":
		a.Kind = "va"
	case na.QRString != "":
		a.Kind = "qr"
		a.QR, _ = qrcode.SVG(na.QRString, translate(lang, "scan_qr"))
	case na.Type == "deeplink":
		a.Kind = "deeplink"
	default:
		a.Kind = "redirect"
	}
	if (a.Kind == "redirect" || a.Kind == "deeplink") && p.Method != payrouter.MethodCard && strings.HasPrefix(na.URL, "http") {
		// On a desktop the customer pays with the phone: the same link as a QR.
		a.QR, _ = qrcode.SVG(na.URL, translate(lang, "or_scan"))
	}
	return a
}

// returnURL is the merchant's return_url with payment_id and status added
// (empty when the merchant gave none or it does not parse).
func returnURL(p *payrouter.Payment) string {
	if p.ReturnURL == "" {
		return ""
	}
	u, err := url.Parse(p.ReturnURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") {
		return ""
	}
	q := u.Query()
	q.Set("payment_id", p.ID)
	q.Set("status", string(p.Status))
	u.RawQuery = q.Encode()
	return u.String()
}
