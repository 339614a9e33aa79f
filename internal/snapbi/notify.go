package snapbi

import (
	"crypto/rsa"
	"net/http"
	"time"

	"github.com/payrouter/payrouter/providers"
)

// VerifyNotification checks a wallet's notification: X-SIGNATURE is
// SHA256withRSA by the wallet's key over
// METHOD:path:lowerhex(sha256(minified body)):X-TIMESTAMP, and X-TIMESTAMP
// is within the tolerance of now (a replayed notification is refused).
// path is the path of the URL the wallet called, as it signed it. Every
// failure is a providers.SignatureError; the reason names the header, not
// any key material.
func VerifyNotification(pub *rsa.PublicKey, method, path string, h http.Header, body []byte, now time.Time, tolerance time.Duration) error {
	ts := h.Get("X-TIMESTAMP")
	sig := h.Get("X-SIGNATURE")
	if ts == "" || sig == "" {
		return providers.SignatureError("X-TIMESTAMP and X-SIGNATURE are required")
	}
	t, err := ParseTimestamp(ts)
	if err != nil {
		return providers.SignatureError("%v", err)
	}
	if d := now.Sub(t); d > tolerance || d < -tolerance {
		return providers.SignatureError("X-TIMESTAMP is outside the %s tolerance", tolerance)
	}
	sts, err := StringToSign(method, path, body, ts)
	if err != nil {
		return providers.SignatureError("body is not valid JSON")
	}
	if err := VerifyRSA(pub, sts, sig); err != nil {
		return providers.SignatureError("%v", err)
	}
	return nil
}

// VerifyNotification verifies with the client's configured wallet key,
// clock and tolerance (see the package-level VerifyNotification).
func (c *Client) VerifyNotification(method, path string, h http.Header, body []byte, now time.Time) error {
	if now.IsZero() {
		now = c.cfg.Now()
	}
	return VerifyNotification(c.cfg.ProviderPublicKey, method, path, h, body, now, c.cfg.NotifyTolerance)
}

// SignNotification builds the X-TIMESTAMP and X-SIGNATURE headers a wallet
// puts on a notification POSTed to path; simulators and tests use it with
// the wallet's private key. body must be the exact bytes posted.
func SignNotification(priv *rsa.PrivateKey, method, path string, body []byte, t time.Time) (http.Header, error) {
	ts := Timestamp(t)
	sts, err := StringToSign(method, path, body, ts)
	if err != nil {
		return nil, err
	}
	sig, err := SignRSA(priv, sts)
	if err != nil {
		return nil, err
	}
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("X-TIMESTAMP", ts)
	h.Set("X-SIGNATURE", sig)
	return h, nil
}
