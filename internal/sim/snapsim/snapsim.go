// Package snapsim is the sandbox simulator of the SNAP BI direct-debit
// wallets (DANA, OVO, GoPay): one engine, parameterised per wallet by a
// Wallet value (paths, signing scheme, token use, required fields, status
// codes, deeplink form). It verifies what the real wallets verify — for
// OVO and GoPay the access-token signature with the partner's public key
// and then the Bearer token on every transaction (DANA's Payment Gateway
// has no access token: no token endpoint, no Authorization) — and on every
// transaction X-PARTNER-ID, X-TIMESTAMP, X-EXTERNAL-ID, CHANNEL-ID and
// X-SIGNATURE over the full path the request was sent to (the /sim/<wallet>
// mount prefix included, as a real client pointed at this base URL signs
// it), refusing a wrongly signed request with SNAP 401 "Unauthorized.
// Signature". Requests missing a field the wallet's models mark required
// are refused with 400 "Invalid Mandatory Field [...]". It keeps
// payments in memory, honours X-EXTERNAL-ID idempotency (same id and body:
// the first answer again; same id, other body: 409 Conflict), and on
// Pay posts the wallet's finish notify signed with the wallet's private key
// over POST:<notifier URL path>:hex(sha256(body)):X-TIMESTAMP.
//
// Sandbox conventions (not wallet behaviour): ledger ids are the
// referenceNo, references the partnerReferenceNo, amounts whole rupiah
// (the wire carries "10000.00"); webRedirectUrl is PublicURL/checkout/{ref}
// for every wallet, OVO included (the real OVO pushes to the phone), so the
// sandbox always has a usable next action; a payment of Rp 14.014 is
// refused with 4035414 Insufficient Funds; an expired payment's notify and
// status carry the close reason "EXPIRED" (DANA: notify
// additionalInfo."extendInfo.closedReason", query additionalInfo.closeReason;
// OVO and GoPay: additionalInfo.closeReason, an assumption).
package snapsim

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/payrouter/payrouter/internal/sim"
	"github.com/payrouter/payrouter/internal/snapbi"
)

// Wallet is what differs between the simulated wallets. Paths are written
// out here independently of the adapters, from each wallet's public
// documentation, so that a wrong path in an adapter fails its tests.
type Wallet struct {
	Name   string // "dana"
	Method string // "dana"
	// AccessTokenPath is the B2B token endpoint; "" = the wallet takes no
	// token (DANA Payment Gateway): no Authorization is checked.
	AccessTokenPath string
	PaymentPath     string
	StatusPath      string
	CancelPath      string // "" = no cancel API (404)
	RefundPath      string
	// RefundQueryPath is the refund status inquiry. No wallet documents
	// one publicly; it follows SNAP BI's debit/status shape for service 58.
	RefundQueryPath string
	Symmetric       bool                    // HMAC-SHA512 transaction signatures (GoPay)
	NeedsPhone      bool                    // additionalInfo.phoneNumber required (OVO)
	Deeplink        func(ref string) string // appRedirectUrl; nil = not in the wallet's response
	// Required lists, per service ("54" payment, "55" status, "57"
	// cancel, "58" refund), the dotted JSON paths the wallet's models mark
	// required; a missing one is 400 Invalid Mandatory Field.
	Required map[string][]string
	// MaxValidFor bounds validUpTo (DANA: 30 minutes ahead); 0 = no bound.
	MaxValidFor time.Duration
	// Refunded: a fully refunded payment reports "04" (SNAP); false keeps
	// "00" (DANA documents no 04).
	Refunded bool
	// FailedStatus is the code of a payment the customer failed: "06"
	// (SNAP) or "05" with close reason CANCELLED (DANA documents no 06).
	FailedStatus string
	// NotifyCloseReasonField / StatusCloseReasonField name the close
	// reason's additionalInfo key in the notify and the query answer.
	NotifyCloseReasonField string
	StatusCloseReasonField string
}

