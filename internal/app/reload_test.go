package app_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/payrouter/payrouter/internal/app/apptest"
	"github.com/payrouter/payrouter/internal/config"
	"github.com/payrouter/payrouter/rules"
)

func TestRulesReload(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config.yaml")
	orig, err := os.ReadFile(apptest.RepoFile("config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, orig, 0o600); err != nil {
		t.Fatal(err)
	}
	ti := apptest.StartSandbox(t, filepath.Join(dir, "p.db"), func(c *config.Config) { c.Path = path; c.Ops.RulesSource = "file" })
	v0 := ti.Rules.Load().Version()

	// A valid change swaps in: cards now prefer xendit.
	changed := strings.Replace(string(orig), "providers: [stripe, xendit, midtrans]", "providers: [xendit, stripe, midtrans]", 1)
	if changed == string(orig) {
		t.Fatal("fixture: the cards rule line was not found in config.yaml")
	}
	if err := os.WriteFile(path, []byte(changed), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := ti.ReloadRules(); err != nil {
		t.Fatalf("valid reload refused: %v", err)
	}
	v1 := ti.Rules.Load().Version()
	if v1 == v0 {
		t.Fatalf("version did not change after a rules change (%s)", v1)
	}
	_, body := ti.Do(t, "POST", "/v1/routing/explain", `{"amount":1000,"currency":"IDR","method":"card","reference":"x","payment_method_tokens":{"stripe":"tok_sandbox_success","xendit":"tok_sandbox_success"}}`)
	if !strings.Contains(string(body), v1) {
		t.Errorf("explain does not use the new rules %s: %s", v1, body)
	}

	// An invalid file keeps the last good rules and says why, with file:line.
	broken := strings.Replace(changed, "strategy: priority", "strategy: fastest", 1)
	if err := os.WriteFile(path, []byte(broken), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := ti.ReloadRules(); err == nil {
		t.Fatal("an invalid rules file was accepted")
	}
	if got := ti.Rules.Load().Version(); got != v1 {
		t.Fatalf("live rules changed to %s after an invalid reload, want %s", got, v1)
	}
	st, ready := ti.Do(t, "GET", "/readyz", nil)
	if st != 200 || !strings.Contains(string(ready), "rules_reload_error") || !strings.Contains(string(ready), "config.yaml:") {
		t.Errorf("readyz after a refused reload: %d %s", st, ready)
	}
	_, metrics := ti.Do(t, "GET", "/metrics", nil)
	if !strings.Contains(string(metrics), "payrouter_rules_last_reload_ok 0") {
		t.Errorf("metrics do not expose the refused reload")
	}
}

// The shipped cases pass against the shipped config with the real
// adapters' capabilities (the rules package's own tests use a table).
func TestShippedRulesCasesWithRealCapabilities(t *testing.T) {
	ti := apptest.StartSandbox(t, filepath.Join(t.TempDir(), "p.db"), nil)
	data, err := os.ReadFile(apptest.RepoFile("rules-cases.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	cases, err := rules.ParseCases("rules-cases.yaml", data)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rules.RunCases(ti.Rules.Load(), cases) {
		if !r.Pass {
			t.Errorf("case %q: %v", r.Case.Name, r.Failures)
		}
	}
}
