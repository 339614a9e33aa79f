package httpapi

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/payrouter/payrouter"
)

const okCard = `"currency":"USD","method":"card","reference":"r-1","payment_method_tokens":{"stripe":"pm_card_visa"}`

func createErr(t *testing.T, body string) (*createBody, *payrouter.Error) {
	t.Helper()
	var b createBody
	err := decodeBytes([]byte(body), &b)
	if err == nil {
		_, err = b.toRequest("m1")
	}
	if err == nil {
		return &b, nil
	}
	var e *payrouter.Error
	if !errors.As(err, &e) {
		t.Fatalf("%s: untyped error %v", body, err)
	}
	return &b, e
}

func TestStrictCreateBodies(t *testing.T) {
	tests := []struct {
		name, body, code, param string
	}{
		{"duplicate amount", `{"amount":1,"amount":999999,` + okCard + `}`, "parameter_duplicate", "amount"},
		{"duplicate amount, same value", `{"amount":1,"amount":1,` + okCard + `}`, "parameter_duplicate", "amount"},
		{"case variant AMOUNT", `{"amount":1,"AMOUNT":999999,` + okCard + `}`, "parameter_unknown", "AMOUNT"},
		{"case variant only", `{"Amount":1,` + okCard + `}`, "parameter_unknown", "Amount"},
		{"escaped duplicate name", `{"amount":1,"\u0061mount":999999,` + okCard + `}`, "parameter_duplicate", "amount"},
		{"duplicate nested", `{"amount":1,` + okCard + `,"customer":{"email":"a@x.com","email":"b@x.com"}}`, "parameter_duplicate", "customer.email"},
		{"duplicate metadata key", `{"amount":1,` + okCard + `,"metadata":{"a":"1","a":"2"}}`, "parameter_duplicate", "metadata.a"},
		{"case variant metadata key", `{"amount":1,` + okCard + `,"metadata":{"cart":"1","Cart":"2"}}`, "parameter_duplicate", "metadata.Cart"},
		{"duplicate token provider", `{"amount":1,"currency":"USD","method":"card","reference":"r","payment_method_tokens":{"stripe":"a","stripe":"b"}}`, "parameter_duplicate", "payment_method_tokens.stripe"},
		{"case variant customer field", `{"amount":1,` + okCard + `,"customer":{"Email":"a@x.com"}}`, "parameter_unknown", "customer.Email"},
		{"float amount", `{"amount":1.0,` + okCard + `}`, "parameter_invalid", "amount"},
		{"exponent amount", `{"amount":1e3,` + okCard + `}`, "parameter_invalid", "amount"},
		{"string amount", `{"amount":"100",` + okCard + `}`, "parameter_invalid", "amount"},
		{"negative zero", `{"amount":-0,` + okCard + `}`, "parameter_invalid", "amount"},
		{"NUL escape in reference", `{"amount":1,"currency":"USD","method":"card","reference":"a\u0000b","payment_method_tokens":{"stripe":"pm"}}`, "parameter_invalid", "reference"},
		{"NUL escape in description", `{"amount":1,` + okCard + `,"description":"x\u0000"}`, "parameter_invalid", "description"},
		{"NUL escape in metadata value", `{"amount":1,` + okCard + `,"metadata":{"a":"\u0000"}}`, "parameter_invalid", "metadata.a"},
		{"NUL escape in metadata key", `{"amount":1,` + okCard + `,"metadata":{"a\u0000":"x"}}`, "parameter_invalid", "metadata"},
		{"NUL escape in customer name", `{"amount":1,` + okCard + `,"customer":{"name":"\u0000"}}`, "parameter_invalid", "customer.name"},
		{"raw NUL byte", "{\"amount\":1," + okCard + ",\"description\":\"x\x00\"}", "json_invalid", ""},
		{"invalid UTF-8", "{\"amount\":1," + okCard + ",\"description\":\"\xff\"}", "json_invalid", ""},
		{"card in reference", `{"amount":1,"currency":"USD","method":"card","reference":"4111111111111111","payment_method_tokens":{"stripe":"pm"}}`, "raw_card_data", "reference"},
		{"card in email", `{"amount":1,` + okCard + `,"customer":{"email":"4111.1111.1111.1111@example.com"}}`, "raw_card_data", "customer.email"},
		{"card in phone", `{"amount":1,` + okCard + `,"customer":{"phone":"4111 1111 1111 1111"}}`, "raw_card_data", "customer.phone"},
		{"card in return_url", `{"amount":1,` + okCard + `,"return_url":"https://shop.example.com/r?c=4111%201111%201111%201111"}`, "raw_card_data", "return_url"},
		{"card in metadata key", `{"amount":1,` + okCard + `,"metadata":{"4111111111111111":"x"}}`, "raw_card_data", "metadata"},
		{"card in token", `{"amount":1,"currency":"USD","method":"card","reference":"r","payment_method_tokens":{"stripe":"4242-4242-4242-4242"}}`, "raw_card_data", "payment_method_tokens.stripe"},
		{"card as unknown name", `{"amount":1,` + okCard + `,"4111111111111111":"x"}`, "raw_card_data", ""},
		{"card as unknown nested name", `{"amount":1,` + okCard + `,"customer":{"4111111111111111":"x"}}`, "raw_card_data", "customer"},
		{"fullwidth card in description", `{"amount":1,` + okCard + `,"description":"４１１１－１１１１－１１１１－１１１１"}`, "raw_card_data", "description"},
		{"unicode-escaped card", `{"amount":1,` + okCard + `,"description":"\u0034\u0031\u0031\u0031111111111111"}`, "raw_card_data", "description"},
		{"card in currency", `{"amount":1,"currency":"4111111111111111","method":"card","reference":"r","payment_method_tokens":{"stripe":"pm"}}`, "raw_card_data", "currency"},
		{"unknown field", `{"amount":1,` + okCard + `,"cardnumber":"x"}`, "parameter_unknown", "cardnumber"},
		{"wrong type", `{"amount":1,` + okCard + `,"metadata":{"a":1}}`, "parameter_invalid", "metadata.a"},
		{"customer not an object", `{"amount":1,` + okCard + `,"customer":"budi"}`, "parameter_invalid", "customer"},
		{"trailing data", `{"amount":1,` + okCard + `} {}`, "json_invalid", ""},
		{"not an object", `[1]`, "json_invalid", ""},
		{"empty", ` `, "body_missing", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, e := createErr(t, tt.body)
			if e == nil {
				t.Fatalf("accepted: amount=%d", b.Amount.n)
			}
			if e.Type != payrouter.ErrInvalidRequest || e.Code != tt.code || e.Param != tt.param {
				t.Errorf("got %s/%s param %q (%s), want %s param %q", e.Type, e.Code, e.Param, e.Message, tt.code, tt.param)
			}
			if payrouter.ContainsCardNumber(e.Message) || payrouter.ContainsCardNumber(e.Param) || strings.ContainsRune(e.Message, 0) {
				t.Errorf("the error echoes what it refuses: %+v", e)
			}
		})
	}
}

