// Package snapbi is the SNAP BI (Standar Nasional Open API Pembayaran, Bank
// Indonesia) client shared by the direct e-wallet adapters (providers/dana,
// providers/ovo, providers/gopay): B2B access tokens signed with RSA,
// transaction signatures (asymmetric SHA256withRSA or symmetric
// HMAC-SHA512), the X-TIMESTAMP / X-PARTNER-ID / X-EXTERNAL-ID / CHANNEL-ID
// headers, response-code classification into *providers.Error, and
// verification of the wallets' signed notifications.
//
// DirectDebit (directdebit.go) implements providers.Provider for any
// wallet described by a Wallet value; each wallet package is a thin
// mapping of paths, channel id, signing scheme and quirks onto it.
//
// Signed path: SNAP signs the relative URL path of the request — every path
// segment after the host, so a path prefix in BaseURL is part of it
// (DANA's SDK signs url.Parse(base + endpoint).Path). A client pointed at
// a simulator mounted at <host>/sim/dana signs "/sim/dana/payment-gateway/…",
// and the simulator verifies the path it was called with.
//
// B2B access token: DANA's Payment Gateway API takes no access token (its
// SDK never calls an access-token endpoint and sends no Authorization
// header on Payment Gateway calls); SNAP BI's B2B token is used where the
// wallet requires it (OVO, GoPay). Config.AccessTokenPath chooses: empty
// means no token and no Authorization header.
package snapbi

import (
	"bytes"
	"context"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/payrouter/payrouter/providers"
)

// Scheme selects how transaction requests are signed.
type Scheme string

const (
	// Asymmetric: base64(SHA256withRSA(partner key,
	// METHOD:path:hex(sha256(body)):timestamp)) — DANA, OVO.
	Asymmetric Scheme = "asymmetric"
	// Symmetric: base64(HMAC-SHA512(client secret,
	// METHOD:path:accessToken:hex(sha256(body)):timestamp)) — GoPay via
	// Midtrans' SNAP API.
	Symmetric Scheme = "symmetric"
)

// Config configures a Client.
type Config struct {
	BaseURL string // scheme://host[/prefix]; required
	// ClientID is sent as X-CLIENT-KEY (token) and X-PARTNER-ID.
	ClientID string
	// ClientSecret keys the symmetric signature (Scheme Symmetric only).
	ClientSecret string
	// PrivateKey is the partner's (ours): signs token and asymmetric
	// transaction requests.
	PrivateKey *rsa.PrivateKey
	// ProviderPublicKey is the wallet's: verifies its notifications.
	ProviderPublicKey *rsa.PublicKey
	ChannelID         string // CHANNEL-ID header
	Scheme            Scheme // default Asymmetric
	// AccessTokenPath, e.g. /v1.0/access-token/b2b: the client obtains a
	// B2B token there and sends it as Authorization: Bearer on every
	// transaction. Empty: the wallet takes no B2B token (DANA Payment
	// Gateway) and no Authorization header is sent. The symmetric scheme
	// signs the token, so it requires one.
	AccessTokenPath string
	HTTPClient      *http.Client  // nil: providers.NewHTTPClient(Timeout)
	Timeout         time.Duration // default 30s; ignored when HTTPClient is set
	Now             func() time.Time
	// NotifyTolerance bounds |now − X-TIMESTAMP| of a notification;
	// default 5 minutes.
	NotifyTolerance time.Duration
}

// Client talks SNAP BI to one wallet. It is safe for concurrent use; the
// only state is the cached B2B access token.
type Client struct {
	cfg Config
	hc  *http.Client
	// basePath is BaseURL's path prefix ("/sim/dana" or ""): part of
	// every signed path.
	basePath string

	mu      sync.Mutex
	token   string
	expires time.Time
}

