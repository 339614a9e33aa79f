package ops

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// Client calls a running instance's ops API (what `payrouter rules push`
// uses, so a pushed file takes the same path as the console and the API).
type Client struct {
	URL  string // base URL, e.g. http://127.0.0.1:8080
	Key  string // an ops key
	HTTP *http.Client
}

// APIError is an error answer of the ops API.
type APIError struct {
	Status int
	Body   struct {
		Error struct {
			Type, Code, Message string
		} `json:"error"`
		Check *Check `json:"check"`
	}
}

func (e *APIError) Error() string {
	return fmt.Sprintf("ops API: %d %s: %s", e.Status, e.Body.Error.Code, e.Body.Error.Message)
}

func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	b, err := json.Marshal(in)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(c.URL, "/")+path, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.Key)
	req.Header.Set("Content-Type", "application/json")
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		e := &APIError{Status: resp.StatusCode}
		_ = json.Unmarshal(body, &e.Body)
		return e
	}
	return json.Unmarshal(body, out)
}

// CreateVersion stores yaml as a draft (POST /ops/v1/rules/versions).
func (c *Client) CreateVersion(ctx context.Context, yaml, reason string) (*Created, error) {
	var out Created
	return &out, c.do(ctx, http.MethodPost, "/ops/v1/rules/versions", CreateRequest{YAML: yaml, Reason: reason}, &out)
}

// Activate activates version v.
func (c *Client) Activate(ctx context.Context, v, reason string) (*Activated, error) {
	var out Activated
	return &out, c.do(ctx, http.MethodPost, "/ops/v1/rules/versions/"+v+"/activate", ReasonRequest{Reason: reason}, &out)
}
