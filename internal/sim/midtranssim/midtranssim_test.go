package midtranssim_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/payrouter/payrouter/internal/sim"
	"github.com/payrouter/payrouter/internal/sim/midtranssim"
)

// The control API (mounted by the sim core) drives this backend: _pay with
// a JSON outcome, _ledger, and auth refusal on the wire API.
func TestControlAPI(t *testing.T) {
	got := make(chan []byte, 8)
	hooks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- b
	}))
	defer hooks.Close()
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	defer srv.Close()
	be := midtranssim.New(midtranssim.Options{ServerKey: "sk", PublicURL: srv.URL + "/sim/midtrans", Notifier: &sim.Notifier{URL: hooks.URL}})
	defer be.Flush()
	sim.New("midtrans", be).Mount(mux, "/sim/midtrans")

	call := func(method, path, key, body string) (int, map[string]any) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+"/sim/midtrans"+path, strings.NewReader(body))
		if key != "" {
			req.SetBasicAuth(key, "")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&m)
		return resp.StatusCode, m
	}
	charge := `{"payment_type":"bank_transfer","transaction_details":{"order_id":"o-1","gross_amount":20000},"bank_transfer":{"bank":"bni"}}`
	if code, m := call("POST", "/v2/charge", "wrong", charge); code != 401 || m["status_code"] != "401" {
		t.Fatalf("wrong key: %d %v, want 401", code, m)
	}
	code, m := call("POST", "/v2/charge", "sk", charge)
	if code != 200 || m["status_code"] != "201" || m["gross_amount"] != "20000.00" || m["transaction_status"] != "pending" {
		t.Fatalf("charge: %d %v", code, m)
	}
	id := m["transaction_id"].(string)
	if code, _ := call("POST", "/_pay/"+id, "", `{"outcome":"success"}`); code != 200 {
		t.Fatalf("_pay: %d", code)
	}
	if code, _ := call("POST", "/_pay/"+id, "", `{"outcome":"success"}`); code != 409 {
		t.Fatalf("second _pay: %d, want 409", code)
	}
	var sawSettlement bool
	for i := 0; i < 2 && !sawSettlement; i++ {
		var n map[string]string
		_ = json.Unmarshal(<-got, &n)
		if n["transaction_status"] == "settlement" {
			sawSettlement = true
			if want := midtranssim.Signature("o-1", n["status_code"], "20000.00", "sk"); n["signature_key"] != want {
				t.Fatalf("signature_key = %s, want %s", n["signature_key"], want)
			}
		}
	}
	if !sawSettlement {
		t.Fatalf("no settlement notification")
	}
	l := be.Ledger()
	if len(l) != 1 || l[0].ID != id || l[0].Reference != "o-1" || l[0].Amount != 20000 || l[0].Status != "settlement" {
		t.Fatalf("ledger = %+v", l)
	}
}
