package app_test

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver to make and read test schemas

	"github.com/payrouter/payrouter"
	"github.com/payrouter/payrouter/internal/app/apptest"
	"github.com/payrouter/payrouter/internal/config"
)

// strictStore starts a sandbox on one store and returns a dump of
// everything that store holds, as text, to search for what must never be
// stored.
type strictStore struct {
	name  string
	start func(t *testing.T) (*apptest.TestInstance, func() string)
}

func strictStores() []strictStore {
	return []strictStore{
		{"sqlite", func(t *testing.T) (*apptest.TestInstance, func() string) {
			dsn := filepath.Join(t.TempDir(), "p.db")
			ti := apptest.StartSandbox(t, dsn, nil)
			return ti, func() string {
				var all []byte
				for _, f := range []string{dsn, dsn + "-wal", dsn + "-journal"} {
					b, _ := os.ReadFile(f)
					all = append(all, b...)
				}
				return string(all)
			}
		}},
		{"postgres", func(t *testing.T) (*apptest.TestInstance, func() string) {
			dsn := os.Getenv("PAYROUTER_TEST_POSTGRES")
			if dsn == "" {
				t.Skip("PAYROUTER_TEST_POSTGRES is unset; set it (e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable) to run the strict-input tests on PostgreSQL")
			}
			admin, err := sql.Open("pgx", dsn)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { admin.Close() })
			b := make([]byte, 6)
			_, _ = rand.Read(b)
			schema := "payrouter_strict_" + hex.EncodeToString(b)
			if _, err := admin.Exec(`CREATE SCHEMA ` + schema); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _, _ = admin.Exec(`DROP SCHEMA ` + schema + ` CASCADE`) })
			u, err := url.Parse(dsn)
			if err != nil {
				t.Fatal(err)
			}
			q := u.Query()
			q.Set("search_path", schema)
			u.RawQuery = q.Encode()
			ti := apptest.StartSandbox(t, u.String(), func(c *config.Config) { c.Store.Driver = "postgres" })
			return ti, func() string {
				rows, err := admin.Query(`SELECT table_name FROM information_schema.tables WHERE table_schema = $1`, schema)
				if err != nil {
					t.Fatal(err)
				}
				var tables []string
				for rows.Next() {
					var n string
					_ = rows.Scan(&n)
					tables = append(tables, n)
				}
				rows.Close()
				var all strings.Builder
				for _, tb := range tables {
					var s sql.NullString
					if err := admin.QueryRow(`SELECT string_agg(t::text, E'\n') FROM ` + schema + `.` + tb + ` t`).Scan(&s); err != nil {
						t.Fatal(err)
					}
					all.WriteString(s.String)
				}
				return all.String()
			}
		}},
	}
}

type apiError struct {
	Error payrouter.Error `json:"error"`
}

