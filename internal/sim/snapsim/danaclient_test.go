package snapsim_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/payrouter/payrouter/internal/sim"
	"github.com/payrouter/payrouter/internal/sim/snapsim"
	"github.com/payrouter/payrouter/internal/snapbi"
)

// danaSDKClient builds requests exactly as DANA's Go SDK does
// (github.com/dana-id/dana-go v2: payment_gateway/v1/api_payment_gateway.go
// and utils/snap_header.go), written out here because the SDK is not a
// dependency: the endpoint is the configured server URL (path prefix
// included) + the operation path; the body is json.Marshal of the model,
// compacted, and sent as is; headers are Content-Type and Accept
// application/json, CHANNEL-ID 95221, X-PARTNER-ID, X-TIMESTAMP in
// Asia/Jakarta ("+07:00"), X-EXTERNAL-ID "sdk"+uuid[3:], X-Debug-Mode true
// in sandbox, and X-SIGNATURE = base64(SHA256withRSA(
// "POST:" + url.Parse(endpoint).Path + ":" + lowerhex(sha256(body)) + ":" +
// X-TIMESTAMP)). No Authorization header and no access-token call.
type danaSDKClient struct {
	server    string // the SDK's Servers[0].URL
	partnerID string
	key       *rsa.PrivateKey
	seq       int
}