// DANA is DANA's Payment Gateway SNAP API (dashboard.dana.id/api-docs-v2).
func DANA() Wallet {
	return Wallet{
		Name: "dana", Method: "dana",
		PaymentPath:     "/payment-gateway/v1.0/debit/payment-host-to-host.htm",
		StatusPath:      "/payment-gateway/v1.0/debit/status.htm",
		CancelPath:      "/payment-gateway/v1.0/debit/cancel.htm",
		RefundPath:      "/payment-gateway/v1.0/debit/refund.htm",
		RefundQueryPath: "/payment-gateway/v1.0/debit/refund-query.htm",
		// dana-go payment_gateway/v1 models' requiredProperties.
		Required: map[string][]string{
			"54": {"partnerReferenceNo", "merchantId", "amount.value", "amount.currency", "validUpTo", "urlParams",
				"additionalInfo.mcc", "additionalInfo.envInfo.sourcePlatform", "additionalInfo.envInfo.terminalType"},
			"55": {"serviceCode", "merchantId"},
			"57": {"originalPartnerReferenceNo", "merchantId"},
			"58": {"merchantId", "originalPartnerReferenceNo", "partnerRefundNo", "refundAmount.value", "refundAmount.currency"},
		},
		MaxValidFor:            30 * time.Minute,
		FailedStatus:           "05",
		NotifyCloseReasonField: "extendInfo.closedReason",
		StatusCloseReasonField: "closeReason",
	}
}

// OVO is OVO's SNAP Open API for payments (ovo.id/partner-integration/payment-api/tech-doc).
func OVO() Wallet {
	return Wallet{
		Name: "ovo", Method: "ovo",
		AccessTokenPath: "/OVOSNAP/v1.0/access-token/b2b",
		PaymentPath:     "/OVOSNAP/v2.0/debit/payment-host-to-host",
		StatusPath:      "/OVOSNAP/v2.0/debit/status",
		RefundPath:      "/OVOSNAP/v2.0/debit/refund",
		RefundQueryPath: "/OVOSNAP/v2.0/debit/refund-query",
		NeedsPhone:      true,
		Deeplink:        func(ref string) string { return "ovo://payment?referenceNo=" + url.QueryEscape(ref) },
		Refunded:        true,
		FailedStatus:    "06",
	}
}

// GoPay is GoPay's SNAP direct debit as Midtrans publishes it
// (docs.midtrans.com/reference/direct-debit-api-gopay): symmetric
// transaction signatures.
func GoPay() Wallet {
	return Wallet{
		Name: "gopay", Method: "gopay",
		AccessTokenPath: "/v1.0/access-token/b2b",
		PaymentPath:     "/v1.0/debit/payment-host-to-host",
		StatusPath:      "/v1.0/debit/status",
		CancelPath:      "/v1.0/debit/cancel",
		RefundPath:      "/v1.0/debit/refund",
		RefundQueryPath: "/v1.0/debit/refund-query",
		Symmetric:       true,
		Refunded:        true,
		FailedStatus:    "06",
		Deeplink: func(ref string) string {
			return "gojek://gopay/merchanttransfer?tref=" + url.QueryEscape(ref) + "&activity=GP:RR"
		},
	}
}

// Options configures a simulator.
type Options struct {
	Wallet       Wallet
	ClientID     string // expected X-CLIENT-KEY / X-PARTNER-ID
	ClientSecret string // symmetric signature key (GoPay)
	// PartnerPublicKey verifies the partner's (adapter's) signatures.
	PartnerPublicKey *rsa.PublicKey
	// WalletPrivateKey signs notifications.
	WalletPrivateKey *rsa.PrivateKey
	Notifier         *sim.Notifier
	PublicURL        string // absolute base of /sim/<wallet>
	MerchantID       string // "" accepts any
	Now              func() time.Time
	TokenTTL         time.Duration // default 15 minutes (BI's B2B rule)
}

// NewDANA, NewOVO and NewGoPay are New with the wallet filled in.
func NewDANA(o Options) *Backend { o.Wallet = DANA(); return New(o) }

// NewOVO simulates OVO.
func NewOVO(o Options) *Backend { o.Wallet = OVO(); return New(o) }

// NewGoPay simulates GoPay.
func NewGoPay(o Options) *Backend { o.Wallet = GoPay(); return New(o) }

// InsufficientFundsAmount (whole rupiah) is refused with 4035414.
const InsufficientFundsAmount = 14014

const tolerance = 5 * time.Minute

// Backend implements sim.Backend for one wallet.
type Backend struct {
	o    Options
	idem sim.Idempotency

	mu     sync.Mutex
	tokens map[string]time.Time
	txns   map[string]*txn // by referenceNo
	byPRef map[string]*txn // by partnerReferenceNo
	seq    int
}

var _ sim.Backend = (*Backend)(nil)