// Bodies merchants honestly send: long numeric references, timestamps,
// phone numbers, order ids.
func TestStrictCreateAccepts(t *testing.T) {
	for _, ref := range []string{"20261201123456", "20261201123456789", "1764590400123", "ORD-2026-000123456", "INV/2026/12/0000042", "order-1234567"} {
		body := fmt.Sprintf(`{"amount":150000,"currency":"IDR","method":"gopay","reference":%q,"description":"order 20261201123456",
			"customer":{"name":"Budi","email":"budi.20261201@example.com","phone":"+62 812-3456-7890"},
			"return_url":"https://shop.example.com/return?order=20261201123456&ts=1764590400123",
			"metadata":{"cart":"c-42","Order_20261201":"x","channel":"web"}}`, ref)
		_, e := createErr(t, body)
		if e != nil {
			t.Errorf("%s refused: %+v", ref, e)
		}
	}
	_, e := createErr(t, `{"amount":1000,`+okCard+`}`)
	if e != nil {
		t.Fatal(e)
	}
	// Other control characters and any Unicode text are fine; only NUL
	// is refused.
	b, e := createErr(t, `{"amount":1000,`+okCard+`,"description":"Kopi \u2615\tdua\n\u0001 caf\u00e9 ４２ 😀","customer":{"name":"Bùdi Śantoso"}}`)
	if e != nil {
		t.Fatalf("unicode text refused: %+v", e)
	}
	if want := "Kopi ☕\tdua\n\x01 café ４２ 😀"; b.Description != want {
		t.Errorf("description = %q, want %q", b.Description, want)
	}
}

