package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/payrouter/payrouter/internal/app/apptest"
)

func TestRulesPush(t *testing.T) {
	dir := t.TempDir()
	ti := apptest.StartSandbox(t, filepath.Join(dir, "p.db"), nil)
	orig, err := os.ReadFile(apptest.RepoFile("config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	push := func(content string, extra ...string) (int, string, string) {
		t.Helper()
		f := filepath.Join(dir, "edited.yaml")
		if err := os.WriteFile(f, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		var out, errb bytes.Buffer
		args := append([]string{"rules", "push", f, "--url", ti.URL, "--key", "ok_sandbox_admin"}, extra...)
		code := run(args, &out, &errb)
		return code, out.String(), errb.String()
	}
	bad := strings.Replace(string(orig), "providers: [stripe, xendit, midtrans]", "providers: [xendit, strype, midtrans]", 1)
	code, _, stderr := push(bad, "--reason", "typo")
	i := strings.Index(bad, "strype")
	line := 1 + strings.Count(bad[:i], "\n")
	col := i - strings.LastIndex(bad[:i], "\n")
	if want := fmt.Sprintf("edited.yaml:%d:%d: ", line, col); code != 1 || !strings.Contains(stderr, want) || !strings.Contains(stderr, `unknown provider "strype"`) {
		t.Fatalf("bad file: exit %d, stderr %q, want %s…", code, stderr, want)
	}
	if code, _, _ := push(bad); code != 2 {
		t.Fatalf("no --reason: exit %d, want 2", code)
	}
	good := strings.Replace(bad, "strype", "stripe", 1)
	code, stdout, stderr := push(good, "--reason", "xendit first", "--activate")
	if code != 0 || stdout != "v2: draft\nv2: active (was v1)\n" {
		t.Fatalf("push: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	if v := ti.Rules.Load().Version(); v != "v2" {
		t.Fatalf("live rules %s after push --activate", v)
	}
}