type txn struct {
	seq         int
	ref, pref   string
	amount      int64 // whole rupiah
	status      string
	closeReason string
	refunded    int64
	refunds     map[string]refundRec
	created     time.Time
	finished    time.Time
	returnURL   string // urlParams PAY_RETURN: where the wallet sends the customer back
}

type refundRec struct {
	amount int64
	no     string
	at     time.Time
}

// New builds a simulator; Options.Wallet must be set (or use NewDANA, …).
func New(o Options) *Backend {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.TokenTTL <= 0 {
		o.TokenTTL = 15 * time.Minute
	}
	o.PublicURL = strings.TrimSuffix(o.PublicURL, "/")
	if o.Wallet.FailedStatus == "" {
		o.Wallet.FailedStatus = "06"
	}
	if o.Wallet.NotifyCloseReasonField == "" {
		o.Wallet.NotifyCloseReasonField = snapbi.CloseReasonField
	}
	if o.Wallet.StatusCloseReasonField == "" {
		o.Wallet.StatusCloseReasonField = snapbi.CloseReasonField
	}
	return &Backend{o: o, tokens: map[string]time.Time{}, txns: map[string]*txn{}, byPRef: map[string]*txn{}}
}

func snapErr(status int, service, caseCode, msg string) *sim.Replay {
	return sim.JSONReplay(status, map[string]string{
		"responseCode":    string(snapbi.Code(status, service, caseCode)),
		"responseMessage": msg,
	})
}

func ok(service string, v map[string]any) *sim.Replay {
	v["responseCode"] = string(snapbi.Code(200, service, "00"))
	v["responseMessage"] = "Successful"
	return sim.JSONReplay(200, v)
}

func write(w http.ResponseWriter, r *sim.Replay) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(r.Status)
	_, _ = w.Write(r.Body)
}

// ServeHTTP serves the wallet's SNAP API (prefix already stripped).
func (b *Backend) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		write(w, snapErr(405, "00", "00", "Requested Function Is Not Supported"))
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		write(w, snapErr(400, "00", "00", "Bad Request"))
		return
	}
	wl := b.o.Wallet
	var service string
	var handle func([]byte) *sim.Replay
	switch r.URL.Path {
	case "":
	case wl.AccessTokenPath:
		write(w, b.token(r, body))
		return
	case wl.PaymentPath:
		service, handle = "54", b.payment
	case wl.StatusPath:
		service, handle = "55", b.status
	case wl.CancelPath:
		service, handle = "57", b.cancel
	case wl.RefundPath:
		service, handle = "58", b.refund
	case wl.RefundQueryPath:
		service, handle = "58", b.refundQuery
	}
	required := service
	if r.URL.Path == wl.RefundQueryPath {
		required = "58-query" // an inquiry, not a refund: none of the refund's fields
	}
	if handle == nil {
		write(w, snapErr(404, "00", "00", "Not Found"))
		return
	}
	if rep := b.authenticate(r, body, service); rep != nil {
		write(w, rep)
		return
	}
	if rep := b.validate(body, service, required); rep != nil {
		write(w, rep)
		return
	}
	ext := r.Header.Get("X-EXTERNAL-ID")
	declined := service == "54" && sim.Declined(r.Context())
	b.idem.Do(ext, body, w, func() *sim.Replay {
		if declined {
			return snapErr(403, "54", "05", "Do Not Honor")
		}
		return handle(body)
	}, func(w http.ResponseWriter) {
		write(w, snapErr(409, service, "00", "Conflict"))
	})
}

func (b *Backend) token(r *http.Request, body []byte) *sim.Replay {
	if r.Header.Get("X-CLIENT-KEY") != b.o.ClientID || b.o.ClientID == "" {
		return snapErr(401, "73", "00", "Unauthorized. Unknown client")
	}
	ts := r.Header.Get("X-TIMESTAMP")
	t, err := snapbi.ParseTimestamp(ts)
	if err != nil {
		return snapErr(400, "73", "01", "Invalid Field Format [X-TIMESTAMP]")
	}
	if d := b.o.Now().Sub(t); d > tolerance || d < -tolerance {
		return snapErr(401, "73", "00", "Unauthorized. Timestamp")
	}
	if err := snapbi.VerifyRSA(b.o.PartnerPublicKey, snapbi.AccessTokenStringToSign(b.o.ClientID, ts), r.Header.Get("X-SIGNATURE")); err != nil {
		return snapErr(401, "73", "00", "Unauthorized. Signature")
	}
	var req struct {
		GrantType string `json:"grantType"`
	}
	if json.Unmarshal(body, &req) != nil || req.GrantType != "client_credentials" {
		return snapErr(400, "73", "02", "Invalid Mandatory Field [grantType]")
	}
	tok := randHex(24)
	b.mu.Lock()
	now := b.o.Now()
	for k, exp := range b.tokens {
		if now.After(exp) {
			delete(b.tokens, k)
		}
	}
	b.tokens[tok] = now.Add(b.o.TokenTTL)
	b.mu.Unlock()
	return ok("73", map[string]any{"accessToken": tok, "tokenType": "Bearer", "expiresIn": strconv.Itoa(int(b.o.TokenTTL / time.Second))})
}

