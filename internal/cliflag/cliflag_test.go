package cliflag

import (
	"flag"
	"io"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	for _, tt := range []struct{ args, pos string }{
		{"a b --replay", "a b"},
		{"--replay a b", "a b"},
		{"a --replay b", "a b"},
		{"a -- --replay", "a --replay"},
	} {
		fs := flag.NewFlagSet("x", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		replay := fs.Bool("replay", false, "")
		pos, err := Parse(fs, strings.Fields(tt.args))
		if err != nil || strings.Join(pos, " ") != tt.pos {
			t.Errorf("Parse(%q) = %q, %v; want %q", tt.args, pos, err, tt.pos)
		}
		if !*replay && !strings.Contains(tt.args, "-- --replay") {
			t.Errorf("Parse(%q): --replay not set", tt.args)
		}
	}
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	if _, err := Parse(fs, []string{"a", "--nope"}); err == nil {
		t.Error("an unknown flag is accepted")
	}
}
