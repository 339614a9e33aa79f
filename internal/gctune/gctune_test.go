package gctune

import (
	"errors"
	"io/fs"
	"math"
	"runtime/debug"
	"testing"
)

// reset puts Go's defaults back for the test and restores the process's
// settings after it.
func reset(t *testing.T) {
	t.Helper()
	gc := debug.SetGCPercent(100)
	lim := debug.SetMemoryLimit(math.MaxInt64)
	t.Cleanup(func() {
		debug.SetGCPercent(gc)
		debug.SetMemoryLimit(lim)
	})
}

func env(vars map[string]string, files map[string]string) Env {
	return Env{
		Getenv: func(k string) string { return vars[k] },
		ReadFile: func(p string) ([]byte, error) {
			if v, ok := files[p]; ok {
				return []byte(v), nil
			}
			return nil, fs.ErrNotExist
		},
	}
}

func TestApply(t *testing.T) {
	const v2, v1 = "/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"
	tests := []struct {
		name   string
		s      Settings
		vars   map[string]string
		files  map[string]string
		gc     int
		limit  int64
		source string
	}{
		{name: "no limit anywhere: Go's default", gc: 100, source: "none"},
		{name: "cgroup v2 limit", files: map[string]string{v2: "1073741824\n"}, gc: Relaxed, limit: 858993459, source: "cgroup"},
		{name: "cgroup v2 unlimited", files: map[string]string{v2: "max\n"}, gc: 100, source: "none"},
		{name: "cgroup v1 limit", files: map[string]string{v1: "536870912"}, gc: Relaxed, limit: 429496729, source: "cgroup"},
		{name: "cgroup v1 unlimited", files: map[string]string{v1: "9223372036854771712"}, gc: 100, source: "none"},
		{name: "configured limit wins over the cgroup", s: Settings{MemoryLimitMB: 128}, files: map[string]string{v2: "1073741824"},
			gc: Relaxed, limit: 128 << 20, source: "config"},
		{name: "configured percent without a limit", s: Settings{GCPercent: 150}, gc: 150, source: "none"},
		{name: "configured percent with a limit", s: Settings{GCPercent: 200, MemoryLimitMB: 64}, gc: 200, limit: 64 << 20, source: "config"},
		{name: "GOGC in the environment is left alone", s: Settings{GCPercent: 300, MemoryLimitMB: 64}, vars: map[string]string{"GOGC": "100"},
			gc: 100, limit: 64 << 20, source: "config"},
		{name: "GOMEMLIMIT in the environment is left alone", s: Settings{MemoryLimitMB: 64}, vars: map[string]string{"GOMEMLIMIT": "1GiB"},
			gc: 100, source: "env"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reset(t)
			a := Apply(tt.s, env(tt.vars, tt.files))
			if a.GCPercent != tt.gc || a.MemoryLimit != tt.limit || a.Source != tt.source {
				t.Errorf("Apply = %+v, want gc %d, limit %d, source %s", a, tt.gc, tt.limit, tt.source)
			}
			if got := debug.SetGCPercent(-1); got != tt.gc {
				t.Errorf("GC percent in force %d, want %d", got, tt.gc)
			}
			want := tt.limit
			if want == 0 {
				want = math.MaxInt64
			}
			if got := debug.SetMemoryLimit(-1); got != want {
				t.Errorf("memory limit in force %d, want %d", got, want)
			}
		})
	}
}

func TestCgroupLimitUnreadable(t *testing.T) {
	if n := cgroupLimit(func(string) ([]byte, error) { return nil, errors.New("denied") }); n != 0 {
		t.Errorf("cgroupLimit = %d, want 0 when nothing can be read", n)
	}
	if n := cgroupLimit(func(string) ([]byte, error) { return []byte("garbage"), nil }); n != 0 {
		t.Errorf("cgroupLimit = %d, want 0 for an unparsable file", n)
	}
}
