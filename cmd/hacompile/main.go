// Command hacompile compiles high-availability web stacks described in
// CUE into the configuration files of every host and a runbook site.
package main

import (
	"os"

	"github.com/hacompile/hacompile/cmd/hacompile/cli"
)

func main() { os.Exit(cli.Main()) }
