package apptest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"

	"github.com/payrouter/payrouter"
)

// SpecTransport checks every call against openapi.yaml (kin-openapi's
// openapi3filter): the response must be one the spec describes for that
// operation and status, byte for byte through its schema; a request the
// spec forbids must not be accepted. A call to a path the spec does not
// describe is an error too, except the sandbox simulators (/sim/…), which
// are not part of the API. Drift between the server and its description
// fails the test that made the call.
type SpecTransport struct {
	Base   http.RoundTripper
	router routers.Router
	// Checked counts the responses validated (a harness that validates
	// nothing would pass everything).
	Checked atomic.Int64
}

// NewSpecTransport loads the embedded openapi.yaml for a server at baseURL.
func NewSpecTransport(baseURL string, base http.RoundTripper) (*SpecTransport, error) {
	return newSpecTransport(payrouter.OpenAPI, baseURL, base)
}

func newSpecTransport(spec []byte, baseURL string, base http.RoundTripper) (*SpecTransport, error) {
	doc, err := openapi3.NewLoader().LoadFromData(spec)
	if err != nil {
		return nil, fmt.Errorf("openapi.yaml: %w", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		return nil, fmt.Errorf("openapi.yaml: %w", err)
	}
	doc.Servers = openapi3.Servers{{URL: baseURL}}
	r, err := legacy.NewRouter(doc)
	if err != nil {
		return nil, fmt.Errorf("openapi.yaml: %w", err)
	}
	if base == nil {
		base = http.DefaultTransport
	}
	return &SpecTransport{Base: base, router: r}, nil
}

// RoundTrip implements http.RoundTripper.
func (t *SpecTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if strings.HasPrefix(req.URL.Path, "/sim/") {
		return t.Base.RoundTrip(req)
	}
	var reqBody []byte
	if req.Body != nil {
		var err error
		if reqBody, err = io.ReadAll(req.Body); err != nil {
			return nil, err
		}
		_ = req.Body.Close()
		req.Body = io.NopCloser(bytes.NewReader(reqBody))
	}
	route, params, err := t.router.FindRoute(req)
	if err != nil {
		return nil, fmt.Errorf("openapi.yaml does not describe %s %s: %w", req.Method, req.URL.Path, err)
	}
	check := req.Clone(req.Context())
	check.Body = io.NopCloser(bytes.NewReader(reqBody))
	in := &openapi3filter.RequestValidationInput{Request: check, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, MultiError: true}}
	reqErr := openapi3filter.ValidateRequest(req.Context(), in)

	resp, err := t.Base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	body, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: resp.StatusCode, Header: resp.Header,
		Options: &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true}}
	out.SetBodyBytes(body)
	if err := openapi3filter.ValidateResponse(req.Context(), out); err != nil {
		return nil, fmt.Errorf("%s %s answered %d, which openapi.yaml does not describe: %v\nbody: %s", req.Method, req.URL.Path, resp.StatusCode, err, body)
	}
	if reqErr != nil && resp.StatusCode < 400 {
		return nil, fmt.Errorf("%s %s: the server accepted (%d) a request openapi.yaml forbids: %v", req.Method, req.URL.Path, resp.StatusCode, reqErr)
	}
	t.Checked.Add(1)
	return resp, nil
}