// authenticate checks the headers and signature of a transaction request;
// nil means it passes. Refusals are not recorded for idempotency: the
// request was not processed.
func (b *Backend) authenticate(r *http.Request, body []byte, service string) *sim.Replay {
	var tok string
	if b.o.Wallet.AccessTokenPath != "" {
		var found bool
		tok, found = strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		b.mu.Lock()
		exp, known := b.tokens[tok]
		b.mu.Unlock()
		if !found || !known || b.o.Now().After(exp) {
			return snapErr(401, service, "01", "Invalid Token (B2B)")
		}
	}
	if r.Header.Get("X-PARTNER-ID") != b.o.ClientID {
		return snapErr(401, service, "00", "Unauthorized. Unknown client")
	}
	ts := r.Header.Get("X-TIMESTAMP")
	t, err := snapbi.ParseTimestamp(ts)
	if err != nil {
		return snapErr(400, service, "01", "Invalid Field Format [X-TIMESTAMP]")
	}
	if d := b.o.Now().Sub(t); d > tolerance || d < -tolerance {
		return snapErr(401, service, "00", "Unauthorized. Timestamp")
	}
	if ext := r.Header.Get("X-EXTERNAL-ID"); ext == "" || len(ext) > 36 {
		return snapErr(400, service, "02", "Invalid Mandatory Field [X-EXTERNAL-ID]")
	}
	if ch := r.Header.Get("CHANNEL-ID"); ch == "" || len(ch) > 5 {
		return snapErr(400, service, "02", "Invalid Mandatory Field [CHANNEL-ID]")
	}
	sig := r.Header.Get("X-SIGNATURE")
	path := requestPath(r)
	if b.o.Wallet.Symmetric {
		sts, err := snapbi.SymmetricStringToSign(r.Method, path, tok, body, ts)
		if err != nil || snapbi.VerifyHMAC(b.o.ClientSecret, sts, sig) != nil {
			return snapErr(401, service, "00", "Unauthorized. Signature")
		}
		return nil
	}
	sts, err := snapbi.StringToSign(r.Method, path, body, ts)
	if err != nil || snapbi.VerifyRSA(b.o.PartnerPublicKey, sts, sig) != nil {
		return snapErr(401, service, "00", "Unauthorized. Signature")
	}
	return nil
}

// requestPath is the path the client sent the request to, before any
// mount prefix was stripped: what the client signed.
func requestPath(r *http.Request) string {
	if u, err := url.ParseRequestURI(r.RequestURI); err == nil && u.Path != "" {
		return u.Path
	}
	return r.URL.Path
}

