package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/term"

	"github.com/payrouter/payrouter/internal/apikey"
)

// keysHash is `payrouter keys hash`: reads one key on stdin (without echo
// on a terminal) and prints its sha256:… form for api_keys, so the plain
// key never has to be written into a config file.
func keysHash(ctx context.Context, args []string, stdout, stderr writer) int {
	fs := newFlags("keys hash", "keys hash < key.txt   (or type the key at the prompt)", stderr)
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "payrouter keys hash: unexpected argument %q (the key is read on stdin, never from the command line)\n", fs.Arg(0))
		return 2
	}
	key, err := readKey(os.Stdin, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "payrouter keys hash: %v\n", err)
		return 1
	}
	return printHash(key, stdout, stderr)
}

func printHash(key string, stdout, stderr writer) int {
	if key == "" {
		fmt.Fprintln(stderr, "payrouter keys hash: no key on stdin")
		return 1
	}
	fmt.Fprintln(stdout, apikey.Hash(key).String())
	return 0
}

// readKey reads the first line of f, prompting without echo when f is a
// terminal.
func readKey(f *os.File, stderr io.Writer) (string, error) {
	if term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(stderr, "API key: ")
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(stderr)
		return strings.TrimSpace(string(b)), err
	}
	return readLine(f)
}

func readLine(r io.Reader) (string, error) {
	line, err := bufio.NewReader(r).ReadString('\n')
	if err != nil && err != io.EOF {
		return "", err
	}
	return strings.TrimRight(line, "\r\n"), nil
}
