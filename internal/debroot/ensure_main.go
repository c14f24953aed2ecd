//go:build ignore

// Command ensure_main builds (or finds) the cached root of one release
// and prints its path: go run ./internal/debroot/ensure_main.go debian-13
// [-verifier]. -verifier is the root with the signature verifier
// (VerifierPackages) instead of the tools. make roots runs it; the
// tests call debroot.Ensure themselves.
package main

import (
	"fmt"
	"os"

	"github.com/hacompile/hacompile/internal/debroot"
)

func main() {
	pkgs := debroot.ToolPackages
	if len(os.Args) > 2 && os.Args[2] == "-verifier" {
		pkgs = debroot.VerifierPackages
	}
	r, err := debroot.Ensure(os.Args[1], pkgs, os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(r)
}