// Every class of bad input is 400 with the parameter named, also on retry
// (a NUL was a 500 on PostgreSQL, every time), and nothing changes: no
// charge at the provider, no payment, no capture or refund, and no card
// number anywhere in the store.
func TestStrictInputChangesNothing(t *testing.T) {
	for _, st := range strictStores() {
		t.Run(st.name, func(t *testing.T) {
			ti, dump := st.start(t)
			code, b := ti.Do(t, "POST", "/v1/payments", `{"amount":1999,"currency":"USD","method":"card","reference":"keep-1","capture":"manual","payment_method_tokens":{"stripe":"pm_card_visa"}}`)
			if code != 201 {
				t.Fatalf("create: %d %s", code, b)
			}
			keep := decodePayment(t, b)
			if keep.Status != payrouter.StatusAuthorized {
				t.Fatalf("status %s", keep.Status)
			}
			const tok = `"payment_method_tokens":{"stripe":"pm_card_visa"}`
			create := func(extra string) string {
				return `{"amount":1000,"currency":"USD","method":"card","reference":"bad-1",` + tok + extra + `}`
			}
			pans := []string{"4111111111111111", "4111 1111 1111 1111", "5555.5555.5555.4444", "3782-822463-10005", "４１１１１１１１１１１１１１１１", "4111%201111%201111%201111"}
			cases := []struct {
				name, path, body, code, param string
			}{
				{"duplicate amount", "/v1/payments", `{"amount":1,"amount":999999,"currency":"USD","method":"card","reference":"bad-1",` + tok + `}`, "parameter_duplicate", "amount"},
				{"case-variant amount", "/v1/payments", `{"amount":1,"AMOUNT":999999,"currency":"USD","method":"card","reference":"bad-1",` + tok + `}`, "parameter_unknown", "AMOUNT"},
				{"float amount", "/v1/payments", `{"amount":1.0,"currency":"USD","method":"card","reference":"bad-1",` + tok + `}`, "parameter_invalid", "amount"},
				{"NUL in reference", "/v1/payments", `{"amount":1000,"currency":"USD","method":"card","reference":"bad\u00001",` + tok + `}`, "parameter_invalid", "reference"},
				{"NUL in description", "/v1/payments", create(`,"description":"x\u0000y"`), "parameter_invalid", "description"},
				{"NUL in metadata value", "/v1/payments", create(`,"metadata":{"a":"\u0000"}`), "parameter_invalid", "metadata.a"},
				{"NUL in metadata key", "/v1/payments", create(`,"metadata":{"\u0000":"a"}`), "parameter_invalid", "metadata"},
				{"NUL in customer", "/v1/payments", create(`,"customer":{"name":"Budi\u0000"}`), "parameter_invalid", "customer.name"},
				{"raw NUL byte", "/v1/payments", create(",\"description\":\"x\x00\""), "json_invalid", ""},
				{"card in reference", "/v1/payments", `{"amount":1000,"currency":"USD","method":"card","reference":"` + pans[0] + `",` + tok + `}`, "raw_card_data", "reference"},
				{"card in description", "/v1/payments", create(`,"description":"card ` + pans[1] + ` exp 12/28"`), "raw_card_data", "description"},
				{"card in email", "/v1/payments", create(`,"customer":{"email":"` + pans[2] + `@example.com"}`), "raw_card_data", "customer.email"},
				{"card in phone", "/v1/payments", create(`,"customer":{"phone":"` + pans[3] + `"}`), "raw_card_data", "customer.phone"},
				{"card in return_url", "/v1/payments", create(`,"return_url":"https://shop.example.com/r?c=` + pans[5] + `"`), "raw_card_data", "return_url"},
				{"card in metadata key", "/v1/payments", create(`,"metadata":{"` + pans[0] + `":"x"}`), "raw_card_data", "metadata"},
				{"fullwidth card in metadata", "/v1/payments", create(`,"metadata":{"note":"` + pans[4] + `"}`), "raw_card_data", "metadata.note"},
				{"card as token", "/v1/payments", `{"amount":1000,"currency":"USD","method":"card","reference":"bad-1","payment_method_tokens":{"stripe":"` + pans[1] + `"}}`, "raw_card_data", "payment_method_tokens.stripe"},
				{"explain duplicate", "/v1/routing/explain", `{"amount":1,"amount":9,"currency":"USD","method":"card","reference":"x",` + tok + `}`, "parameter_duplicate", "amount"},
				{"explain NUL", "/v1/routing/explain", create(`,"description":"\u0000"`), "parameter_invalid", "description"},
				{"explain card", "/v1/routing/explain", create(`,"metadata":{"` + pans[0] + `":"x"}`), "raw_card_data", "metadata"},
				{"capture duplicate", "/v1/payments/" + keep.ID + "/capture", `{"amount":1,"amount":1999}`, "parameter_duplicate", "amount"},
				{"capture case variant", "/v1/payments/" + keep.ID + "/capture", `{"amount":1,"Amount":1999}`, "parameter_unknown", "Amount"},
				{"capture string amount", "/v1/payments/" + keep.ID + "/capture", `{"amount":"100"}`, "parameter_invalid", "amount"},
				{"refund NUL reason", "/v1/payments/" + keep.ID + "/refunds", `{"amount":100,"reason":"dup\u0000"}`, "parameter_invalid", "reason"},
				{"refund card reason", "/v1/payments/" + keep.ID + "/refunds", `{"amount":100,"reason":"card ` + pans[0] + `"}`, "raw_card_data", "reason"},
				{"refund duplicate", "/v1/payments/" + keep.ID + "/refunds", `{"amount":100,"amount":1999}`, "parameter_duplicate", "amount"},
			}
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					for try, hdr := range [][]string{nil, {"Idempotency-Key", "strict-" + c.name}, {"Idempotency-Key", "strict-" + c.name}} {
						code, b := ti.Do(t, "POST", c.path, c.body, hdr...)
						var e apiError
						_ = json.Unmarshal(b, &e)
						if code != 400 || e.Error.Type != payrouter.ErrInvalidRequest || e.Error.Code != c.code || e.Error.Param != c.param {
							t.Fatalf("try %d: %d %s, want 400 %s param %q", try, code, b, c.code, c.param)
						}
						for _, p := range pans {
							if strings.Contains(string(b), p) {
								t.Fatalf("the error echoes the card number: %s", b)
							}
						}
					}
				})
			}

			code, b = ti.Do(t, "POST", "/v1/payments", create(""), "Idempotency-Key", pans[1])
			if e := (apiError{}); code != 400 || json.Unmarshal(b, &e) != nil || e.Error.Code != "raw_card_data" || e.Error.Param != "Idempotency-Key" {
				t.Errorf("card number as Idempotency-Key: %d %s", code, b)
			}

			// NUL or invalid UTF-8 in a path or query was a 500 on PostgreSQL.
			for _, p := range []struct{ method, path, param string }{
				{"GET", "/v1/payments/pay_%00", ""}, {"GET", "/v1/payments/pay_%ff", ""},
				{"GET", "/v1/payments?reference=a%00", "reference"}, {"GET", "/v1/payments?reference=%c3", "reference"},
				{"POST", "/v1/payments/pay_%00/capture", ""}, {"POST", "/v1/payments/" + keep.ID + "/refunds?x%00=1", ""},
			} {
				for try := 0; try < 2; try++ {
					code, b := ti.Do(t, p.method, p.path, `{}`)
					var e apiError
					_ = json.Unmarshal(b, &e)
					if code != 400 || e.Error.Code != "parameter_invalid" || e.Error.Param != p.param {
						t.Errorf("%s %s: %d %s, want 400 parameter_invalid param %q", p.method, p.path, code, b, p.param)
					}
				}
			}
			if code, b := ti.Do(t, "GET", "/v1/payments?reference=caf%C3%A9", nil); code != 200 {
				t.Errorf("valid UTF-8 query refused: %d %s", code, b)
			}

			// Nothing changed.
			if l := ledger(t, ti, "stripe"); len(l) != 1 || l[0].Amount != 1999 {
				t.Errorf("stripe ledger: %+v, want only keep-1", l)
			}
			_, b = ti.Do(t, "GET", "/v1/payments/"+keep.ID, nil)
			if p := decodePayment(t, b); p.Status != payrouter.StatusAuthorized || p.AmountCaptured != 0 || len(p.Refunds) != 0 {
				t.Errorf("keep-1 changed: %s", b)
			}
			_, b = ti.Do(t, "GET", "/v1/payments", nil)
			var list struct{ Data []payrouter.Payment }
			_ = json.Unmarshal(b, &list)
			if len(list.Data) != 1 {
				t.Errorf("payments: %d, want 1: %s", len(list.Data), b)
			}
			all := dump()
			if !strings.Contains(all, "keep-1") {
				t.Fatalf("the store dump does not show the stored payment; the search below would prove nothing")
			}
			for _, p := range append(pans, "5555555555554444", "378282246310005") {
				if strings.Contains(all, p) {
					t.Errorf("card number %q is in the store", p)
				}
			}

			// The other direction: what merchants honestly send passes.
			code, b = ti.Do(t, "POST", "/v1/payments", `{"amount":150000,"currency":"IDR","method":"qris","reference":"20261201123456",
				"description":"order 20261201123456, 2 items","customer":{"name":"Budi","email":"budi.20261201@example.com","phone":"+62 812-3456-7890"},
				"return_url":"https://shop.example.com/return?order=20261201123456&ts=1764590400123","metadata":{"order_id":"ORD-2026-000123456","ts":"1764590400123"}}`)
			if code != 201 {
				t.Errorf("honest create refused: %d %s", code, b)
			}
			code, b = ti.Do(t, "POST", "/v1/payments/"+keep.ID+"/capture", `{"amount":1000}`)
			if code != 200 {
				t.Errorf("capture: %d %s", code, b)
			}
		})
	}
}

