// Package gctune sets the Go garbage collector for a payrouter process.
//
// The router allocates a lot per request (HTTP, JSON, SQL arguments) and
// keeps little: its live heap is tens of MB. At Go's default (GOGC=100) it
// collects every time the heap doubles that small live set, and the
// collector was an eighth of the router's CPU under load (BENCHMARKS.md).
// Collecting less often costs memory, so it is only done when the process
// has a memory limit to stay under: the container's (cgroup), the
// configured one, or GOMEMLIMIT. Without one the collector keeps Go's
// default. GOGC and GOMEMLIMIT in the environment always win: they are the
// operator's explicit choice and the runtime has already applied them.
package gctune

import (
	"math"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
)

// Relaxed is the GC percent used when a memory limit bounds the heap.
const Relaxed = 400

// cgroupShare is the part of a container's memory limit given to the Go
// heap (the rest: stacks, SQLite's page cache, the runtime's own).
const cgroupShare = 0.8

// Settings are server.gc_percent and server.memory_limit_mb; 0 is auto.
type Settings struct {
	GCPercent     int
	MemoryLimitMB int64
}

// Applied is what Apply left in force, for the start-up log.
type Applied struct {
	GCPercent   int    // -1: off
	MemoryLimit int64  // bytes; 0: none
	Source      string // where the limit came from: env, config, cgroup, none
}

func (a Applied) String() string {
	gc := "off"
	if a.GCPercent >= 0 {
		gc = strconv.Itoa(a.GCPercent)
	}
	if a.MemoryLimit == 0 {
		return "GOGC=" + gc + ", no memory limit"
	}
	return "GOGC=" + gc + ", memory limit " + strconv.FormatInt(a.MemoryLimit>>20, 10) + " MiB (" + a.Source + ")"
}

// Env is the environment and the files Apply reads (os's by default;
// tests give their own).
type Env struct {
	Getenv   func(string) string
	ReadFile func(string) ([]byte, error)
}

// Apply sets the collector from s.
func Apply(s Settings, e Env) Applied {
	if e.Getenv == nil {
		e.Getenv = os.Getenv
	}
	if e.ReadFile == nil {
		e.ReadFile = os.ReadFile
	}
	a := Applied{Source: "none"}
	switch {
	case e.Getenv("GOMEMLIMIT") != "":
		a.Source = "env"
	case s.MemoryLimitMB > 0:
		debug.SetMemoryLimit(s.MemoryLimitMB << 20)
		a.Source = "config"
	default:
		if n := cgroupLimit(e.ReadFile); n > 0 {
			debug.SetMemoryLimit(int64(float64(n) * cgroupShare))
			a.Source = "cgroup"
		}
	}
	if l := debug.SetMemoryLimit(-1); l != math.MaxInt64 {
		a.MemoryLimit = l
	}
	switch {
	case e.Getenv("GOGC") != "":
	case s.GCPercent != 0:
		debug.SetGCPercent(s.GCPercent)
	case a.MemoryLimit > 0:
		debug.SetGCPercent(Relaxed)
	}
	// Read back what is in force (SetGCPercent answers the previous value).
	a.GCPercent = debug.SetGCPercent(-1)
	debug.SetGCPercent(a.GCPercent)
	return a
}

// cgroupLimit is the container's memory limit in bytes, 0 when none:
// cgroup v2's memory.max, else v1's memory.limit_in_bytes (which reads a
// huge number when unlimited).
func cgroupLimit(read func(string) ([]byte, error)) int64 {
	for _, path := range []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"} {
		b, err := read(path)
		if err != nil {
			continue
		}
		v := strings.TrimSpace(string(b))
		n, err := strconv.ParseInt(v, 10, 64)
		if v == "max" || err != nil || n <= 0 || n >= 1<<60 {
			return 0
		}
		return n
	}
	return 0
}
