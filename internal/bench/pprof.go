package bench

import (
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"runtime"
)

// ServePprof serves net/http/pprof on a loopback address for the length of
// a run, so goroutine, block and mutex profiles can be taken mid-run (what
// a CPU profile cannot show: where requests wait). It turns block and
// mutex sampling on while it serves.
func ServePprof(addr string) (stop func(), err error) {
	if err := loopbackOnly("http://" + addr); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("bench: pprof: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux}
	go func() { _ = srv.Serve(ln) }()
	runtime.SetBlockProfileRate(10_000) // one sample per 10µs blocked
	runtime.SetMutexProfileFraction(20)
	return func() {
		runtime.SetBlockProfileRate(0)
		runtime.SetMutexProfileFraction(0)
		_ = srv.Close()
	}, nil
}
