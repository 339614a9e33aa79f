// Package cliflag holds what payrouter's subcommands share beyond the flag
// package: flags mixed with positional arguments.
package cliflag

import "flag"

// Parse parses flags that may come before, between or after the positional
// arguments (`rules diff old.yaml new.yaml --replay`), which the flag
// package alone stops at; "--" ends the flags. It returns the positional
// arguments in order.
func Parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		if args[0] == "--" {
			return append(pos, args[1:]...), nil
		}
		pos, args = append(pos, args[0]), args[1:]
	}
}
