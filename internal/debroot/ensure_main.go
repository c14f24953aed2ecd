//go:build ignore

package main

import (
	"fmt"
	"os"

	"github.com/hacompile/hacompile/internal/debroot"
)

func main() {
	r, err := debroot.Ensure(os.Args[1], debroot.ToolPackages, os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(r)
}
