package httpapi

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/payrouter/payrouter"
	"github.com/payrouter/payrouter/router"
)

// maxBody is the ceiling of any API body; the configured limit
// (BodyLimits.MaxBytes, default 64 KiB: a payment is a few hundred bytes)
// is enforced before the handler runs.
const maxBody = 1 << 20

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

// decodeJSON decodes one JSON object strictly (see decodeBytes).
func decodeJSON(r io.Reader, v any) error {
	body, err := io.ReadAll(io.LimitReader(r, maxBody+1))
	if err != nil {
		return &payrouter.Error{Type: payrouter.ErrInvalidRequest, Code: "body_unreadable", Message: "could not read the request body"}
	}
	return decodeBytes(body, v)
}

// strict is how every request body is decoded, with encoding/json/v2
// semantics (github.com/go-json-experiment/json): a name given twice is a
// syntax error (jsontext refuses duplicate names by default), names match
// case-sensitively ("AMOUNT" is not "amount"), unknown names are refused,
// invalid UTF-8 is refused, and every string value and map key is vetted
// for NUL and card numbers (checkString; maps of strings go through
// checkStringMap, which also refuses keys that differ only by case).
var strict = json.JoinOptions(
	json.RejectUnknownMembers(true),
	json.MatchCaseInsensitiveNames(false),
	jsontext.AllowDuplicateNames(false),
	json.WithUnmarshalers(json.JoinUnmarshalers(
		json.UnmarshalFromFunc(checkString),
		json.UnmarshalFromFunc(checkStringMap),
	)),
)

// decodeBytes decodes one JSON object strictly: unknown, duplicated or
// case-varied parameters, wrong types, trailing data, oversize bodies, NUL
// characters and card numbers (in any string value or key) are
// invalid_request errors naming the parameter.
func decodeBytes(body []byte, v any) error {
	if len(body) > maxBody {
		return &payrouter.Error{Type: payrouter.ErrInvalidRequest, Code: "body_too_large", Message: fmt.Sprintf("request body exceeds %d bytes", maxBody)}
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return &payrouter.Error{Type: payrouter.ErrInvalidRequest, Code: "body_missing", Message: "a JSON object body is required"}
	}
	if err := json.Unmarshal(body, v, strict); err != nil {
		return redact(decodeError(err))
	}
	return nil
}

// badString is checkString's finding; param is where it was found (for a
// map key: the map, never the key itself, which may be the card number).
type badString struct {
	code, param, message string
}

func (e *badString) Error() string { return e.message }

// checkString vets one string value or map key before it is stored
// anywhere: PostgreSQL refuses NUL in text and JSON columns (a 500 on
// every retry), and a card number must never enter payrouter.
func checkString(dec *jsontext.Decoder, s *string) error {
	if dec.PeekKind() != '"' {
		return errors.ErrUnsupported // not a string: the default reports the type error
	}
	kind, n := dec.StackIndex(dec.StackDepth())
	isName := kind == '{' && n%2 == 0
	tok, err := dec.ReadToken()
	if err != nil {
		return err
	}
	v := tok.String()
	if badText(v) {
		// The pointer is built only on failure: it allocates.
		return vetError(v, isName, pointerParam(dec.StackPointer()))
	}
	*s = v
	return nil
}

// badText is the cheap test behind vetString.
func badText(v string) bool {
	return strings.IndexByte(v, 0) >= 0 || payrouter.ContainsCardNumber(v)
}

// vetError is vetString as an error (nil when v is fine).
func vetError(v string, isName bool, param string) error {
	if e := vetString(v, isName, param); e != nil {
		return e
	}
	return nil
}

// vetString refuses NUL and card numbers in v (a value, or a key of the map
// at param).
func vetString(v string, isName bool, param string) *badString {
	what := "the value of " + param
	if isName {
		what = "a key of " + param
	}
	if param == "" {
		what = "a parameter name"
	}
	if strings.IndexByte(v, 0) >= 0 {
		return &badString{code: "parameter_invalid", param: param, message: what + " contains a NUL character"}
	}
	if payrouter.ContainsCardNumber(v) {
		return &badString{code: "raw_card_data", param: param, message: what + " looks like a card number: raw card numbers are not accepted; " +
			"tokenize the card with the provider and send payment_method_tokens"}
	}
	return nil
}

// checkStringMap decodes a map of strings (metadata, payment_method_tokens)
// and also refuses two keys that differ only by case: downstream systems
// (providers' metadata, spreadsheets) may not tell them apart.
func checkStringMap(dec *jsontext.Decoder, m *map[string]string) error {
	if dec.PeekKind() != '{' {
		return errors.ErrUnsupported
	}
	param := pointerParam(dec.StackPointer())
	if _, err := dec.ReadToken(); err != nil {
		return err
	}
	out := map[string]string{}
	var folded map[string]string // lower-cased key → key, once the map is large
	for dec.PeekKind() != '}' {
		tok, err := dec.ReadToken() // a name: jsontext refuses duplicates
		if err != nil {
			return err
		}
		k := tok.String()
		if badText(k) {
			return vetError(k, true, param)
		}
		if dec.PeekKind() != '"' {
			return &badString{code: "parameter_invalid", param: param + "." + k, message: param + "." + k + " must be a string"}
		}
		if tok, err = dec.ReadToken(); err != nil {
			return err
		}
		v := tok.String()
		if badText(v) {
			return vetError(v, false, param+"."+k)
		}
		if other, dup := caseTwin(out, &folded, k); dup {
			return &badString{code: "parameter_duplicate", param: param + "." + k,
				message: fmt.Sprintf("%s.%s and %s.%s differ only by case", param, other, param, k)}
		}
		out[k] = v
	}
	if _, err := dec.ReadToken(); err != nil {
		return err
	}
	*m = out
	return nil
}

