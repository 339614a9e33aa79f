package midtrans_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/payrouter/payrouter"
	"github.com/payrouter/payrouter/providers"
	"github.com/payrouter/payrouter/providers/midtrans"
)

// The fixtures in testdata are Midtrans' own documented examples, copied
// verbatim from the Midtrans technical documentation (docs.midtrans.com, whose
// markdown sources are kept in github.com/rizdaprasetya/mt-alt-doc):
//
//	charge_gopay.json       https://docs.midtrans.com/en/core-api/e-wallet (en/core-api/e-wallet.md, "Sample response")
//	charge_qris.json        https://docs.midtrans.com/en/other/faq/gopay-pos (en/other/faq/gopay-pos.md, "Charge API Response")
//	charge_bca_va.json      https://docs.midtrans.com/en/core-api/bank-transfer (en/core-api/bank-transfer.md, BCA)
//	charge_permata_va.json  https://docs.midtrans.com/en/core-api/bank-transfer (Permata)
//	charge_echannel.json    https://docs.midtrans.com/en/core-api/bank-transfer (Mandiri Bill)
//	charge_card_3ds.json    https://docs.midtrans.com/en/core-api/credit-card (en/core-api/credit-card.md, "Sample Response")
//	notification_*.json     https://docs.midtrans.com/en/after-payment/http-notification (en/after-payment/http-notification.md)
//
// They check the adapter against Midtrans' wire format, independently of
// the simulator.

func fixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDocumentedChargeResponses(t *testing.T) {
	tests := []struct {
		file   string
		method payrouter.Method
		bank   string
		want   payrouter.NextAction
		id     string
	}{
		{"charge_gopay.json", payrouter.MethodGoPay, "", payrouter.NextAction{Type: "deeplink",
			URL: "https://simulator.sandbox.midtrans.com/gopay/ui/checkout?referenceid=Y0xwjoQ9uy&callback_url=someapps%3A%2F%2Fcallback%3Forder_id%3Dorder-101h-1570513296"},
			"231c79c5-e39e-4993-86da-cadcaee56c1d"},
		{"charge_qris.json", payrouter.MethodQRIS, "", payrouter.NextAction{Type: "qr_code",
			URL:      "https://api.midtrans.com/v2/qris/1015a919-b03f-450a-bc85-b38202a79a96/qr-code",
			QRString: "00020101021226620014COM.GO-JEK.WWW011993600914349052630340210G4905263030303UKE51440014ID.CO.QRIS.WWW0215AID0607336128660303UKE5204341453033605802ID5904Test6007BANDUNG6105402845409789000.0062475036c032f87c-f773-4619-aefa-675e1f06f9210703A016304A623"},
			"1015a919-b03f-450a-bc85-b38202a79a96"},
		{"charge_bca_va.json", payrouter.MethodBankTransfer, "bca", payrouter.NextAction{Type: "bank_transfer", VANumber: "812785002530231", Bank: "bca"},
			"be03df7d-2f97-4c8c-a53c-8959f1b67295"},
		{"charge_permata_va.json", payrouter.MethodBankTransfer, "permata", payrouter.NextAction{Type: "bank_transfer", VANumber: "850003072869607", Bank: "permata"},
			"035ca76c-b814-4264-9e63-68142351df83"},
		{"charge_echannel.json", payrouter.MethodBankTransfer, "mandiri", payrouter.NextAction{Type: "bank_transfer", VANumber: "778347787706", BillerCode: "70012", Bank: "mandiri"},
			"abb2d93f-dae3-4183-936d-4145423ad72f"},
		{"charge_card_3ds.json", payrouter.MethodCard, "", payrouter.NextAction{Type: "redirect",
			URL: "https://api.sandbox.veritrans.co.id/v2/token/rba/redirect/48111111-1114-0bb563a9-ebea-41f7-ae9f-d99ec5f9700a"},
			"0bb563a9-ebea-41f7-ae9f-d99ec5f9700a"},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			body := fixture(t, tt.file)
			var sentPath string
			var sent map[string]any
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				sentPath = r.URL.Path
				_ = json.NewDecoder(r.Body).Decode(&sent)
				w.Write(body)
			}))
			defer srv.Close()
			p, _ := midtrans.New(midtrans.Config{ServerKey: serverKey, BaseURL: srv.URL + "/prefix"})
			req := authReq(tt.method, 44000)
			req.Bank, req.Token = tt.bank, "tok"
			res, err := p.Authorize(context.Background(), req)
			if err != nil {
				t.Fatalf("Authorize: %v", err)
			}
			if sentPath != "/prefix/v2/charge" {
				t.Fatalf("path = %q, want /prefix/v2/charge", sentPath)
			}
			if td, _ := sent["transaction_details"].(map[string]any); td["gross_amount"] != float64(44000) || td["order_id"] != req.OrderID() {
				t.Fatalf("transaction_details sent = %v", sent["transaction_details"])
			}
			if res.Status != payrouter.StatusRequiresAction || res.ProviderPaymentID != tt.id {
				t.Fatalf("result = %+v, want requires_action %s", res, tt.id)
			}
			got := *res.NextAction
			got.ExpiresAt = nil
			if got != tt.want {
				t.Fatalf("next_action =\n %+v, want\n %+v", got, tt.want)
			}
		})
	}
}

