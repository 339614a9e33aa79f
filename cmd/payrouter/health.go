package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"runtime/debug"
	"time"
)

// healthcheck is `payrouter healthcheck`: the Docker HEALTHCHECK of an
// image without a shell. Exit 0 when /healthz answers 200, else 1.
func healthcheck(ctx context.Context, args []string, stdout, stderr writer) int {
	fs := newFlags("healthcheck", "healthcheck [--url http://127.0.0.1:8080/healthz] [--timeout 3s]", stderr)
	url := fs.String("url", "http://127.0.0.1:8080/healthz", "liveness URL of the running payrouter")
	timeout := fs.Duration("timeout", 3*time.Second, "give up after this long")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "payrouter healthcheck: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, *url, nil)
	if err != nil {
		fmt.Fprintf(stderr, "payrouter healthcheck: %v\n", err)
		return 2
	}
	// Liveness of our own process over loopback: the certificate (if any)
	// is for the public name, so it is not verified here.
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	resp, err := hc.Do(req)
	if err != nil {
		fmt.Fprintf(stderr, "payrouter healthcheck: %v\n", err)
		return 1
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(stderr, "payrouter healthcheck: %s answered %s\n", *url, resp.Status)
		return 1
	}
	fmt.Fprintf(stdout, "ok: %s\n", *url)
	return 0
}

// version prints what runtime/debug knows about this binary.
func version(stdout writer) int {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		fmt.Fprintln(stdout, "payrouter (no build information)")
		return 0
	}
	settings := map[string]string{}
	for _, s := range bi.Settings {
		settings[s.Key] = s.Value
	}
	commit := settings["vcs.revision"]
	if commit == "" {
		commit = "unknown"
	}
	if settings["vcs.modified"] == "true" {
		commit += " (modified)"
	}
	fmt.Fprintf(stdout, "payrouter %s\ncommit %s", bi.Main.Version, commit)
	if t := settings["vcs.time"]; t != "" {
		fmt.Fprintf(stdout, " (%s)", t)
	}
	fmt.Fprintf(stdout, "\n%s\n", bi.GoVersion)
	return 0
}
