//go:build unix

package sqlite_test

import (
	"syscall"
	"time"
)

// processCPU is the CPU time (user + system) the test process has used:
// the benchmarks report it per payment, steadier than payments/s on a
// shared machine.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
