package providers

import (
	"context"
	"errors"
	"fmt"
	"net"
)

// Class decides what the router does after a failed call. It is the only
// input to failover: never match on error strings.
type Class string

const (
	// Declined: the provider processed and refused (card declined,
	// insufficient funds, fraud). No breaker trip; no failover unless the
	// code is a configured soft decline.
	Declined Class = "declined"
	// Invalid: the request does not fit this provider. No breaker trip; the
	// next provider may take it.
	Invalid Class = "invalid"
	// Unavailable: known not processed (connection refused, DNS, 503, 429,
	// 5xx before processing). Breaker trips; the next provider may take it.
	Unavailable Class = "unavailable"
	// Ambiguous: the request was sent and the outcome is unknown (timeout,
	// reset). Breaker trips; a card is never sent elsewhere until resolved.
	Ambiguous Class = "ambiguous"
)

// Error is the one error type adapters return.
type Error struct {
	Class        Class
	Code         string // payrouter's code: card_declined, insufficient_funds, timeout, …
	ProviderCode string // the provider's own code / decline code
	HTTPStatus   int    // 0 when no response arrived
	Message      string // safe to show: never contains secrets or card data
	Err          error  // the underlying error, if any
}

func (e *Error) Error() string {
	s := fmt.Sprintf("%s (%s)", e.Class, e.Code)
	if e.ProviderCode != "" {
		s += " provider_code=" + e.ProviderCode
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// ClassOf returns the class of err: an *Error's own class, or a
// classification of a transport error. Unknown errors are ambiguous: when we
// cannot prove a request was not processed, we must assume it may have been.
func ClassOf(err error) Class {
	var e *Error
	if errors.As(err, &e) {
		return e.Class
	}
	return ClassifyTransport(err).Class
}

// ClassifyTransport classifies an error from an HTTP round trip that got no
// response: a failure to connect (refused, DNS, TLS before sending) is
// Unavailable; anything after the request may have left — timeout, reset,
// EOF, cancelled context — is Ambiguous.
func ClassifyTransport(err error) *Error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return &Error{Class: Unavailable, Code: "dns_error", Err: err}
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) && opErr.Op == "dial" {
		return &Error{Class: Unavailable, Code: "connection_refused", Err: err}
	}
	if errors.Is(err, context.DeadlineExceeded) || isTimeout(err) {
		return &Error{Class: Ambiguous, Code: "timeout", Err: err}
	}
	return &Error{Class: Ambiguous, Code: "network_error", Err: err}
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

// ClassifyHTTP classifies a response status that carries no more specific
// meaning: 429 and 503 say "not processed, come back later" and are
// Unavailable; any other 5xx (including a gateway's 502/504, which may come
// after the provider processed) is Ambiguous; other 4xx are Invalid.
func ClassifyHTTP(status int) Class {
	switch {
	case status == 429 || status == 503:
		return Unavailable
	case status >= 500:
		return Ambiguous
	case status >= 400:
		return Invalid
	}
	return ""
}

// Errorf returns an *Error.
func Errorf(class Class, code, format string, args ...any) *Error {
	return &Error{Class: class, Code: code, Message: fmt.Sprintf(format, args...)}
}

// Unsupported is the Invalid error for what a provider cannot take.
func Unsupported(format string, args ...any) *Error {
	return &Error{Class: Invalid, Code: "unsupported", Message: fmt.Sprintf(format, args...)}
}

// CodeSignatureInvalid is the Code of the *Error (class Invalid) a
// WebhookParser returns for a forged or stale webhook.
const CodeSignatureInvalid = "signature_invalid"

// SignatureError is the error for a webhook that fails verification.
func SignatureError(format string, args ...any) *Error {
	return &Error{Class: Invalid, Code: CodeSignatureInvalid, Message: fmt.Sprintf(format, args...)}
}

// IsSignatureError reports whether err is a webhook verification failure.
func IsSignatureError(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == CodeSignatureInvalid
}

// CodeCredentialsRefused is the code of an *Error for a provider that
// refused payrouter's own credentials: a wrong, revoked or unpermitted key
// (HTTP 401, or a 403 the provider documents as a key without permission).
// Its class is Unavailable: nothing was processed, so the payment may fail
// over, and the breaker counts it — to us the provider is down. It is never
// the customer's fault and never quiet: the router reports it (log, metric,
// /readyz) so that ops fix the configuration.
const CodeCredentialsRefused = "credentials_refused"

// CredentialsRefused is the error for a provider refusing our credentials
// with httpStatus; providerCode is the provider's own error code, if any.
func CredentialsRefused(httpStatus int, providerCode, format string, args ...any) *Error {
	return &Error{Class: Unavailable, Code: CodeCredentialsRefused, ProviderCode: providerCode, HTTPStatus: httpStatus,
		Message: fmt.Sprintf(format, args...)}
}

// IsCredentialsRefused reports whether err is a provider refusing
// payrouter's credentials (see CodeCredentialsRefused).
func IsCredentialsRefused(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == CodeCredentialsRefused
}
