package snapbi

import (
	"bytes"
	"crypto"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
	"strings"
	"time"
)

// TimestampLayout is SNAP's X-TIMESTAMP format. Wallets require WIB
// (Asia/Jakarta, UTC+7), so Timestamp always renders in that offset.
const TimestampLayout = "2006-01-02T15:04:05-07:00"

// wib is a fixed zone rather than time.LoadLocation("Asia/Jakarta") so that
// the signer works without tzdata; Indonesia has no daylight saving.
var wib = time.FixedZone("WIB", 7*3600)

// Timestamp formats t as an X-TIMESTAMP: 2024-01-02T15:04:05+07:00.
func Timestamp(t time.Time) string { return t.In(wib).Format(TimestampLayout) }

// ParseTimestamp parses an X-TIMESTAMP. It accepts any numeric offset (and
// OVO's optional milliseconds), since the offset is part of what is signed.
func ParseTimestamp(s string) (time.Time, error) {
	for _, layout := range []string{TimestampLayout, "2006-01-02T15:04:05.000-07:00"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("X-TIMESTAMP %q is not in the form 2006-01-02T15:04:05+07:00", s)
}

// Minify compacts a JSON body the way SNAP wallets do before hashing it.
// Callers sign the exact bytes they send, so Minify is applied to the body
// before it is sent and again (a no-op) by the verifier.
func Minify(body []byte) ([]byte, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return []byte{}, nil
	}
	var b bytes.Buffer
	if err := json.Compact(&b, body); err != nil {
		return nil, fmt.Errorf("body is not valid JSON: %w", err)
	}
	return b.Bytes(), nil
}

// BodyHash is lowerhex(sha256(minified body)), the body part of every
// string-to-sign.
func BodyHash(body []byte) (string, error) {
	m, err := Minify(body)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(m)
	return hex.EncodeToString(sum[:]), nil
}

// StringToSign is the asymmetric transaction string-to-sign:
// METHOD:path:lowerhex(sha256(minified body)):timestamp.
func StringToSign(method, path string, body []byte, timestamp string) (string, error) {
	h, err := BodyHash(body)
	if err != nil {
		return "", err
	}
	return strings.ToUpper(method) + ":" + path + ":" + h + ":" + timestamp, nil
}

// SymmetricStringToSign is the symmetric form:
// METHOD:path:accessToken:lowerhex(sha256(minified body)):timestamp.
func SymmetricStringToSign(method, path, accessToken string, body []byte, timestamp string) (string, error) {
	h, err := BodyHash(body)
	if err != nil {
		return "", err
	}
	return strings.ToUpper(method) + ":" + path + ":" + accessToken + ":" + h + ":" + timestamp, nil
}

// SignRSA returns base64(RSASSA-PKCS1-v1_5(SHA-256(msg))), SNAP's
// "SHA256withRSA". PKCS#1 v1.5 is deterministic, so a signature can be
// compared byte for byte with one made by openssl.
func SignRSA(priv *rsa.PrivateKey, msg string) (string, error) {
	if priv == nil {
		return "", fmt.Errorf("snapbi: no private key configured")
	}
	sum := sha256.Sum256([]byte(msg))
	sig, err := rsa.SignPKCS1v15(rand.Reader, priv, crypto.SHA256, sum[:])
	if err != nil {
		return "", fmt.Errorf("snapbi: sign: %w", err)
	}
	return base64.StdEncoding.EncodeToString(sig), nil
}

// VerifyRSA checks a base64 SHA256withRSA signature over msg.
func VerifyRSA(pub *rsa.PublicKey, msg, signature string) error {
	if pub == nil {
		return fmt.Errorf("no public key configured")
	}
	sig, err := base64.StdEncoding.DecodeString(strings.TrimSpace(signature))
	if err != nil {
		return fmt.Errorf("X-SIGNATURE is not base64")
	}
	sum := sha256.Sum256([]byte(msg))
	if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum[:], sig); err != nil {
		return fmt.Errorf("X-SIGNATURE does not verify")
	}
	return nil
}

// SignHMAC returns base64(HMAC-SHA512(secret, msg)), SNAP's symmetric
// signature.
func SignHMAC(secret, msg string) string {
	m := hmac.New(sha512.New, []byte(secret))
	m.Write([]byte(msg))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// VerifyHMAC checks a symmetric signature in constant time.
func VerifyHMAC(secret, msg, signature string) error {
	got, err := base64.StdEncoding.DecodeString(strings.TrimSpace(signature))
	if err != nil {
		return fmt.Errorf("X-SIGNATURE is not base64")
	}
	m := hmac.New(sha512.New, []byte(secret))
	m.Write([]byte(msg))
	if !hmac.Equal(got, m.Sum(nil)) {
		return fmt.Errorf("X-SIGNATURE does not verify")
	}
	return nil
}

// AccessTokenStringToSign is clientId|X-TIMESTAMP, signed with the
// partner's private key to obtain a B2B access token.
func AccessTokenStringToSign(clientID, timestamp string) string { return clientID + "|" + timestamp }

// ExternalIDLen is the length of the X-EXTERNAL-ID values this package
// derives: SNAP allows at most 36 characters.
const ExternalIDLen = 36

// ExternalID derives an X-EXTERNAL-ID from an operation name and an
// idempotency key: 36 decimal digits (some wallets require a numeric id,
// all accept one) taken from SHA-256(op + ":" + key).
//
// Trade-off: SNAP defines X-EXTERNAL-ID as unique per partner per day, and
// wallets use it to recognise a repeated request. Deriving it from the
// attempt's idempotency key makes a retry of the same attempt the same
// request (so a lost answer can be fetched again without a second charge),
// at the price that a retry on a later calendar day (WIB) is seen as a new
// request; the partnerReferenceNo (the attempt's order id), which wallets
// keep unique per merchant, still guards that case.
func ExternalID(op, key string) string {
	sum := sha256.Sum256([]byte(op + ":" + key))
	n := new(big.Int).SetBytes(sum[:14]) // 112 bits < 10^34: fits in 36 digits
	return fmt.Sprintf("%036s", n.String())
}

// RandomExternalID returns a fresh random 36-digit X-EXTERNAL-ID for
// requests that are not idempotent operations (status queries).
func RandomExternalID() string {
	var b [14]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	return fmt.Sprintf("%036s", new(big.Int).SetBytes(b[:]).String())
}