// NewClient validates cfg. It returns a plain error naming the missing
// setting (configuration errors are found at start-up, not per payment).
func NewClient(cfg Config) (*Client, error) {
	switch {
	case cfg.BaseURL == "":
		return nil, errors.New("snapbi: BaseURL is required")
	case cfg.ClientID == "":
		return nil, errors.New("snapbi: ClientID is required")
	case cfg.PrivateKey == nil:
		return nil, errors.New("snapbi: PrivateKey is required")
	case cfg.ProviderPublicKey == nil:
		return nil, errors.New("snapbi: ProviderPublicKey is required (to verify notifications)")
	}
	if cfg.Scheme == "" {
		cfg.Scheme = Asymmetric
	}
	if cfg.Scheme != Asymmetric && cfg.Scheme != Symmetric {
		return nil, fmt.Errorf("snapbi: unknown signature scheme %q", cfg.Scheme)
	}
	if cfg.Scheme == Symmetric && cfg.ClientSecret == "" {
		return nil, errors.New("snapbi: ClientSecret is required for the symmetric signature")
	}
	if cfg.Scheme == Symmetric && cfg.AccessTokenPath == "" {
		return nil, errors.New("snapbi: the symmetric signature covers a B2B access token: AccessTokenPath is required")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.NotifyTolerance <= 0 {
		cfg.NotifyTolerance = 5 * time.Minute
	}
	cfg.BaseURL = strings.TrimSuffix(cfg.BaseURL, "/")
	u, err := url.Parse(cfg.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("snapbi: BaseURL %q must be an absolute http(s) URL", cfg.BaseURL)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("snapbi: BaseURL %q must not carry a query or fragment", cfg.BaseURL)
	}
	hc := cfg.HTTPClient
	if hc == nil {
		hc = providers.NewHTTPClient(cfg.Timeout)
	}
	return &Client{cfg: cfg, hc: hc, basePath: u.Path}, nil
}

// Envelope is the part every SNAP response has.
type Envelope struct {
	ResponseCode    ResponseCode `json:"responseCode"`
	ResponseMessage string       `json:"responseMessage"`
}

type tokenResponse struct {
	Envelope
	AccessToken string          `json:"accessToken"`
	TokenType   string          `json:"tokenType"`
	ExpiresIn   json.RawMessage `json:"expiresIn"` // "900" in SNAP, a number at some wallets
}

// UsesAccessToken reports whether the wallet takes a B2B access token.
func (c *Client) UsesAccessToken() bool { return c.cfg.AccessTokenPath != "" }

// SignedPath is the path a request to endpoint is signed over: BaseURL's
// path prefix followed by endpoint, exactly the path of the URL sent.
func (c *Client) SignedPath(endpoint string) string { return c.basePath + endpoint }

// AccessToken returns a cached B2B token, fetching one when none is valid.
// A failure is an *providers.Error of class Unavailable or Invalid: no
// transaction has been sent yet, so nothing can have been charged.
func (c *Client) AccessToken(ctx context.Context) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.token != "" && c.cfg.Now().Before(c.expires) {
		return c.token, nil
	}
	tok, exp, err := c.fetchToken(ctx)
	if err != nil {
		return "", err
	}
	c.token, c.expires = tok, exp
	return tok, nil
}

// invalidate forgets tok if it is still the cached one.
func (c *Client) invalidate(tok string) {
	c.mu.Lock()
	if c.token == tok {
		c.token = ""
	}
	c.mu.Unlock()
}

func (c *Client) fetchToken(ctx context.Context) (string, time.Time, error) {
	now := c.cfg.Now()
	ts := Timestamp(now)
	sig, err := SignRSA(c.cfg.PrivateKey, AccessTokenStringToSign(c.cfg.ClientID, ts))
	if err != nil {
		return "", time.Time{}, &providers.Error{Class: providers.Invalid, Code: "signing_failed", Err: err}
	}
	body := []byte(`{"grantType":"client_credentials"}`)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.cfg.BaseURL+c.cfg.AccessTokenPath, bytes.NewReader(body))
	if err != nil {
		return "", time.Time{}, &providers.Error{Class: providers.Invalid, Code: "bad_request", Err: err}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-TIMESTAMP", ts)
	req.Header.Set("X-CLIENT-KEY", c.cfg.ClientID)
	req.Header.Set("X-SIGNATURE", sig)
	resp, err := c.hc.Do(req)
	if err != nil {
		// Only a token was at stake: the payment was never sent.
		e := providers.ClassifyTransport(err)
		return "", time.Time{}, &providers.Error{Class: providers.Unavailable, Code: "token_" + e.Code, Message: "access token request failed", Err: err}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", time.Time{}, &providers.Error{Class: providers.Unavailable, Code: "token_network_error", Err: err}
	}
	var tr tokenResponse
	jerr := json.Unmarshal(raw, &tr)
	if jerr != nil || !tr.ResponseCode.Success() || resp.StatusCode >= 300 || tr.AccessToken == "" {
		e := Classify(resp.StatusCode, tr.ResponseCode, tr.ResponseMessage)
		if e.Class == providers.Ambiguous {
			e.Class = providers.Unavailable // no payment was sent
		}
		if e.Code != providers.CodeCredentialsRefused { // that one keeps its code: ops look for it
			e.Code = "token_" + e.Code
		}
		if e.Message == "" {
			e.Message = fmt.Sprintf("access token request answered HTTP %d", resp.StatusCode)
		}
		return "", time.Time{}, e
	}
	ttl := parseExpiresIn(tr.ExpiresIn)
	// Refresh a minute early (or at half-life for short tokens) so a token
	// never expires between our check and the wallet's.
	margin := time.Minute
	if ttl < 2*time.Minute {
		margin = ttl / 2
	}
	return tr.AccessToken, now.Add(ttl - margin), nil
}

