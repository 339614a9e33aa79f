package payrouter_test

import (
	"context"
	"encoding/json"
	"flag"
	"io"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"

	"github.com/payrouter/payrouter/internal/config"
)

// loadCompose loads docker-compose.yml the way `docker compose` does
// (schema validation, interpolation from env).
func loadCompose(t *testing.T, env map[string]string) *types.Project {
	t.Helper()
	p, err := loader.LoadWithContext(context.Background(), types.ConfigDetails{
		WorkingDir:  ".",
		ConfigFiles: []types.ConfigFile{{Filename: "docker-compose.yml"}},
		Environment: env,
	}, func(o *loader.Options) { o.SetProjectName("payrouter", true) })
	if err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	return p
}

func TestComposeFile(t *testing.T) {
	p := loadCompose(t, map[string]string{})
	for _, name := range []string{"router", "postgres", "redis"} {
		t.Run(name, func(t *testing.T) {
			s, ok := p.Services[name]
			if !ok {
				t.Fatalf("no service %q", name)
			}
			if s.Restart != "unless-stopped" && s.Restart != "always" {
				t.Errorf("restart = %q, want a policy that restarts", s.Restart)
			}
			hc := s.HealthCheck
			if hc == nil || hc.Disable || len(hc.Test) < 2 || hc.Test[0] != "CMD" {
				t.Errorf("healthcheck = %+v, want an exec-form test", hc)
			}
			if name == "router" {
				return // its volumes are checked below
			}
			if !slices.ContainsFunc(s.Volumes, func(v types.ServiceVolumeConfig) bool {
				return v.Type == types.VolumeTypeVolume && p.Volumes[v.Source].Name != ""
			}) {
				t.Errorf("no named volume: %+v", s.Volumes)
			}
		})
	}

	r := p.Services["router"]
	// The distroless image has no shell: the check is the binary itself.
	if r.HealthCheck == nil || strings.Join(r.HealthCheck.Test, " ") != "CMD /payrouter healthcheck" {
		t.Errorf("router healthcheck = %+v, want CMD /payrouter healthcheck", r.HealthCheck)
	}
	for dep, want := range map[string]string{"postgres": "service_healthy", "redis": "service_healthy"} {
		if r.DependsOn[dep].Condition != want {
			t.Errorf("depends_on %s: condition %q, want %q", dep, r.DependsOn[dep].Condition, want)
		}
	}
	if len(r.Ports) != 1 || r.Ports[0].Target != 8080 || r.Ports[0].HostIP != "127.0.0.1" {
		t.Errorf("ports = %+v, want 8080 published on 127.0.0.1 only (sandbox simulators take no key)", r.Ports)
	}
	var data, cfgTarget string
	for _, v := range r.Volumes {
		switch {
		case v.Type == types.VolumeTypeVolume && v.Target == "/var/lib/payrouter":
			data = v.Source
		case v.Type == types.VolumeTypeBind && strings.HasSuffix(v.Source, "config.yaml"):
			cfgTarget = v.Target
			if !v.ReadOnly {
				t.Errorf("config mount is writable")
			}
		}
	}
	if data == "" || p.Volumes[data].Name == "" {
		t.Errorf("router has no named volume at /var/lib/payrouter (the SQLite file): %+v", r.Volumes)
	}

	// The command replaces the image's CMD after ENTRYPOINT ["/payrouter"]:
	// it must be a serve invocation without stray arguments that uses the
	// mounted config.
	entry, _ := dockerfile(t)
	if !slices.Equal(entry, []string{"/payrouter"}) {
		t.Fatalf("Dockerfile ENTRYPOINT = %q, want [/payrouter] so compose's command is not appended to a command", entry)
	}
	cmd := []string(r.Command)
	if len(cmd) == 0 || cmd[0] != "serve" {
		t.Fatalf("command = %q, want serve …", cmd)
	}
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	path := fs.String("config", "", "")
	fs.String("listen", "", "")
	if err := fs.Parse(cmd[1:]); err != nil || fs.NArg() > 0 {
		t.Fatalf("command %q: err %v, stray %q", cmd, err, fs.Args())
	}
	if *path == "" || *path != cfgTarget {
		t.Errorf("serve --config %q, but config.yaml is mounted at %q", *path, cfgTarget)
	}

	// The mounted config.yaml under the service's environment: postgres,
	// redis, and the bridge range allowed to the simulators.
	src, err := os.ReadFile("config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c, err := config.Parse("config.yaml", src, func(k string) (string, bool) {
		v := r.Environment[k]
		if v == nil {
			return "", false
		}
		return *v, true
	})
	if err != nil {
		t.Fatalf("config.yaml with the compose environment: %v", err)
	}
	if c.Store.Driver != "postgres" || !strings.Contains(c.Store.DSN, "@postgres:5432/") || c.Redis.URL != "redis://redis:6379/0" {
		t.Errorf("compose config: store %+v, redis %q", c.Store, c.Redis.URL)
	}
	if !slices.Contains(c.SandboxClients, "127.0.0.0/8") || !slices.Contains(c.SandboxClients, "172.16.0.0/12") {
		t.Errorf("sandbox_clients = %v", c.SandboxClients)
	}
}

func TestComposeBindOverride(t *testing.T) {
	p := loadCompose(t, map[string]string{"PAYROUTER_BIND": "0.0.0.0"})
	if got := p.Services["router"].Ports[0].HostIP; got != "0.0.0.0" {
		t.Errorf("PAYROUTER_BIND=0.0.0.0: host_ip %q", got)
	}
}

// dockerfile returns the exec-form ENTRYPOINT and HEALTHCHECK of the
// Dockerfile.
func dockerfile(t *testing.T) (entry, health []string) {
	t.Helper()
	src, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	execForm := func(s string) []string {
		var v []string
		if err := json.Unmarshal([]byte(strings.TrimSpace(s)), &v); err != nil {
			t.Fatalf("Dockerfile: %q is not an exec form (JSON array): %v", s, err)
		}
		return v
	}
	for _, line := range strings.Split(string(src), "\n") {
		if rest, ok := strings.CutPrefix(line, "ENTRYPOINT "); ok {
			entry = execForm(rest)
		}
		if rest, ok := strings.CutPrefix(line, "HEALTHCHECK "); ok {
			_, cmd, _ := strings.Cut(rest, " CMD ")
			health = execForm(cmd)
		}
	}
	return entry, health
}

func TestDockerfile(t *testing.T) {
	_, health := dockerfile(t)
	if !slices.Equal(health, []string{"/payrouter", "healthcheck"}) {
		t.Errorf("HEALTHCHECK CMD = %q", health)
	}
	ignore, err := os.ReadFile(".dockerignore")
	if err != nil {
		t.Fatalf("no .dockerignore: the build context would carry .git and local databases: %v", err)
	}
	lines := strings.Fields(string(ignore))
	for _, want := range []string{".git", "**/*.db", "data/"} {
		if !slices.Contains(lines, want) {
			t.Errorf(".dockerignore lacks %q", want)
		}
	}
}
