package providers

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

func TestClassifyHTTP(t *testing.T) {
	for status, want := range map[int]Class{
		200: "", 400: Invalid, 401: Invalid, 404: Invalid, 409: Invalid, 422: Invalid,
		429: Unavailable, 503: Unavailable, 500: Ambiguous, 502: Ambiguous, 504: Ambiguous,
	} {
		if got := ClassifyHTTP(status); got != want {
			t.Errorf("ClassifyHTTP(%d) = %q, want %q", status, got, want)
		}
	}
}

// A refused connection proves nothing was sent; a timeout or a dropped
// connection after sending proves nothing at all.
func TestClassifyTransport(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := ln.Addr().String()
	ln.Close()

	hang, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer hang.Close()
	go func() {
		for {
			c, err := hang.Accept()
			if err != nil {
				return
			}
			go func() { _, _ = io.Copy(io.Discard, c) }() // read, never answer
		}
	}()
	drop, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer drop.Close()
	go func() {
		for {
			c, err := drop.Accept()
			if err != nil {
				return
			}
			buf := make([]byte, 1024)
			_, _ = c.Read(buf)
			c.Close() // took the request, said nothing
		}
	}()

	post := func(addr string, timeout time.Duration) error {
		c := &http.Client{Timeout: timeout}
		resp, err := c.Post("http://"+addr+"/x", "text/plain", nil)
		if err == nil {
			resp.Body.Close()
		}
		return err
	}
	tests := []struct {
		name string
		err  error
		want Class
	}{
		{"refused", post(closedAddr, time.Second), Unavailable},
		{"timeout after sending", post(hang.Addr().String(), 200*time.Millisecond), Ambiguous},
		{"dropped after sending", post(drop.Addr().String(), time.Second), Ambiguous},
		{"dns", &net.DNSError{Err: "no such host", Name: "x.invalid"}, Unavailable},
		{"deadline", fmt.Errorf("call: %w", context.DeadlineExceeded), Ambiguous},
		{"unknown", errors.New("something"), Ambiguous},
		{"typed passes through", &Error{Class: Declined, Code: "card_declined"}, Declined},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.err == nil {
				t.Fatal("the call did not fail")
			}
			if got := ClassOf(tt.err); got != tt.want {
				t.Fatalf("ClassOf(%v) = %s, want %s", tt.err, got, tt.want)
			}
		})
	}
}

func TestSignatureError(t *testing.T) {
	err := fmt.Errorf("parse: %w", SignatureError("bad signature"))
	if !IsSignatureError(err) || IsSignatureError(Unsupported("x")) {
		t.Fatal("IsSignatureError does not tell signature errors apart")
	}
}
