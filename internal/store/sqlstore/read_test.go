package sqlstore

import (
	"testing"
	"time"

	"github.com/payrouter/payrouter"
)

func TestDecodeAttempts(t *testing.T) {
	got, err := decodeAttempts([]byte(`[[0,1,"stripe","pi_1","pay_1_a1","succeeded","","","",9007199254740993,12,1764600000123456],
		[1,2,"xendit","","pay_1_a2","failed","declined","card_declined","say \"no\"",0,3,1764600000000001]]`))
	if err != nil {
		t.Fatal(err)
	}
	want := []payrouter.Attempt{
		{N: 1, Provider: "stripe", ProviderPaymentID: "pi_1", IdempotencyKey: "pay_1_a1", Status: payrouter.AttemptSucceeded,
			ExpectedFee: 9007199254740993, LatencyMS: 12, StartedAt: time.UnixMicro(1764600000123456).UTC()},
		{N: 2, Provider: "xendit", IdempotencyKey: "pay_1_a2", Status: payrouter.AttemptFailed, ErrorClass: "declined",
			ErrorCode: "card_declined", ErrorMessage: `say "no"`, LatencyMS: 3, StartedAt: time.UnixMicro(1764600000000001).UTC()},
	}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("decodeAttempts =\n%+v\nwant\n%+v", got, want)
	}
	// Out of idx order (a query plan could deliver them so): placed by idx.
	got, err = decodeAttempts([]byte(`[[1,2,"xendit","","pay_1_a2","failed","declined","card_declined","say \"no\"",0,3,1764600000000001],
		[0,1,"stripe","pi_1","pay_1_a1","succeeded","","","",9007199254740993,12,1764600000123456]]`))
	if err != nil || len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("decodeAttempts out of order =\n%+v, %v\nwant\n%+v", got, err, want)
	}
	if as, err := decodeAttempts([]byte(`[]`)); err != nil || as == nil || len(as) != 0 {
		t.Errorf("no attempts = %#v, %v; want an empty, non-nil slice (the API shows [])", as, err)
	}
}

func TestDecodeChildrenRejectsWrongShapes(t *testing.T) {
	for _, b := range []string{
		`[[0,1,"stripe"]]`, // too few columns
		`[[0,"1","stripe","","k","pending","","","",0,0,0]]`, // n as a string
		`[[0,1,2,"","k","pending","","","",0,0,0]]`,          // provider as a number
		`[[0,1,"stripe","","k","pending","","","",1.5,0,0]]`, // a fraction
		`{"not":"an array"}`,
	} {
		if _, err := decodeAttempts([]byte(b)); err == nil {
			t.Errorf("decodeAttempts(%s) = nil error, want one", b)
		}
	}
	if _, err := decodeRefunds([]byte(`[[0,"re_1","100","", "succeeded","","",0]]`)); err == nil {
		t.Error("decodeRefunds with an amount as a string = nil error, want one")
	}
	rs, err := decodeRefunds([]byte(`[]`))
	if err != nil || rs != nil {
		t.Errorf("no refunds = %#v, %v; want nil (as loadChildren leaves it)", rs, err)
	}
}
