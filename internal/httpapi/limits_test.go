package httpapi

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// slowServer serves an echo of the body length behind the body bounds.
func slowServer(t *testing.T, l BodyLimits) *httptest.Server {
	t.Helper()
	s := &Server{Limits: l}
	h := s.bounded(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			t.Errorf("handler read: %v", err)
		}
		writeJSON(w, 200, map[string]int{"len": len(b)})
	}))
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// trickle opens a connection, sends the headers of a POST announcing n
// body bytes, then one byte every `every` until stop is closed.
func trickle(t *testing.T, addr, path string, n int, every time.Duration, stop <-chan struct{}) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n{", path, n)
	go func() {
		tk := time.NewTicker(every)
		defer tk.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tk.C:
				if _, err := c.Write([]byte(" ")); err != nil {
					return
				}
			}
		}
	}()
	return c
}

// Slow-loris: connections trickling a body are cut with 408 within the
// read timeout, and a normal request is answered meanwhile, before any of
// them is cut.
func TestSlowBodiesAreCut(t *testing.T) {
	const timeout = 2 * time.Second
	srv := slowServer(t, BodyLimits{ReadTimeout: timeout})
	addr := srv.Listener.Addr().String()
	stop := make(chan struct{})
	defer close(stop)
	start := time.Now()
	var conns []net.Conn
	for i := 0; i < 30; i++ {
		conns = append(conns, trickle(t, addr, "/webhooks/stripe", 1000, 200*time.Millisecond, stop))
	}
	cut := make(chan string, len(conns))
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Add(1)
		go func(c net.Conn) {
			defer wg.Done()
			defer c.Close()
			_ = c.SetReadDeadline(time.Now().Add(timeout + 10*time.Second))
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				cut <- "no response: " + err.Error()
				return
			}
			b, _ := io.ReadAll(resp.Body)
			cut <- fmt.Sprintf("%d %s", resp.StatusCode, strings.TrimSpace(string(b)))
		}(c)
	}

	// A normal request while the slow ones are open.
	resp, err := http.Post(srv.URL+"/v1/payments", "application/json", strings.NewReader(`{"amount":1}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("normal request: %d", resp.StatusCode)
	}
	select {
	case r := <-cut:
		t.Fatalf("a slow connection was answered before the normal request was: %s", r)
	default:
	}

	wg.Wait()
	close(cut)
	elapsed := time.Since(start)
	for r := range cut {
		if !strings.HasPrefix(r, "408 ") || !strings.Contains(r, "body_timeout") {
			t.Errorf("slow connection: %s, want 408 body_timeout", r)
		}
	}
	// Cut within the bound (plus scheduling slack), not when the client
	// gives up: the client would trickle for 200 s.
	if elapsed > timeout+5*time.Second {
		t.Errorf("slow connections cut after %s, bound %s", elapsed, timeout)
	}
}

// A body that is slow but arrives within the bound is served.
func TestSlowButInTimeBodyServed(t *testing.T) {
	srv := slowServer(t, BodyLimits{ReadTimeout: 5 * time.Second})
	c, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	body := `{"amount":1000}`
	fmt.Fprintf(c, "POST /v1/payments HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", len(body))
	tk := time.NewTicker(50 * time.Millisecond) // ~0.75 s for the body
	for i := 0; i < len(body); i++ {
		<-tk.C
		if _, err := c.Write([]byte{body[i]}); err != nil {
			t.Fatal(err)
		}
	}
	tk.Stop()
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.Contains(string(b), fmt.Sprintf(`"len":%d`, len(body))) {
		t.Errorf("slow in-time body: %d %s", resp.StatusCode, b)
	}
}

func TestBodySizeLimits(t *testing.T) {
	srv := slowServer(t, BodyLimits{MaxBytes: 2048, MaxWebhookBytes: 4096})
	tests := []struct {
		path    string
		n       int
		chunked bool
		want    int
	}{
		{"/v1/payments", 2048, false, 200},
		{"/v1/payments", 2049, false, 400},
		{"/v1/payments", 2049, true, 400}, // no Content-Length: cut while reading
		{"/webhooks/stripe", 4096, false, 200},
		{"/webhooks/stripe", 4097, true, 400},
	}
	for _, tt := range tests {
		body := io.Reader(strings.NewReader(strings.Repeat(" ", tt.n)))
		if tt.chunked {
			body = io.MultiReader(body) // hides the length: chunked encoding
		}
		resp, err := http.Post(srv.URL+tt.path, "application/json", body)
		if err != nil {
			t.Fatal(err)
		}
		var out struct {
			Len   int `json:"len"`
			Error struct {
				Code string `json:"code"`
			} `json:"error"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&out)
		resp.Body.Close()
		if resp.StatusCode != tt.want {
			t.Errorf("%s %d bytes (chunked %v): %d, want %d", tt.path, tt.n, tt.chunked, resp.StatusCode, tt.want)
		}
		if tt.want == 200 && out.Len != tt.n {
			t.Errorf("%s: handler saw %d bytes, want %d", tt.path, out.Len, tt.n)
		}
		if tt.want == 400 && out.Error.Code != "body_too_large" {
			t.Errorf("%s: code %q, want body_too_large", tt.path, out.Error.Code)
		}
	}
}
