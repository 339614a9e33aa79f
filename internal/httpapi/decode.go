package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"

	"github.com/payrouter/payrouter"
	"github.com/payrouter/payrouter/router"
)

// maxBody bounds request bodies: a payment is a few hundred bytes.
const maxBody = 64 << 10

// amount is a JSON amount in minor units, decoded without a float.
type amount struct {
	n   int64
	set bool
	err error
}

func (a *amount) UnmarshalJSON(b []byte) error {
	a.set = true
	a.n, a.err = payrouter.ParseAmount(b)
	return nil // reported with its param by validate
}

type createBody struct {
	Amount              amount              `json:"amount"`
	Currency            string              `json:"currency"`
	Method              string              `json:"method"`
	Reference           string              `json:"reference"`
	Description         string              `json:"description"`
	Customer            *payrouter.Customer `json:"customer"`
	Country             string              `json:"country"`
	Capture             string              `json:"capture"`
	ReturnURL           string              `json:"return_url"`
	Metadata            map[string]string   `json:"metadata"`
	PaymentMethodTokens map[string]string   `json:"payment_method_tokens"`
	Bank                string              `json:"bank"`
	Provider            string              `json:"provider"`
	Checkout            string              `json:"checkout"`
}

// decodeJSON decodes one JSON object strictly: unknown fields, wrong types,
// trailing data and oversize bodies are invalid_request errors naming the
// parameter.
func decodeJSON(r io.Reader, v any) error {
	body, err := io.ReadAll(io.LimitReader(r, maxBody+1))
	if err != nil {
		return &payrouter.Error{Type: payrouter.ErrInvalidRequest, Code: "body_unreadable", Message: "could not read the request body"}
	}
	return decodeBytes(body, v)
}

func decodeBytes(body []byte, v any) error {
	if len(body) > maxBody {
		return &payrouter.Error{Type: payrouter.ErrInvalidRequest, Code: "body_too_large", Message: fmt.Sprintf("request body exceeds %d bytes", maxBody)}
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return &payrouter.Error{Type: payrouter.ErrInvalidRequest, Code: "body_missing", Message: "a JSON object body is required"}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &se):
			return &payrouter.Error{Type: payrouter.ErrInvalidRequest, Code: "json_invalid", Message: fmt.Sprintf("malformed JSON at byte %d", se.Offset)}
		case errors.As(err, &te):
			param := te.Field
			return &payrouter.Error{Type: payrouter.ErrInvalidRequest, Code: "parameter_invalid", Param: param,
				Message: fmt.Sprintf("%s must be %s, not %s", param, jsonKind(te.Type.Kind().String()), te.Value)}
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			// encoding/json has no typed error for this one.
			f := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
			return &payrouter.Error{Type: payrouter.ErrInvalidRequest, Code: "parameter_unknown", Param: f, Message: "unknown parameter " + f}
		}
		return &payrouter.Error{Type: payrouter.ErrInvalidRequest, Code: "json_invalid", Message: "malformed JSON body"}
	}
	if dec.More() {
		return &payrouter.Error{Type: payrouter.ErrInvalidRequest, Code: "json_invalid", Message: "unexpected data after the JSON object"}
	}
	return nil
}

func jsonKind(k string) string {
	switch k {
	case "map", "struct":
		return "an object"
	case "slice":
		return "an array"
	case "int64", "int":
		return "an integer"
	}
	return "a " + k
}

var (
	countryRe = regexp.MustCompile(`^[A-Z]{2}$`)
	digitRun  = regexp.MustCompile(`\d[\d -]{11,}\d`)
	banks     = map[string]bool{"bca": true, "bni": true, "bri": true, "permata": true, "mandiri": true, "cimb": true, "bsi": true}
)

