//go:build unix

// Package cpustat reads the CPU time the process has used: the bench and
// the store benchmarks report it per payment, a figure steadier than
// throughput on a shared machine.
package cpustat

import (
	"syscall"
	"time"
)

// Process is the CPU time (user + system) the process has used.
func Process() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