func TestCaseVariantKeysInLargeMaps(t *testing.T) {
	var kv []string
	for i := range 40 {
		kv = append(kv, fmt.Sprintf(`"k%d":"v"`, i))
	}
	meta := strings.Join(kv, ",")
	if _, e := createErr(t, `{"amount":1,`+okCard+`,"metadata":{`+meta+`}}`); e != nil {
		t.Fatalf("40 distinct keys refused: %+v", e)
	}
	for _, twin := range []string{`"K3":"x"`, `"K39":"x"`} {
		_, e := createErr(t, `{"amount":1,`+okCard+`,"metadata":{`+meta+`,`+twin+`}}`)
		if e == nil || e.Code != "parameter_duplicate" {
			t.Errorf("%s after 40 keys: %+v, want parameter_duplicate", twin, e)
		}
	}
}

func TestStrictAmountBodies(t *testing.T) {
	tests := []struct{ body, code, param string }{
		{`{"amount":1,"amount":5000}`, "parameter_duplicate", "amount"},
		{`{"amount":100,"AMOUNT":5000}`, "parameter_unknown", "AMOUNT"},
		{`{"amount":100,"reason":"dup","reason":"x"}`, "parameter_duplicate", "reason"},
		{`{"reason":"a\u0000"}`, "parameter_invalid", "reason"},
		{`{"reason":"card 4111 1111 1111 1111 was stolen"}`, "raw_card_data", "reason"},
		{`{"Reason":"x"}`, "parameter_unknown", "Reason"},
	}
	for _, tt := range tests {
		var b amountBody
		err := decodeBytes([]byte(tt.body), &b)
		var e *payrouter.Error
		if !errors.As(err, &e) || e.Code != tt.code || e.Param != tt.param {
			t.Errorf("%s: got %v, want %s param %q", tt.body, err, tt.code, tt.param)
		}
	}
	var b amountBody
	if err := decodeBytes([]byte(`{"amount":500,"reason":"requested_by_customer 20261201123456"}`), &b); err != nil || b.Amount.n != 500 {
		t.Errorf("valid refund body: %v %+v", err, b)
	}
}

// FuzzDecodeCreate: whatever the body, decoding never panics, and what it
// accepts has an integer amount in range and no string carrying a NUL or a
// card number.
func FuzzDecodeCreate(f *testing.F) {
	for _, s := range []string{
		`{"amount":1000,` + okCard + `}`,
		`{"amount":1,"amount":999999,` + okCard + `}`,
		`{"amount":1,"AMOUNT":999999,` + okCard + `}`,
		`{"amount":150000,"currency":"IDR","method":"gopay","reference":"20261201123456","customer":{"phone":"+6281234567890"},"metadata":{"a":"b"}}`,
		`{"amount":1,` + okCard + `,"metadata":{"4111111111111111":"x"}}`,
		`{"amount":1,` + okCard + `,"description":"a\u0000b"}`,
		`{"amount":1e3}`, `{"amount":"100"}`, `[]`, `{`, `null`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var b createBody
		if err := decodeBytes(body, &b); err != nil {
			var e *payrouter.Error
			if !errors.As(err, &e) || e.Type != payrouter.ErrInvalidRequest {
				t.Fatalf("error is not invalid_request: %v", err)
			}
			if payrouter.ContainsCardNumber(e.Param) || strings.ContainsRune(e.Param, 0) {
				t.Fatalf("error echoes a card number or NUL in param: %q", e.Param)
			}
			return
		}
		req, err := b.toRequest("m1")
		if err != nil {
			return
		}
		if req.Amount <= 0 || req.Amount > payrouter.MaxAmount {
			t.Fatalf("amount %d accepted", req.Amount)
		}
		strs := []string{req.Reference, req.Description, req.ReturnURL, req.Country, req.Bank, req.Provider}
		if req.Customer != nil {
			strs = append(strs, req.Customer.Name, req.Customer.Email, req.Customer.Phone)
		}
		for k, v := range req.Metadata {
			strs = append(strs, k, v)
		}
		for k, v := range req.Tokens {
			strs = append(strs, k, v)
		}
		for _, s := range strs {
			if strings.ContainsRune(s, 0) || payrouter.ContainsCardNumber(s) || !utf8.ValidString(s) {
				t.Fatalf("accepted %q", s)
			}
		}
	})
}