// validate checks the wallet's required fields and formats for service;
// nil means the request may be processed.
func (b *Backend) validate(body []byte, service, required string) *sim.Replay {
	var doc map[string]any
	if err := json.Unmarshal(body, &doc); err != nil {
		return snapErr(400, service, "00", "Bad Request")
	}
	for _, p := range b.o.Wallet.Required[required] {
		v, ok := lookup(doc, p)
		if s, isStr := v.(string); !ok || v == nil || (isStr && s == "") {
			return snapErr(400, service, "02", "Invalid Mandatory Field ["+p+"]")
		}
		if arr, isArr := v.([]any); isArr && len(arr) == 0 {
			return snapErr(400, service, "02", "Invalid Mandatory Field ["+p+"]")
		}
	}
	for _, f := range []string{"amount", "refundAmount"} {
		if m, ok := doc[f].(map[string]any); ok {
			if v, _ := m["value"].(string); !moneyValue.MatchString(v) {
				return snapErr(400, service, "01", "Invalid Field Format ["+f+".value]")
			}
		}
	}
	if raw, ok := doc["urlParams"]; ok {
		ps, _ := raw.([]any)
		for _, x := range ps {
			m, _ := x.(map[string]any)
			u, _ := m["url"].(string)
			t, _ := m["type"].(string)
			d, _ := m["isDeeplink"].(string)
			if u == "" || (t != "PAY_RETURN" && t != "NOTIFICATION") || (d != "Y" && d != "N") {
				return snapErr(400, service, "01", "Invalid Field Format [urlParams]")
			}
		}
	}
	if v, ok := doc["validUpTo"].(string); ok && service == "54" {
		if !validUpToFormat.MatchString(v) {
			return snapErr(400, service, "01", "Invalid Field Format [validUpTo]")
		}
		t, err := snapbi.ParseTimestamp(v)
		now := b.o.Now()
		if err != nil || !t.After(now) || (b.o.Wallet.MaxValidFor > 0 && t.After(now.Add(b.o.Wallet.MaxValidFor))) {
			return snapErr(400, service, "01", "Invalid Field Format [validUpTo]")
		}
	}
	return nil
}