// resign replaces the documented signature_key (made with Midtrans' own
// server key, which is not public) by one made with the test key over the
// fixture's exact order_id, status_code and gross_amount strings.
func resign(t *testing.T, body []byte) []byte {
	t.Helper()
	var n struct {
		OrderID      string `json:"order_id"`
		StatusCode   string `json:"status_code"`
		GrossAmount  string `json:"gross_amount"`
		SignatureKey string `json:"signature_key"`
	}
	if err := json.Unmarshal(body, &n); err != nil || n.SignatureKey == "" {
		t.Fatalf("fixture: %v", err)
	}
	return []byte(strings.Replace(string(body), n.SignatureKey, midtrans.SignatureKey(n.OrderID, n.StatusCode, n.GrossAmount, serverKey), 1))
}

func TestDocumentedNotifications(t *testing.T) {
	p, _ := midtrans.New(midtrans.Config{Name: "midtrans", ServerKey: serverKey})
	tests := []struct {
		file   string
		want   payrouter.Status
		order  string
		id     string
		amount int64
	}{
		{"notification_card_capture.json", payrouter.StatusSucceeded, "Postman-1578568851", "57d5293c-e65f-4a29-95e4-5959c3fa335b", 10000},
		{"notification_gopay_settlement.json", payrouter.StatusSucceeded, "Order-5100", "513f1f01-c9da-474c-9fc9-d5c64364b709", 154600},
		{"notification_qris_settlement.json", payrouter.StatusSucceeded, "qris-01", "513f1f01-c9da-474c-9fc9-d5c64364b709", 5539},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			raw := fixture(t, tt.file)
			// As documented, with Midtrans' unknown key: refused.
			if _, err := p.ParseWebhook(http.Header{}, raw, time.Now()); !providers.IsSignatureError(err) {
				t.Fatalf("documented signature with another server key: error = %v, want signature error", err)
			}
			n, err := p.ParseWebhook(http.Header{}, resign(t, raw), time.Now())
			if err != nil {
				t.Fatalf("ParseWebhook: %v", err)
			}
			if n.Status != tt.want || n.OrderID != tt.order || n.ProviderPaymentID != tt.id || n.Amount != tt.amount || n.Currency != "IDR" || n.Kind != providers.KindPayment {
				t.Fatalf("notification = %+v", n)
			}
		})
	}
}

// The example of the Midtrans signature documentation
// (https://docs.midtrans.com/reference/receiving-notifications), hashed with
// sha512sum independently of this code.
func TestSignatureKeyVector(t *testing.T) {
	got := midtrans.SignatureKey("1111", "200", "100000.00", "askvnoibnosifnboseofinbofinfgbiufglnbfg")
	want := "edc076b21793ebe3e17926350f5b8ae67d902fe657b3d0aa31b932d5c127e2375d308a2bc94f3265ac2d80a1f181a79b997ac178a236fcff35af263fc4d4c231"
	if got != want {
		t.Fatalf("SignatureKey = %s, want %s", got, want)
	}
}

func TestMapStatus(t *testing.T) {
	tests := []struct {
		tx, fraud string
		want      payrouter.Status
	}{
		{"pending", "accept", payrouter.StatusRequiresAction},
		{"authorize", "accept", payrouter.StatusAuthorized},
		{"authorize", "", payrouter.StatusAuthorized},
		{"authorize", "challenge", payrouter.StatusProcessing},
		{"capture", "accept", payrouter.StatusSucceeded},
		{"capture", "challenge", payrouter.StatusProcessing},
		{"capture", "deny", payrouter.StatusFailed},
		{"settlement", "accept", payrouter.StatusSucceeded},
		{"deny", "accept", payrouter.StatusFailed},
		{"cancel", "accept", payrouter.StatusCanceled},
		{"expire", "", payrouter.StatusExpired},
		{"failure", "", payrouter.StatusFailed},
		{"refund", "accept", payrouter.StatusRefunded},
		{"partial_refund", "accept", payrouter.StatusPartiallyRefunded},
		{"chargeback", "accept", ""},
		{"partial_chargeback", "accept", ""},
		{"", "", ""},
	}
	for _, tt := range tests {
		if got := midtrans.MapStatus(tt.tx, tt.fraud); got != tt.want {
			t.Errorf("MapStatus(%q, %q) = %q, want %q", tt.tx, tt.fraud, got, tt.want)
		}
	}
}

