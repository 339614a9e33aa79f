package snapbi

import (
	"testing"

	"github.com/payrouter/payrouter/providers"
)

func TestClassify(t *testing.T) {
	tests := []struct {
		name      string
		http      int
		rc        ResponseCode
		wantClass providers.Class
		wantCode  string
	}{
		{"insufficient funds", 403, "4035414", providers.Declined, "insufficient_funds"},
		{"do not honor", 403, "4035405", providers.Declined, "do_not_honor"},
		{"suspected fraud", 403, "4035403", providers.Declined, "suspected_fraud"},
		{"invalid field", 400, "4005401", providers.Invalid, "invalid_field_format"},
		{"missing field", 400, "4005402", providers.Invalid, "missing_mandatory_field"},
		{"bad signature", 401, "4017300", providers.Unavailable, providers.CodeCredentialsRefused},
		{"invalid token", 401, "4015401", providers.Unavailable, providers.CodeCredentialsRefused},
		{"invalid customer token is not ours", 401, "4015402", providers.Invalid, "invalid_customer_token"},
		{"not found", 404, "4045501", providers.Invalid, "not_found"},
		{"dana inconsistent request", 404, "4045418", providers.Invalid, "duplicate"},
		{"conflict external id", 409, "4095400", providers.Invalid, "duplicate"},
		{"duplicate partnerReferenceNo", 409, "4095401", providers.Invalid, "duplicate"},
		{"rate limited", 429, "4295400", providers.Unavailable, "rate_limited"},
		{"general error", 500, "5005400", providers.Ambiguous, "provider_error"},
		{"internal error", 500, "5005401", providers.Ambiguous, "provider_error"},
		{"timeout", 504, "5045400", providers.Ambiguous, "timeout"},
		{"unavailable", 503, "5035400", providers.Unavailable, "unavailable"},
		{"unknown 403 case", 403, "4035499", providers.Invalid, "invalid_request"},
		{"code wins over transport status", 200, "4035414", providers.Declined, "insufficient_funds"},
		{"no code 503", 503, "", providers.Unavailable, "unavailable"},
		{"no code 502", 502, "", providers.Ambiguous, "provider_error"},
		{"no code 400", 400, "", providers.Invalid, "invalid_request"},
		{"malformed code 200", 200, "OK", providers.Ambiguous, "unexpected_response"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := Classify(tt.http, tt.rc, "msg")
			if e.Class != tt.wantClass || e.Code != tt.wantCode {
				t.Errorf("Classify(%d, %q) = %s/%s, want %s/%s", tt.http, tt.rc, e.Class, e.Code, tt.wantClass, tt.wantCode)
			}
			if e.ProviderCode != string(tt.rc) {
				t.Errorf("ProviderCode = %q, want %q", e.ProviderCode, tt.rc)
			}
		})
	}
}

func TestResponseCodeParts(t *testing.T) {
	rc := ResponseCode("2005400")
	if rc.HTTPStatus() != 200 || rc.Service() != "54" || rc.Case() != "00" || !rc.Success() {
		t.Errorf("parts of %s = %d %s %s %v", rc, rc.HTTPStatus(), rc.Service(), rc.Case(), rc.Success())
	}
	if got := Code(403, "54", "14"); got != "4035414" {
		t.Errorf("Code = %q, want 4035414", got)
	}
	for _, bad := range []ResponseCode{"", "200540", "20054000", "2005A00"} {
		if bad.Valid() || bad.Success() {
			t.Errorf("%q reported valid/success", bad)
		}
	}
}