var (
	moneyValue      = regexp.MustCompile(`^\d{1,16}\.\d{2}$`)
	validUpToFormat = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\+07:00$`)
)

// lookup follows a dotted path through nested JSON objects.
func lookup(doc map[string]any, path string) (any, bool) {
	var cur any = doc
	for _, k := range strings.Split(path, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[k]; !ok {
			return nil, false
		}
	}
	return cur, true
}

func (b *Backend) payment(body []byte) *sim.Replay {
	var req struct {
		PartnerReferenceNo string          `json:"partnerReferenceNo"`
		MerchantID         string          `json:"merchantId"`
		Amount             snapbi.Money    `json:"amount"`
		AdditionalInfo     json.RawMessage `json:"additionalInfo"`
		URLParams          []urlParam      `json:"urlParams"` // DANA, OVO
		URLParam           []urlParam      `json:"urlParam"`  // GoPay
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return snapErr(400, "54", "00", "Bad Request")
	}
	if req.PartnerReferenceNo == "" || len(req.PartnerReferenceNo) > 64 {
		return snapErr(400, "54", "02", "Invalid Mandatory Field [partnerReferenceNo]")
	}
	if b.o.MerchantID != "" && req.MerchantID != b.o.MerchantID {
		return snapErr(404, "54", "08", "Invalid Merchant")
	}
	amount, _, err := snapbi.FromMoney(req.Amount)
	if err != nil || amount <= 0 {
		return snapErr(400, "54", "01", "Invalid Field Format [amount]")
	}
	if b.o.Wallet.NeedsPhone {
		var info struct {
			PhoneNumber string `json:"phoneNumber"`
		}
		_ = json.Unmarshal(req.AdditionalInfo, &info)
		if info.PhoneNumber == "" {
			return snapErr(400, "54", "02", "Invalid Mandatory Field [additionalInfo.phoneNumber]")
		}
	}
	if amount == InsufficientFundsAmount {
		return snapErr(403, "54", "14", "Insufficient Funds")
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	t := b.byPRef[req.PartnerReferenceNo]
	if t != nil && t.amount != amount {
		return snapErr(409, "54", "01", "Duplicate partnerReferenceNo")
	}
	if t == nil {
		b.seq++
		now := b.o.Now()
		t = &txn{seq: b.seq, pref: req.PartnerReferenceNo, amount: amount, status: "01", created: now,
			ref: fmt.Sprintf("%s%08d%s", now.In(time.FixedZone("WIB", 7*3600)).Format("20060102150405"), b.seq, randDigits(6))}
		for _, u := range append(req.URLParams, req.URLParam...) {
			if u.Type == "PAY_RETURN" {
				t.returnURL = u.URL
			}
		}
		b.txns[t.ref] = t
		b.byPRef[t.pref] = t
	}
	resp := map[string]any{
		"referenceNo":        t.ref,
		"partnerReferenceNo": t.pref,
		"webRedirectUrl":     b.o.PublicURL + "/checkout/" + t.ref,
	}
	if b.o.Wallet.Deeplink != nil {
		resp["appRedirectUrl"] = b.o.Wallet.Deeplink(t.ref)
	}
	return ok("54", resp)
}

// find looks a payment up by referenceNo and/or partnerReferenceNo; both
// given must agree. Callers hold b.mu.
func (b *Backend) find(ref, pref string) *txn {
	var t *txn
	switch {
	case ref != "":
		t = b.txns[ref]
	case pref != "":
		t = b.byPRef[pref]
	}
	if t != nil && pref != "" && t.pref != pref {
		return nil
	}
	return t
}

type origRef struct {
	OriginalPartnerReferenceNo string `json:"originalPartnerReferenceNo"`
	OriginalReferenceNo        string `json:"originalReferenceNo"`
}

func (b *Backend) status(body []byte) *sim.Replay {
	var req origRef
	if err := json.Unmarshal(body, &req); err != nil {
		return snapErr(400, "55", "00", "Bad Request")
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	t := b.find(req.OriginalReferenceNo, req.OriginalPartnerReferenceNo)
	if t == nil {
		return snapErr(404, "55", "01", "Transaction Not Found")
	}
	resp := map[string]any{
		"originalPartnerReferenceNo": t.pref,
		"originalReferenceNo":        t.ref,
		"serviceCode":                "54",
		"latestTransactionStatus":    t.status,
		"transactionStatusDesc":      statusDesc[t.status],
		"amount":                     money(t.amount),
	}
	if t.closeReason != "" {
		resp["additionalInfo"] = map[string]string{b.o.Wallet.StatusCloseReasonField: t.closeReason}
	}
	return ok("55", resp)
}

var statusDesc = map[string]string{
	"00": "SUCCESS", "01": "INITIATED", "02": "PAYING", "03": "PENDING",
	"04": "REFUNDED", "05": "CANCELLED", "06": "FAILED", "07": "NOT_FOUND",
}

func money(rupiah int64) snapbi.Money {
	m, _ := snapbi.ToMoney(rupiah, "IDR") // amounts here were parsed from valid money
	return m
}

func (b *Backend) cancel(body []byte) *sim.Replay {
	var req origRef
	if err := json.Unmarshal(body, &req); err != nil {
		return snapErr(400, "57", "00", "Bad Request")
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	t := b.find(req.OriginalReferenceNo, req.OriginalPartnerReferenceNo)
	if t == nil {
		return snapErr(404, "57", "01", "Transaction Not Found")
	}
	switch t.status {
	case "01", "02", "03":
		t.status, t.closeReason, t.finished = "05", "CANCELLED", b.o.Now()
	case "05":
		// already closed: cancelling again is a no-op
	default:
		return snapErr(403, "57", "15", "Transaction Not Permitted")
	}
	return ok("57", map[string]any{
		"originalPartnerReferenceNo": t.pref,
		"originalReferenceNo":        t.ref,
		"cancelTime":                 snapbi.Timestamp(t.finished),
	})
}

func (b *Backend) refund(body []byte) *sim.Replay {
	var req struct {
		origRef
		PartnerRefundNo string       `json:"partnerRefundNo"`
		RefundAmount    snapbi.Money `json:"refundAmount"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return snapErr(400, "58", "00", "Bad Request")
	}
	if req.PartnerRefundNo == "" {
		return snapErr(400, "58", "02", "Invalid Mandatory Field [partnerRefundNo]")
	}
	amount, _, err := snapbi.FromMoney(req.RefundAmount)
	if err != nil || amount <= 0 {
		return snapErr(400, "58", "01", "Invalid Field Format [refundAmount]")
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	t := b.find(req.OriginalReferenceNo, req.OriginalPartnerReferenceNo)
	if t == nil {
		return snapErr(404, "58", "01", "Transaction Not Found")
	}
	rec, seen := t.refunds[req.PartnerRefundNo]
	switch {
	case seen && rec.amount != amount:
		return snapErr(409, "58", "01", "Duplicate partnerRefundNo")
	case seen:
		// the same refund again: answer as before
	case t.status != "00" && t.status != "04":
		return snapErr(403, "58", "15", "Transaction Not Permitted")
	case amount > t.amount-t.refunded:
		return snapErr(404, "58", "13", "Invalid Amount")
	default:
		rec = refundRec{amount: amount, no: "R" + t.ref + strconv.Itoa(len(t.refunds)+1), at: b.o.Now()}
		if t.refunds == nil {
			t.refunds = map[string]refundRec{}
		}
		t.refunds[req.PartnerRefundNo] = rec
		t.refunded += amount
		if t.refunded == t.amount && b.o.Wallet.Refunded {
			t.status = "04"
		}
	}
	return ok("58", map[string]any{
		"originalPartnerReferenceNo": t.pref,
		"originalReferenceNo":        t.ref,
		"refundNo":                   rec.no,
		"partnerRefundNo":            req.PartnerRefundNo,
		"refundAmount":               money(rec.amount),
		"refundTime":                 snapbi.Timestamp(rec.at),
	})
}