func (c *danaSDKClient) call(t *testing.T, op string, req, resp any) int {
	t.Helper()
	endpoint := c.server + op
	data, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	var dst bytes.Buffer
	if err := json.Compact(&dst, data); err != nil {
		t.Fatal(err)
	}
	body := dst.Bytes()
	ts := time.Now().In(time.FixedZone("", 7*3600)).Format("2006-01-02T15:04:05+07:00")
	u, err := url.Parse(endpoint)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(body)
	toSign := fmt.Sprintf("%s:%s:%s:%s", http.MethodPost, u.Path, hex.EncodeToString(sum[:]), ts)
	h := sha256.Sum256([]byte(toSign))
	sig, err := rsa.SignPKCS1v15(rand.Reader, c.key, crypto.SHA256, h[:])
	if err != nil {
		t.Fatal(err)
	}
	c.seq++
	r, _ := http.NewRequest(http.MethodPost, endpoint, bytes.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("Accept", "application/json")
	r.Header.Set("CHANNEL-ID", "95221")
	r.Header.Set("X-PARTNER-ID", c.partnerID)
	r.Header.Set("X-TIMESTAMP", ts)
	r.Header.Set("X-EXTERNAL-ID", fmt.Sprintf("sdk%033d", c.seq))
	r.Header.Set("X-SIGNATURE", base64.StdEncoding.EncodeToString(sig))
	r.Header.Set("X-Debug-Mode", "true")
	res, err := http.DefaultClient.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	if err := json.Unmarshal(raw, resp); err != nil {
		t.Fatalf("%s: %d %s: %v", op, res.StatusCode, raw, err)
	}
	return res.StatusCode
}

// danaVerifyNotify is the SDK's webhook.ParseWebhook check: SHA256withRSA
// by DANA's key over POST:<relative path of the merchant's notify
// URL>:lowerhex(sha256(minified body)):X-TIMESTAMP.
func danaVerifyNotify(pub *rsa.PublicKey, path string, h http.Header, body []byte) error {
	var min bytes.Buffer
	if err := json.Compact(&min, body); err != nil {
		return err
	}
	sum := sha256.Sum256(min.Bytes())
	sts := "POST:" + path + ":" + hex.EncodeToString(sum[:]) + ":" + h.Get("X-TIMESTAMP")
	sig, err := base64.StdEncoding.DecodeString(h.Get("X-SIGNATURE"))
	if err != nil {
		return err
	}
	d := sha256.Sum256([]byte(sts))
	return rsa.VerifyPKCS1v15(pub, crypto.SHA256, d[:], sig)
}

// Fields of dana-go's models, the only ones the simulator may answer with.
var (
	danaCreateOrderResponse = fields("responseCode", "responseMessage", "referenceNo", "partnerReferenceNo", "webRedirectUrl", "additionalInfo", "externalOrderId")
	danaQueryResponse       = fields("responseCode", "responseMessage", "originalPartnerReferenceNo", "originalReferenceNo", "originalExternalId", "serviceCode",
		"latestTransactionStatus", "transactionStatusDesc", "originalResponseCode", "originalResponseMessage", "sessionId", "requestID",
		"transAmount", "amount", "feeAmount", "paidTime", "title", "additionalInfo")
	danaCancelResponse  = fields("responseCode", "responseMessage", "originalReferenceNo", "originalPartnerReferenceNo", "originalExternalId", "cancelTime", "transactionDate", "additionalInfo")
	danaRefundResponse  = fields("responseCode", "responseMessage", "originalReferenceNo", "originalPartnerReferenceNo", "originalExternalId", "originalCaptureNo", "refundNo", "partnerRefundNo", "refundAmount", "refundTime", "additionalInfo")
	danaNotifyRequest   = fields("originalPartnerReferenceNo", "originalReferenceNo", "originalExternalId", "merchantId", "subMerchantId", "amount", "latestTransactionStatus", "transactionStatusDesc", "createdTime", "finishedTime", "externalStoreId", "additionalInfo")
	danaNotifyAddInfo   = fields("paymentInfo", "shopInfo", "extendInfo", "extendInfo.closedReason", "paidTime")
	danaQueryStatuses   = fields("00", "01", "02", "05", "07") // DANA's query-payment docs
	danaNotifyStatuses  = fields("00", "05")                   // DANA's finish-notify docs
	danaQueryAddInfoKey = "closeReason"                        // QueryPaymentResponseAdditionalInfo.CloseReason
)

func fields(names ...string) map[string]bool {
	m := map[string]bool{}
	for _, n := range names {
		m[n] = true
	}
	return m
}

func onlyFields(t *testing.T, what string, got map[string]any, allowed map[string]bool) {
	t.Helper()
	for k := range got {
		if !allowed[k] {
			t.Errorf("%s carries %q, which DANA's model does not have", what, k)
		}
	}
}

// A client built the way DANA's SDK builds requests, configured with the
// simulator's base URL (<host>/sim/dana), works for every operation
// payrouter uses, and the simulator answers with DANA's documented fields
// and status codes only.
func TestDANASDKClientAgainstSimulator(t *testing.T) {
	partner, wallet, err := snapbi.GenerateSandboxKeys()
	if err != nil {
		t.Fatal(err)
	}
	type hook struct {
		h    http.Header
		body []byte
	}
	hooks := make(chan hook, 8)
	hookSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		hooks <- hook{r.Header.Clone(), b}
	}))
	defer hookSrv.Close()
	const merchant, partnerID = "216620000000000000000", "2020102900000000000001"
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	defer srv.Close()
	base := srv.URL + "/sim/dana"
	be := snapsim.NewDANA(snapsim.Options{ClientID: partnerID, PartnerPublicKey: &partner.PublicKey, WalletPrivateKey: wallet,
		Notifier: &sim.Notifier{URL: hookSrv.URL + "/v1.0/debit/notify"}, PublicURL: base, MerchantID: merchant})
	sim.New("dana", be).Mount(mux, "/sim/dana")
	c := &danaSDKClient{server: base, partnerID: partnerID, key: partner}
	w := snapsim.DANA()

	create := func(t *testing.T, ref string) map[string]any {
		t.Helper()
		var resp map[string]any
		if st := c.call(t, w.PaymentPath, danaOrder(ref, merchant, time.Now()), &resp); st != 200 || resp["responseCode"] != "2005400" {
			t.Fatalf("create order answered %d %v", st, resp)
		}
		onlyFields(t, "create-order response", resp, danaCreateOrderResponse)
		if resp["referenceNo"] == "" || resp["webRedirectUrl"] == "" {
			t.Fatalf("create order = %v, want referenceNo and webRedirectUrl", resp)
		}
		return resp
	}
	query := func(t *testing.T, ref string) map[string]any {
		t.Helper()
		var resp map[string]any
		if st := c.call(t, w.StatusPath, map[string]any{"originalPartnerReferenceNo": ref, "serviceCode": "54", "merchantId": merchant}, &resp); st != 200 {
			t.Fatalf("query answered %d %v", st, resp)
		}
		onlyFields(t, "query response", resp, danaQueryResponse)
		if s, _ := resp["latestTransactionStatus"].(string); !danaQueryStatuses[s] {
			t.Errorf("query latestTransactionStatus %q is not one DANA documents", s)
		}
		return resp
	}
	notify := func(t *testing.T) map[string]any {
		t.Helper()
		select {
		case hk := <-hooks:
			if err := danaVerifyNotify(&wallet.PublicKey, "/v1.0/debit/notify", hk.h, hk.body); err != nil {
				t.Fatalf("the SDK's notify check refuses the simulator's notify: %v", err)
			}
			var n map[string]any
			if err := json.Unmarshal(hk.body, &n); err != nil {
				t.Fatal(err)
			}
			onlyFields(t, "finish notify", n, danaNotifyRequest)
			if ai, ok := n["additionalInfo"].(map[string]any); ok {
				onlyFields(t, "finish notify additionalInfo", ai, danaNotifyAddInfo)
			}
			if s, _ := n["latestTransactionStatus"].(string); !danaNotifyStatuses[s] {
				t.Errorf("notify latestTransactionStatus %q is not one DANA documents", s)
			}
			return n
		case <-time.After(5 * time.Second):
			t.Fatal("no finish notify")
			return nil
		}
	}
	pay := func(t *testing.T, id string, o sim.Outcome) {
		t.Helper()
		if err := be.Pay(context.Background(), id, o); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("pay, notify, refund", func(t *testing.T) {
		ord := create(t, "sdk_paid_a1")
		if q := query(t, "sdk_paid_a1"); q["latestTransactionStatus"] != "01" {
			t.Errorf("new order status %v, want 01", q["latestTransactionStatus"])
		}
		pay(t, ord["referenceNo"].(string), sim.OutcomeSuccess)
		if n := notify(t); n["latestTransactionStatus"] != "00" || n["originalPartnerReferenceNo"] != "sdk_paid_a1" {
			t.Errorf("notify = %v", n)
		}
		var rf map[string]any
		st := c.call(t, w.RefundPath, map[string]any{"merchantId": merchant, "originalPartnerReferenceNo": "sdk_paid_a1",
			"partnerRefundNo": "sdk_rf_1", "refundAmount": map[string]string{"value": "10000.00", "currency": "IDR"}}, &rf)
		if st != 200 || rf["responseCode"] != "2005800" {
			t.Fatalf("refund answered %d %v", st, rf)
		}
		onlyFields(t, "refund response", rf, danaRefundResponse)
		if q := query(t, "sdk_paid_a1"); q["latestTransactionStatus"] != "00" {
			t.Errorf("status after a full refund %v, want 00 (DANA documents no 04)", q["latestTransactionStatus"])
		}
	})
	t.Run("cancel", func(t *testing.T) {
		create(t, "sdk_cancel_a1")
		var cr map[string]any
		if st := c.call(t, w.CancelPath, map[string]any{"originalPartnerReferenceNo": "sdk_cancel_a1", "merchantId": merchant, "reason": "test"}, &cr); st != 200 || cr["responseCode"] != "2005700" {
			t.Fatalf("cancel answered %d %v", st, cr)
		}
		onlyFields(t, "cancel response", cr, danaCancelResponse)
		q := query(t, "sdk_cancel_a1")
		ai, _ := q["additionalInfo"].(map[string]any)
		if q["latestTransactionStatus"] != "05" || ai[danaQueryAddInfoKey] != "CANCELLED" {
			t.Errorf("canceled order query = %v, want 05 with additionalInfo.closeReason CANCELLED", q)
		}
	})
	t.Run("expire and failure are closed orders", func(t *testing.T) {
		for i, o := range []sim.Outcome{sim.OutcomeExpire, sim.OutcomeFailure} {
			ref := fmt.Sprintf("sdk_close%d_a1", i)
			ord := create(t, ref)
			pay(t, ord["referenceNo"].(string), o)
			n := notify(t)
			ai, _ := n["additionalInfo"].(map[string]any)
			want := map[sim.Outcome]string{sim.OutcomeExpire: "EXPIRED", sim.OutcomeFailure: "CANCELLED"}[o]
			if n["latestTransactionStatus"] != "05" || ai["extendInfo.closedReason"] != want {
				t.Errorf("%s notify = %v, want 05 with additionalInfo.\"extendInfo.closedReason\" %s", o, n, want)
			}
		}
	})
	t.Run("required fields are required", func(t *testing.T) {
		for _, drop := range []string{"validUpTo", "urlParams", "additionalInfo.mcc", "additionalInfo.envInfo"} {
			body := danaOrder("sdk_missing_a1", merchant, time.Now())
			if drop == "additionalInfo.mcc" || drop == "additionalInfo.envInfo" {
				delete(body["additionalInfo"].(map[string]any), drop[len("additionalInfo."):])
			} else {
				delete(body, drop)
			}
			var resp map[string]any
			if st := c.call(t, w.PaymentPath, body, &resp); st != 400 || resp["responseCode"] != "4005402" {
				t.Errorf("create order without %s answered %d %v, want 400 4005402", drop, st, resp)
			}
		}
		body := danaOrder("sdk_late_a1", merchant, time.Now())
		body["validUpTo"] = snapbi.Timestamp(time.Now().Add(45 * time.Minute))
		var resp map[string]any
		if st := c.call(t, w.PaymentPath, body, &resp); st != 400 {
			t.Errorf("validUpTo 45 minutes ahead answered %d %v, want 400 (DANA allows 30)", st, resp)
		}
		if n := len(be.Ledger()); n != 4 {
			t.Errorf("ledger has %d orders, want the 4 valid ones", n)
		}
	})
	t.Run("no access-token endpoint", func(t *testing.T) {
		res, err := http.Post(base+"/v1.0/access-token/b2b.htm", "application/json", bytes.NewReader([]byte(`{"grantType":"client_credentials"}`)))
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 404 {
			t.Errorf("access-token endpoint answered %d, want 404: DANA's Payment Gateway has none", res.StatusCode)
		}
	})
}
