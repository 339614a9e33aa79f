package snapbi

import (
	"strconv"

	"github.com/payrouter/payrouter/providers"
)

// ResponseCode is a SNAP responseCode: HTTP status (3 digits) + service
// code (2) + case code (2), e.g. "2005400" = 200, service 54 (direct
// debit payment), case 00 (successful).
type ResponseCode string

// Valid reports whether the code has SNAP's 7-digit shape.
func (c ResponseCode) Valid() bool {
	if len(c) != 7 {
		return false
	}
	for _, r := range c {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// HTTPStatus is the first three digits, or 0 for a malformed code.
func (c ResponseCode) HTTPStatus() int {
	if !c.Valid() {
		return 0
	}
	n, _ := strconv.Atoi(string(c[:3]))
	return n
}

// Service is the two-digit service code ("54" payment, "55" status,
// "56" notify, "57" cancel, "58" refund, "73" access token).
func (c ResponseCode) Service() string {
	if !c.Valid() {
		return ""
	}
	return string(c[3:5])
}

// Case is the two-digit case code.
func (c ResponseCode) Case() string {
	if !c.Valid() {
		return ""
	}
	return string(c[5:7])
}

// Success reports a 2xx code.
func (c ResponseCode) Success() bool { s := c.HTTPStatus(); return s >= 200 && s < 300 }

// Code builds a response code from its parts; simulators use it.
func Code(httpStatus int, service, caseCode string) ResponseCode {
	return ResponseCode(strconv.Itoa(httpStatus) + service + caseCode)
}

// caseClass maps (HTTP status, case code) from the SNAP BI response-code
// table (ASPI "Standar Data dan Spesifikasi Teknis", section Response Code)
// to payrouter's classes. Absent entries fall back to the HTTP status.
var caseClass = map[[2]string]struct {
	class providers.Class
	code  string
}{
	{"400", "00"}: {providers.Invalid, "invalid_request"},         // Bad Request
	{"400", "01"}: {providers.Invalid, "invalid_field_format"},    // Invalid Field Format
	{"400", "02"}: {providers.Invalid, "missing_mandatory_field"}, // Invalid Mandatory Field
	// Our client id, key or B2B token refused (after one fresh token):
	// nothing was processed; fail over and tell ops.
	{"401", "00"}: {providers.Unavailable, providers.CodeCredentialsRefused}, // Unauthorized (signature, client)
	{"401", "01"}: {providers.Unavailable, providers.CodeCredentialsRefused}, // Invalid Token (B2B)
	{"401", "02"}: {providers.Invalid, "invalid_customer_token"},             // Invalid Customer Token
	{"401", "03"}: {providers.Unavailable, providers.CodeCredentialsRefused}, // Token Not Found
	{"403", "00"}: {providers.Declined, "expired"},                           // Transaction Expired
	{"403", "01"}: {providers.Invalid, "feature_not_allowed"},                // Feature Not Allowed
	{"403", "02"}: {providers.Declined, "amount_limit_exceeded"},             // Exceeds Transaction Amount Limit
	{"403", "03"}: {providers.Declined, "suspected_fraud"},                   // Suspected Fraud
	{"403", "04"}: {providers.Declined, "activity_limit_exceeded"},
	{"403", "05"}: {providers.Declined, "do_not_honor"},
	{"403", "14"}: {providers.Declined, "insufficient_funds"}, // Insufficient Funds
	{"403", "15"}: {providers.Invalid, "not_permitted"},       // Transaction Not Permitted
	{"403", "18"}: {providers.Declined, "account_inactive"},   // Inactive Card/Account/Customer
	{"404", "01"}: {providers.Invalid, "not_found"},           // Transaction Not Found
	{"404", "08"}: {providers.Invalid, "invalid_merchant"},
	{"404", "11"}: {providers.Invalid, "invalid_account"},
	{"404", "13"}: {providers.Invalid, "invalid_amount"},
	{"404", "14"}: {providers.Invalid, "already_paid"},     // Paid Bill
	{"404", "18"}: {providers.Invalid, "duplicate"},        // DANA: Inconsistent Request (idempotency)
	{"405", "00"}: {providers.Invalid, "unsupported"},      // Requested Function Is Not Supported
	{"409", "00"}: {providers.Invalid, "duplicate"},        // Conflict (X-EXTERNAL-ID reused)
	{"409", "01"}: {providers.Invalid, "duplicate"},        // Duplicate partnerReferenceNo
	{"504", "00"}: {providers.Ambiguous, "timeout"},        // Timeout
	{"500", "00"}: {providers.Ambiguous, "provider_error"}, // General Error
	{"500", "01"}: {providers.Ambiguous, "provider_error"}, // Internal Server Error
	{"500", "02"}: {providers.Ambiguous, "provider_error"}, // External Server Error
	{"503", "00"}: {providers.Unavailable, "unavailable"},  // Service Unavailable
	{"429", "00"}: {providers.Unavailable, "rate_limited"}, // Too Many Requests
}

// Classify turns a non-2xx SNAP answer into a *providers.Error. The HTTP
// status inside the response code wins over the transport status when the
// code is well formed (some gateways answer 200 with an error code);
// otherwise the transport status decides via providers.ClassifyHTTP.
// Nothing here matches on responseMessage.
func Classify(httpStatus int, rc ResponseCode, message string) *providers.Error {
	status := httpStatus
	if rc.Valid() {
		status = rc.HTTPStatus()
	}
	e := &providers.Error{ProviderCode: string(rc), HTTPStatus: httpStatus, Message: safeMessage(message)}
	if m, ok := caseClass[[2]string{strconv.Itoa(status), rc.Case()}]; ok && rc.Valid() {
		e.Class, e.Code = m.class, m.code
		return e
	}
	switch {
	case status == 429:
		e.Class, e.Code = providers.Unavailable, "rate_limited"
	case status == 503:
		e.Class, e.Code = providers.Unavailable, "unavailable"
	case status == 504:
		e.Class, e.Code = providers.Ambiguous, "timeout"
	case status >= 500:
		e.Class, e.Code = providers.Ambiguous, "provider_error"
	case status == 401:
		e.Class, e.Code = providers.Unavailable, providers.CodeCredentialsRefused
	case status == 409:
		e.Class, e.Code = providers.Invalid, "duplicate"
	case status >= 400:
		e.Class, e.Code = providers.Invalid, "invalid_request"
	default:
		// A 2xx/3xx transport status with a non-success or missing code:
		// we cannot prove what happened.
		e.Class, e.Code = providers.Ambiguous, "unexpected_response"
	}
	return e
}

// safeMessage bounds the provider's message: it is shown to operators and
// must not grow without limit. SNAP messages never carry credentials.
func safeMessage(s string) string {
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}