// IsRefund reports a refund request, not its status inquiry
// (sim.RefundMatcher).
func (b *Backend) IsRefund(r *http.Request) bool {
	return r.Method == http.MethodPost && r.URL.Path == b.o.Wallet.RefundPath
}

// refundQuery answers the refund status inquiry for partnerRefundNo:
// latestTransactionStatus 00 for a refund it made (refunds succeed at
// once here), 07 for one it never received.
func (b *Backend) refundQuery(body []byte) *sim.Replay {
	var req struct {
		origRef
		PartnerRefundNo string `json:"partnerRefundNo"`
		ServiceCode     string `json:"serviceCode"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return snapErr(400, "58", "00", "Bad Request")
	}
	if req.PartnerRefundNo == "" {
		return snapErr(400, "58", "02", "Invalid Mandatory Field [partnerRefundNo]")
	}
	if req.ServiceCode != "58" {
		return snapErr(400, "58", "01", "Invalid Field Format [serviceCode]")
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	t := b.find(req.OriginalReferenceNo, req.OriginalPartnerReferenceNo)
	if t == nil {
		return snapErr(404, "58", "01", "Transaction Not Found")
	}
	rec, seen := t.refunds[req.PartnerRefundNo]
	resp := map[string]any{
		"originalPartnerReferenceNo": t.pref,
		"originalReferenceNo":        t.ref,
		"partnerRefundNo":            req.PartnerRefundNo,
		"latestTransactionStatus":    "07",
		"transactionStatusDesc":      statusDesc["07"],
	}
	if seen {
		resp["refundNo"] = rec.no
		resp["refundAmount"] = money(rec.amount)
		resp["refundTime"] = snapbi.Timestamp(rec.at)
		resp["latestTransactionStatus"] = "00"
		resp["transactionStatusDesc"] = statusDesc["00"]
	}
	return ok("58", resp)
}

var ledgerStatus = map[string]string{
	"00": "succeeded", "01": "pending", "02": "pending", "03": "pending",
	"04": "refunded", "06": "failed",
}

// Ledger lists every payment, oldest first; amounts are whole rupiah.
func (b *Backend) Ledger() []sim.LedgerEntry {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]sim.LedgerEntry, 0, len(b.txns))
	for _, t := range b.txns {
		st := ledgerStatus[t.status]
		if t.status == "05" {
			st = "canceled"
			if t.closeReason == "EXPIRED" {
				st = "expired"
			}
		}
		out = append(out, sim.LedgerEntry{ID: t.ref, Reference: t.pref, Amount: t.amount, Currency: "IDR",
			Status: st, Method: b.o.Wallet.Method, Refunded: t.refunded})
	}
	seq := map[string]int{}
	for _, t := range b.txns {
		seq[t.ref] = t.seq
	}
	sim.SortLedger(out, func(id string) int { return seq[id] })
	return out
}

// Pay completes a payment awaiting the customer (success "00", failure
// "06", expire "05" with closeReason EXPIRED) and posts the signed finish
// notify. It returns sim.ErrNotFound / sim.ErrNotPayable, or the
// Notifier's error.
func (b *Backend) Pay(ctx context.Context, id string, outcome sim.Outcome) error {
	b.mu.Lock()
	t := b.txns[id]
	if t == nil {
		b.mu.Unlock()
		return sim.ErrNotFound
	}
	if t.status != "01" && t.status != "02" && t.status != "03" {
		b.mu.Unlock()
		return sim.ErrNotPayable
	}
	switch outcome {
	case sim.OutcomeSuccess:
		t.status = "00"
	case sim.OutcomeFailure:
		t.status = b.o.Wallet.FailedStatus
		if t.status == "05" {
			t.closeReason = "CANCELLED"
		}
	case sim.OutcomeExpire:
		t.status, t.closeReason = "05", "EXPIRED"
	default:
		b.mu.Unlock()
		return fmt.Errorf("unknown outcome %q", outcome)
	}
	t.finished = b.o.Now()
	n := snapbi.FinishNotify{
		OriginalPartnerReferenceNo: t.pref,
		OriginalReferenceNo:        t.ref,
		MerchantID:                 b.o.MerchantID,
		Amount:                     money(t.amount),
		LatestTransactionStatus:    t.status,
		TransactionStatusDesc:      statusDesc[t.status],
		CreatedTime:                snapbi.Timestamp(t.created),
		FinishedTime:               snapbi.Timestamp(t.finished),
	}
	if t.closeReason != "" {
		reason, _ := json.Marshal(t.closeReason)
		n.AdditionalInfo = map[string]json.RawMessage{b.o.Wallet.NotifyCloseReasonField: reason}
	}
	b.mu.Unlock()
	return b.notify(ctx, n)
}

func (b *Backend) notify(ctx context.Context, n snapbi.FinishNotify) error {
	if b.o.Notifier == nil || b.o.Notifier.URL == "" {
		return nil
	}
	u, err := url.Parse(b.o.Notifier.URL)
	if err != nil {
		return fmt.Errorf("notifier URL: %w", err)
	}
	body, err := json.Marshal(n)
	if err != nil {
		return err
	}
	h, err := snapbi.SignNotification(b.o.WalletPrivateKey, http.MethodPost, u.EscapedPath(), body, b.o.Now())
	if err != nil {
		return err
	}
	h.Set("X-PARTNER-ID", b.o.ClientID)
	h.Set("X-EXTERNAL-ID", randDigits(32))
	h.Set("CHANNEL-ID", "95221")
	return b.o.Notifier.Post(ctx, h, body)
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func randDigits(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = '0' + b[i]%10
	}
	return string(b)
}

type urlParam struct {
	URL  string `json:"url"`
	Type string `json:"type"`
}

// Page implements sim.Pager: after the outcome the wallet's page returns to
// the payment's PAY_RETURN url.
func (b *Backend) Page(id string) (sim.Page, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	t := b.txns[id]
	if t == nil {
		return sim.Page{}, false
	}
	pg := sim.Page{Amount: t.amount, Currency: "IDR", State: sim.PagePending}
	switch {
	case t.status == "00":
		pg.State = sim.PagePaid
	case t.status == "05" && t.closeReason == "EXPIRED":
		pg.State = sim.PageExpired
	case t.status == "05":
		pg.State = sim.PageCanceled
	case t.status != "01" && t.status != "02" && t.status != "03":
		pg.State = sim.PageFailed
	}
	if pg.State != sim.PagePending {
		pg.ReturnURL = t.returnURL
	}
	return pg, true
}

var _ sim.Settler = (*Backend)(nil)

// SettlementFormat is the wallet's dashboard settlement export: gopay,
// ovo or dana (DANA's is semicolon-separated, in cents).
func (b *Backend) SettlementFormat() string { return b.o.Wallet.Method }

// SettlementLines lists what the wallet would settle: every paid payment
// ("00", or "04" once refunded) at the time it was paid, and every refund
// at its own.
func (b *Backend) SettlementLines() []sim.SettlementLine {
	b.mu.Lock()
	defer b.mu.Unlock()
	ts := make([]*txn, 0, len(b.txns))
	for _, t := range b.txns {
		if t.status == "00" || t.status == "04" || (t.refunded > 0) {
			ts = append(ts, t)
		}
	}
	sort.Slice(ts, func(i, j int) bool { return ts[i].seq < ts[j].seq })
	var out []sim.SettlementLine
	m := b.o.Wallet.Method
	for _, t := range ts {
		at := t.finished
		if at.IsZero() {
			at = t.created
		}
		out = append(out, sim.SettlementLine{ProviderPaymentID: t.ref, OrderID: t.pref, Type: "payment", Method: m,
			Currency: "IDR", Amount: t.amount, At: at})
		nos := make([]string, 0, len(t.refunds))
		for no := range t.refunds {
			nos = append(nos, no)
		}
		sort.Slice(nos, func(i, j int) bool { return t.refunds[nos[i]].at.Before(t.refunds[nos[j]].at) })
		for _, no := range nos {
			rf := t.refunds[no]
			out = append(out, sim.SettlementLine{ProviderPaymentID: t.ref, OrderID: t.pref, RefundID: no, Type: "refund",
				Method: m, Currency: "IDR", Amount: rf.amount, At: rf.at})
		}
	}
	return out
}