func TestNotificationAmounts(t *testing.T) {
	p, _ := midtrans.New(midtrans.Config{ServerKey: serverKey})
	tests := []struct {
		gross   string
		want    int64
		wantErr bool
	}{
		{"100000.00", 100000, false},
		{"5539.00", 5539, false},
		{"1.00", 1, false},
		{"100000.50", 0, true}, // half a rupiah: not representable
		{"1e5", 0, true},
		{"-100.00", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.gross, func(t *testing.T) {
			body, _ := json.Marshal(map[string]string{"order_id": "o", "status_code": "200", "gross_amount": tt.gross,
				"transaction_status": "settlement", "signature_key": midtrans.SignatureKey("o", "200", tt.gross, serverKey)})
			n, err := p.ParseWebhook(http.Header{}, body, time.Now())
			if (err != nil) != tt.wantErr {
				t.Fatalf("error = %v, want error %v", err, tt.wantErr)
			}
			if err == nil && n.Amount != tt.want {
				t.Fatalf("amount = %d, want %d", n.Amount, tt.want)
			}
		})
	}
}

func FuzzParseWebhook(f *testing.F) {
	p, _ := midtrans.New(midtrans.Config{ServerKey: serverKey})
	for _, name := range []string{"notification_card_capture.json", "notification_gopay_settlement.json", "notification_qris_settlement.json"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		f.Add(resignF(b))
	}
	f.Add([]byte(`{"order_id":"o","status_code":"200","gross_amount":"1.00","signature_key":"` + midtrans.SignatureKey("o", "200", "1.00", serverKey) + `","refunds":[{"refund_amount":"x"}],"transaction_status":"refund"}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, body []byte) {
		n, err := p.ParseWebhook(http.Header{}, body, time.Now())
		if err == nil && (n == nil || n.OrderID == "") {
			t.Fatalf("accepted notification without order id: %+v", n)
		}
	})
}

// resignF is resign for a fuzz seed.
func resignF(body []byte) []byte {
	var n struct {
		OrderID      string `json:"order_id"`
		StatusCode   string `json:"status_code"`
		GrossAmount  string `json:"gross_amount"`
		SignatureKey string `json:"signature_key"`
	}
	_ = json.Unmarshal(body, &n)
	return []byte(strings.Replace(string(body), n.SignatureKey, midtrans.SignatureKey(n.OrderID, n.StatusCode, n.GrossAmount, serverKey), 1))
}

// FuzzWebhookTrust: whatever a correctly signed notification says, it is
// only a claim to confirm (ConfirmByStatus), and its dedupe id depends on
// the signed fields and the claim alone: unsigned details (transaction id,
// times) cannot mint new ids, another signed amount never shares one.
func FuzzWebhookTrust(f *testing.F) {
	p, _ := midtrans.New(midtrans.Config{ServerKey: serverKey})
	f.Add("order-1", "200", "10000.00", "settlement", "accept", "tx-1")
	f.Add("order-1", "201", "10000.00", "expire", "", "tx-1")
	f.Add("o", "200", "1.50", "refund", "deny", "")
	f.Add("", "", "", "", "", "")
	f.Fuzz(func(t *testing.T, order, code, gross, status, fraud, txid string) {
		body := func(gross, txid, when string) []byte {
			b, _ := json.Marshal(map[string]string{"order_id": order, "status_code": code, "gross_amount": gross,
				"transaction_status": status, "fraud_status": fraud, "transaction_id": txid, "transaction_time": when,
				"settlement_time": when, "signature_key": midtrans.SignatureKey(order, code, gross, serverKey)})
			return b
		}
		n, err := p.ParseWebhook(http.Header{}, body(gross, txid, "2026-12-01 10:00:00"), time.Now())
		if err != nil {
			return
		}
		if !n.ConfirmByStatus {
			t.Fatalf("verified notification not marked for confirmation: %+v", n)
		}
		m, err := p.ParseWebhook(http.Header{}, body(gross, txid+"x", "2026-12-01 11:00:00"), time.Now())
		if err != nil || m.EventID != n.EventID {
			t.Fatalf("unsigned transaction id/time changed the dedupe id: %+v vs %+v (%v)", n, m, err)
		}
		if o, err := p.ParseWebhook(http.Header{}, body(gross+"0", txid, "2026-12-01 10:00:00"), time.Now()); err == nil && o.EventID == n.EventID {
			t.Fatalf("gross_amount %q and %q share a dedupe id", gross, gross+"0")
		}
	})
}