// A webhook body trickled a byte at a time by 30 unauthenticated
// connections: each is cut with 408 within server.read_timeout while the
// API keeps answering.
func TestSlowWebhookBodiesAreCut(t *testing.T) {
	const timeout = 2 * time.Second
	ti := apptest.StartSandbox(t, filepath.Join(t.TempDir(), "p.db"), func(c *config.Config) {
		c.Server.ReadTimeout = config.Duration(timeout)
	})
	addr := strings.TrimPrefix(ti.URL, "http://")
	stop := make(chan struct{})
	defer close(stop)
	start := time.Now()
	results := make(chan string, 30)
	var wg sync.WaitGroup
	for i := 0; i < 30; i++ {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(c, "POST /webhooks/stripe HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 4000\r\n\r\n{")
		go func() {
			tk := time.NewTicker(250 * time.Millisecond)
			defer tk.Stop()
			for {
				select {
				case <-stop:
					return
				case <-tk.C:
					if _, err := c.Write([]byte(" ")); err != nil {
						return
					}
				}
			}
		}()
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Close()
			_ = c.SetReadDeadline(time.Now().Add(timeout + 20*time.Second))
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				results <- "no response: " + err.Error()
				return
			}
			b, _ := io.ReadAll(resp.Body)
			results <- fmt.Sprintf("%d %s", resp.StatusCode, bytes.TrimSpace(b))
		}()
	}
	code, b := ti.Do(t, "GET", "/v1/payments", nil)
	if code != 200 {
		t.Fatalf("API while slow bodies are open: %d %s", code, b)
	}
	if len(results) > 0 {
		t.Fatalf("a slow connection was answered before the API request: %s", <-results)
	}
	wg.Wait()
	close(results)
	for r := range results {
		if !strings.HasPrefix(r, "408 ") || !strings.Contains(r, "body_timeout") {
			t.Errorf("slow webhook: %s, want 408 body_timeout", r)
		}
	}
	if el := time.Since(start); el > timeout+10*time.Second {
		t.Errorf("slow webhooks cut after %s, bound %s", el, timeout)
	}
}