// parseExpiresIn accepts "900" or 900; default 15 minutes (BI's rule for
// B2B tokens).
func parseExpiresIn(raw json.RawMessage) time.Duration {
	s := strings.Trim(string(raw), `"`)
	var n int64
	if _, err := fmt.Sscanf(s, "%d", &n); err != nil || n <= 0 || n > 86400*7 {
		return 15 * time.Minute
	}
	return time.Duration(n) * time.Second
}

// Request is one signed transaction call.
type Request struct {
	Path       string // endpoint path; signed with BaseURL's path prefix before it
	ExternalID string // X-EXTERNAL-ID, ≤ 36 chars; see ExternalID
	Body       any    // marshalled, minified, signed, sent
}

// Do sends a signed POST and decodes a 2xx SNAP answer into out (which
// should embed Envelope). A non-success answer is an *providers.Error
// (Classify); a transport failure is classified by
// providers.ClassifyTransport (a timeout after sending is Ambiguous). A
// 401 is retried once with a fresh access token and the same X-EXTERNAL-ID
// (the wallet refused it before processing, so it is the same request);
// a wallet without B2B tokens gets no Authorization header and no retry.
func (c *Client) Do(ctx context.Context, r Request, out any) error {
	if len(r.ExternalID) == 0 || len(r.ExternalID) > ExternalIDLen {
		return providers.Errorf(providers.Invalid, "invalid_request", "X-EXTERNAL-ID must be 1–%d characters", ExternalIDLen)
	}
	body, err := json.Marshal(r.Body)
	if err != nil {
		return &providers.Error{Class: providers.Invalid, Code: "invalid_request", Message: "cannot encode request", Err: err}
	}
	// json.Marshal output is already minimal; Minify keeps that true if a
	// caller passes json.RawMessage with whitespace.
	if body, err = Minify(body); err != nil {
		return &providers.Error{Class: providers.Invalid, Code: "invalid_request", Err: err}
	}
	for try := 0; ; try++ {
		var tok string
		if c.UsesAccessToken() {
			if tok, err = c.AccessToken(ctx); err != nil {
				return err
			}
		}
		status, raw, err := c.send(ctx, r, body, tok)
		if err != nil {
			return err
		}
		if status == http.StatusUnauthorized && try == 0 && tok != "" {
			c.invalidate(tok)
			continue
		}
		return decode(status, raw, out)
	}
}

func (c *Client) send(ctx context.Context, r Request, body []byte, tok string) (int, []byte, error) {
	ts := Timestamp(c.cfg.Now())
	path := c.SignedPath(r.Path)
	var sig string
	switch c.cfg.Scheme {
	case Symmetric:
		sts, err := SymmetricStringToSign(http.MethodPost, path, tok, body, ts)
		if err != nil {
			return 0, nil, &providers.Error{Class: providers.Invalid, Code: "invalid_request", Err: err}
		}
		sig = SignHMAC(c.cfg.ClientSecret, sts)
	default:
		sts, err := StringToSign(http.MethodPost, path, body, ts)
		if err != nil {
			return 0, nil, &providers.Error{Class: providers.Invalid, Code: "invalid_request", Err: err}
		}
		if sig, err = SignRSA(c.cfg.PrivateKey, sts); err != nil {
			return 0, nil, &providers.Error{Class: providers.Invalid, Code: "signing_failed", Err: err}
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.cfg.BaseURL+r.Path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, &providers.Error{Class: providers.Invalid, Code: "invalid_request", Err: err}
	}
	req.Header.Set("Content-Type", "application/json")
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	req.Header.Set("X-TIMESTAMP", ts)
	req.Header.Set("X-SIGNATURE", sig)
	req.Header.Set("X-PARTNER-ID", c.cfg.ClientID)
	req.Header.Set("X-EXTERNAL-ID", r.ExternalID)
	req.Header.Set("CHANNEL-ID", c.cfg.ChannelID)
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, nil, providers.ClassifyTransport(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		// The answer was cut off: the wallet may have processed it.
		return 0, nil, &providers.Error{Class: providers.Ambiguous, Code: "network_error", HTTPStatus: resp.StatusCode, Err: err}
	}
	return resp.StatusCode, raw, nil
}

func decode(status int, raw []byte, out any) error {
	var env Envelope
	jerr := json.Unmarshal(raw, &env)
	if jerr != nil || status >= 300 || !env.ResponseCode.Success() {
		e := Classify(status, env.ResponseCode, env.ResponseMessage)
		if e.Message == "" {
			e.Message = fmt.Sprintf("wallet answered HTTP %d without a SNAP response code", status)
		}
		return e
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(raw, out); err != nil {
		// 2xx with a body we cannot read: it was processed, but we do not
		// know how; the resolver must ask.
		return &providers.Error{Class: providers.Ambiguous, Code: "unexpected_response", HTTPStatus: status, ProviderCode: string(env.ResponseCode), Message: "cannot decode wallet response", Err: err}
	}
	return nil
}

// Now is the client's clock.
func (c *Client) Now() time.Time { return c.cfg.Now() }