// toRequest validates a create body.
func (b *createBody) toRequest(merchantID string) (*router.CreateRequest, error) {
	if !b.Amount.set {
		return nil, payrouter.InvalidParam("amount", "is required")
	}
	if b.Amount.err != nil {
		return nil, payrouter.InvalidParam("amount", "%s", b.Amount.err.Error())
	}
	if b.Currency == "" {
		return nil, payrouter.InvalidParam("currency", "is required")
	}
	cur, err := payrouter.ParseCurrency(b.Currency)
	if err != nil {
		return nil, payrouter.InvalidParam("currency", "%q is not a supported currency", b.Currency)
	}
	if b.Checkout != "" && b.Checkout != payrouter.CheckoutHosted {
		return nil, payrouter.InvalidParam("checkout", "must be hosted (or absent)")
	}
	hosted := b.Checkout == payrouter.CheckoutHosted
	m := payrouter.Method(b.Method)
	if !m.Valid() && !(hosted && m == "") {
		return nil, payrouter.InvalidParam("method", "must be one of card, gopay, ovo, dana, shopeepay, qris, bank_transfer")
	}
	if b.Reference == "" || len(b.Reference) > 128 {
		return nil, payrouter.InvalidParam("reference", "is required (1 to 128 characters)")
	}
	capture := payrouter.CaptureMode(b.Capture)
	if capture == "" {
		capture = payrouter.CaptureAutomatic
	}
	if capture != payrouter.CaptureAutomatic && capture != payrouter.CaptureManual {
		return nil, payrouter.InvalidParam("capture", "must be automatic or manual")
	}
	if b.Country != "" && !countryRe.MatchString(b.Country) {
		return nil, payrouter.InvalidParam("country", "must be an ISO 3166 alpha-2 code like ID")
	}
	if m == payrouter.MethodBankTransfer && !banks[b.Bank] && !(hosted && b.Bank == "") {
		return nil, payrouter.InvalidParam("bank", "must be one of bca, bni, bri, permata, mandiri, cimb, bsi for bank_transfer")
	}
	if m != payrouter.MethodBankTransfer && b.Bank != "" {
		return nil, payrouter.InvalidParam("bank", "applies only to bank_transfer")
	}
	if len(b.Metadata) > 50 {
		return nil, payrouter.InvalidParam("metadata", "may have at most 50 keys")
	}
	// Raw card numbers must never enter payrouter: refuse them anywhere.
	for param, s := range b.freeText() {
		if looksLikePAN(s) {
			return nil, &payrouter.Error{Type: payrouter.ErrInvalidRequest, Code: "raw_card_data", Param: param,
				Message: "raw card numbers are not accepted; tokenize the card with the provider and send payment_method_tokens"}
		}
	}
	if hosted && (len(b.PaymentMethodTokens) > 0 || b.Provider != "") {
		return nil, payrouter.InvalidParam("checkout", "hosted checkout collects the card on its page and routes by the rules: payment_method_tokens and provider do not apply")
	}
	if m == payrouter.MethodCard && len(b.PaymentMethodTokens) == 0 && !hosted {
		return nil, payrouter.InvalidParam("payment_method_tokens", "is required for card payments: one token per provider the card may go to")
	}
	return &router.CreateRequest{
		MerchantID: merchantID, Amount: b.Amount.n, Currency: cur, Method: m, Reference: b.Reference,
		Description: b.Description, Customer: b.Customer, Country: b.Country, Capture: capture,
		ReturnURL: b.ReturnURL, Metadata: b.Metadata, Tokens: b.PaymentMethodTokens, Bank: b.Bank, Provider: b.Provider,
		Checkout: b.Checkout,
	}, nil
}

func (b *createBody) freeText() map[string]string {
	out := map[string]string{"reference": b.Reference, "description": b.Description}
	for k, v := range b.Metadata {
		out["metadata."+k] = v
	}
	for k, v := range b.PaymentMethodTokens {
		out["payment_method_tokens."+k] = v
	}
	if b.Customer != nil {
		out["customer.name"] = b.Customer.Name
	}
	return out
}

// looksLikePAN finds a run of 13–19 digits (spaces and dashes allowed)
// that starts like a card number (2–6) and passes the Luhn check. Whole runs
// only, so order numbers rarely trip it.
func looksLikePAN(s string) bool {
	for _, m := range digitRun.FindAllString(s, -1) {
		var digits []byte
		for i := 0; i < len(m); i++ {
			if m[i] >= '0' && m[i] <= '9' {
				digits = append(digits, m[i]-'0')
			}
		}
		if len(digits) >= 13 && len(digits) <= 19 && digits[0] >= 2 && digits[0] <= 6 && luhn(digits) {
			return true
		}
	}
	return false
}

func luhn(d []byte) bool {
	sum := 0
	for i := len(d) - 1; i >= 0; i-- {
		v := int(d[i])
		if (len(d)-1-i)%2 == 1 {
			v *= 2
			if v > 9 {
				v -= 9
			}
		}
		sum += v
	}
	return sum%10 == 0
}
