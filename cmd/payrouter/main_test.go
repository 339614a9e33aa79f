package main

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/payrouter/payrouter/internal/apikey"
)

func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestHelpExitsZeroEverywhere(t *testing.T) {
	cmds := [][]string{{"--help"}, {"help"}, {"-h"}, {"rules", "--help"}, {"route", "--help"}, {"events", "--help"}, {"keys", "--help"},
		{"serve", "--help"}, {"rules", "check", "--help"}, {"rules", "test", "-h"}, {"rules", "diff", "--help"},
		{"route", "explain", "--help"}, {"events", "tail", "--help"}, {"events", "redeliver", "--help"},
		{"reconcile", "--help"}, {"bench", "--help"}, {"sim", "--help"}, {"keys", "hash", "--help"}, {"healthcheck", "--help"}}
	for _, args := range cmds {
		code, out, errs := runCLI(t, args...)
		if code != 0 {
			t.Errorf("payrouter %s: exit %d, want 0\n%s%s", strings.Join(args, " "), code, out, errs)
		}
		if !strings.Contains(out+errs, "usage: payrouter") {
			t.Errorf("payrouter %s: no usage line in %q", strings.Join(args, " "), out+errs)
		}
	}
}

func TestUsageErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{nil, "usage: payrouter <command>"},
		{[]string{"nope"}, `unknown command "nope"`},
		{[]string{"rules"}, "usage: payrouter rules <command>"},
		{[]string{"rules", "nope"}, `unknown command "rules nope"`},
		// docker: ENTRYPOINT "serve --config A" plus a command "serve --config B"
		{[]string{"serve", "--config", "/etc/a.yaml", "serve", "--config", "/etc/b.yaml"}, `unexpected argument "serve"`},
		{[]string{"serve", "--bogus"}, "flag provided but not defined: -bogus"},
		{[]string{"bench", "--bogus"}, "usage: payrouter bench"}, // one usage style, not Go's default
		{[]string{"keys", "hash", "sk_on_the_command_line"}, "never from the command line"},
	}
	for _, tt := range tests {
		code, out, errs := runCLI(t, tt.args...)
		if code != 2 || !strings.Contains(errs, tt.want) {
			t.Errorf("payrouter %s: exit %d, stderr %q (stdout %q); want 2 and %q", strings.Join(tt.args, " "), code, errs, out, tt.want)
		}
	}
}

func TestServeRefusesBadConfig(t *testing.T) {
	dir := t.TempDir()
	bad := dir + "/c.yaml"
	if err := os.WriteFile(bad, []byte("merchants: [{id: a, api_keys: [k]}]\nserver: {lisen: x}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, errs := runCLI(t, "serve", "--config", bad)
	if code != 1 || !strings.Contains(errs, "line 2: unknown key server.lisen (did you mean server.listen?)") {
		t.Errorf("exit %d, stderr %q", code, errs)
	}
}

func TestVersion(t *testing.T) {
	code, out, _ := runCLI(t, "version")
	if code != 0 || !strings.HasPrefix(out, "payrouter ") || !strings.Contains(out, "\ncommit ") || !strings.Contains(out, "\ngo1.") {
		t.Errorf("version: exit %d, %q", code, out)
	}
}

func TestKeysHashReadsStdin(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	old := os.Stdin
	os.Stdin = r
	t.Cleanup(func() { os.Stdin = old; r.Close() })
	_, _ = w.WriteString("sk_live_123\r\n")
	w.Close()
	code, out, errs := runCLI(t, "keys", "hash")
	want := apikey.Hash("sk_live_123").String() + "\n"
	if code != 0 || out != want {
		t.Fatalf("exit %d, out %q (stderr %q), want %q", code, out, errs, want)
	}
	if strings.Contains(out+errs, "sk_live_123") {
		t.Error("the plain key was echoed")
	}
}

func TestHealthcheck(t *testing.T) {
	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" {
			http.NotFound(w, r)
		}
	}))
	defer ok.Close()
	if code, _, errs := runCLI(t, "healthcheck", "--url", ok.URL+"/healthz"); code != 0 {
		t.Errorf("healthy: exit %d %s", code, errs)
	}
	if code, _, errs := runCLI(t, "healthcheck", "--url", ok.URL+"/elsewhere"); code != 1 || !strings.Contains(errs, "404") {
		t.Errorf("404: exit %d %q, want 1", code, errs)
	}
	ok.Close()
	if code, _, _ := runCLI(t, "healthcheck", "--url", ok.URL+"/healthz", "--timeout", "2s"); code != 1 {
		t.Errorf("down: exit %d, want 1", code)
	}
}

// The README's diff example runs on the shipped files and gives the rules
// versions the README prints.
func TestReadmeDiffExample(t *testing.T) {
	code, out, errs := runCLI(t, "rules", "diff", "../../config.yaml", "../../new.yaml")
	if code != 0 || !strings.Contains(out, "faafadd267cc → 3bb9217dad9c") {
		t.Errorf("rules diff config.yaml new.yaml: exit %d\n%s%s", code, out, errs)
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(readme), "rules faafadd267cc → 3bb9217dad9c") {
		t.Error("README no longer shows the versions this test checks")
	}
}
