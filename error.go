package payrouter

import (
	"errors"
	"fmt"
)

// ErrorType is the API error type (docs/architecture.md, API v1); the HTTP layer maps it to a
// status code.
type ErrorType string

const (
	ErrInvalidRequest      ErrorType = "invalid_request"
	ErrAuthentication      ErrorType = "authentication"
	ErrNotFound            ErrorType = "not_found"
	ErrIdempotencyConflict ErrorType = "idempotency_conflict"
	ErrInvalidState        ErrorType = "invalid_state"
	ErrNoRoute             ErrorType = "no_route"
	ErrProviderUnavailable ErrorType = "provider_unavailable"
	ErrRateLimited         ErrorType = "rate_limited"
	ErrInternal            ErrorType = "internal"
)

// Error is an error the merchant may see. Anything else that reaches the
// HTTP layer is internal and is logged there, once.
type Error struct {
	Type    ErrorType `json:"type"`
	Code    string    `json:"code,omitempty"`
	Message string    `json:"message"`
	Param   string    `json:"param,omitempty"`
}

func (e *Error) Error() string {
	if e.Param != "" {
		return fmt.Sprintf("%s: %s (%s)", e.Type, e.Message, e.Param)
	}
	return fmt.Sprintf("%s: %s", e.Type, e.Message)
}

// Errorf returns an *Error of the given type and code.
func Errorf(t ErrorType, code, format string, args ...any) *Error {
	return &Error{Type: t, Code: code, Message: fmt.Sprintf(format, args...)}
}

// InvalidParam is an invalid_request error naming the offending parameter.
func InvalidParam(param, format string, args ...any) *Error {
	return &Error{Type: ErrInvalidRequest, Code: "parameter_invalid", Param: param, Message: param + " " + fmt.Sprintf(format, args...)}
}

// ErrorTypeOf returns the type of an *Error in err's chain, or internal.
func ErrorTypeOf(err error) ErrorType {
	var e *Error
	if errors.As(err, &e) {
		return e.Type
	}
	return ErrInternal
}

// ErrNotExist is returned by stores for a missing row.
var ErrNotExist = &Error{Type: ErrNotFound, Code: "resource_missing", Message: "no such object"}

// KeyReusedError: an idempotency key was sent again with a different
// request (another body, as parsed). Nothing was done. The API answers it
// with 422, type idempotency_conflict, code idempotency_key_reused.
type KeyReusedError struct{}

func (*KeyReusedError) Error() string {
	return "idempotency_conflict: this Idempotency-Key was used with a different request body"
}

// APIError is the error as the merchant sees it.
func (*KeyReusedError) APIError() *Error {
	return &Error{Type: ErrIdempotencyConflict, Code: "idempotency_key_reused", Param: "Idempotency-Key",
		Message: "this Idempotency-Key was used with a different request body"}
}