// caseTwin finds a key of m equal to k but for case. Small maps (the
// usual metadata) are scanned; from 16 keys on, a folded index is kept so
// that a body of thousands of keys stays linear.
func caseTwin(m map[string]string, folded *map[string]string, k string) (string, bool) {
	if *folded == nil && len(m) < 16 {
		for o := range m {
			if strings.EqualFold(o, k) {
				return o, true
			}
		}
		return "", false
	}
	if *folded == nil {
		*folded = make(map[string]string, 2*len(m))
		for o := range m {
			(*folded)[strings.ToLower(o)] = o
		}
	}
	lk := strings.ToLower(k)
	if o, dup := (*folded)[lk]; dup {
		return o, true
	}
	(*folded)[lk] = k
	return "", false
}

// pointerParam turns a JSON pointer (/customer/email) into the API's
// parameter name (customer.email).
func pointerParam(p jsontext.Pointer) string {
	var parts []string
	for t := range p.Tokens() {
		parts = append(parts, t)
	}
	return strings.Join(parts, ".")
}

func decodeError(err error) *payrouter.Error {
	var bs *badString
	var se *jsontext.SyntacticError
	var me *json.SemanticError
	switch {
	case errors.As(err, &bs):
		return &payrouter.Error{Type: payrouter.ErrInvalidRequest, Code: bs.code, Param: bs.param, Message: bs.message}
	case errors.As(err, &se):
		if errors.Is(se.Err, jsontext.ErrDuplicateName) {
			param := pointerParam(se.JSONPointer)
			return &payrouter.Error{Type: payrouter.ErrInvalidRequest, Code: "parameter_duplicate", Param: param,
				Message: "parameter " + param + " is given more than once"}
		}
		return &payrouter.Error{Type: payrouter.ErrInvalidRequest, Code: "json_invalid", Message: fmt.Sprintf("malformed JSON at byte %d", se.ByteOffset)}
	case errors.As(err, &me):
		param := pointerParam(me.JSONPointer)
		if errors.Is(me.Err, json.ErrUnknownName) {
			msg := "unknown parameter " + param
			if name := me.JSONPointer.LastToken(); strings.ToLower(name) != name {
				msg += " (parameter names are case-sensitive)"
			}
			return &payrouter.Error{Type: payrouter.ErrInvalidRequest, Code: "parameter_unknown", Param: param, Message: msg}
		}
		if param == "" {
			return &payrouter.Error{Type: payrouter.ErrInvalidRequest, Code: "json_invalid", Message: "the body must be a JSON object"}
		}
		want := "valid"
		if me.GoType != nil {
			want = jsonKind(me.GoType.Kind().String())
		}
		return &payrouter.Error{Type: payrouter.ErrInvalidRequest, Code: "parameter_invalid", Param: param,
			Message: fmt.Sprintf("%s must be %s, not %s", param, want, kindName(me.JSONKind))}
	}
	return &payrouter.Error{Type: payrouter.ErrInvalidRequest, Code: "json_invalid", Message: "malformed JSON body"}
}

// redact keeps what the caller sent out of an error when it is unsafe to
// echo: a card number or a NUL in a parameter name names the parent only.
func redact(e *payrouter.Error) *payrouter.Error {
	if strings.IndexByte(e.Param, 0) < 0 && !payrouter.ContainsCardNumber(e.Param) {
		return e
	}
	parent, _, _ := strings.Cut(e.Param, ".")
	for p := e.Param; p != ""; {
		i := strings.LastIndexByte(p, '.')
		if i < 0 {
			break
		}
		p = p[:i]
		if strings.IndexByte(p, 0) < 0 && !payrouter.ContainsCardNumber(p) {
			parent = p
			break
		}
	}
	if strings.IndexByte(parent, 0) >= 0 || payrouter.ContainsCardNumber(parent) {
		parent = ""
	}
	if v := vetString(e.Param, true, parent); v != nil {
		return &payrouter.Error{Type: payrouter.ErrInvalidRequest, Code: v.code, Param: parent, Message: v.message}
	}
	return e
}

func kindName(k jsontext.Kind) string {
	switch k {
	case '"':
		return "a string"
	case '0':
		return "a number"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	case '{':
		return "an object"
	case '[':
		return "an array"
	}
	return "that"
}

var (
	countryRe = regexp.MustCompile(`^[A-Z]{2}$`)
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
	// Raw card numbers and NUL characters were refused while decoding, in
	// every string value and key (checkString).
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
