//go:build ignore

// Writes a synthetic fleet stack: go run ./internal/fleet/gen N [size] > fleet.cue
package main

import (
	"os"
	"strconv"

	"github.com/hacompile/hacompile/internal/fleet"
)

func main() {
	n, _ := strconv.Atoi(os.Args[1])
	size := ""
	if len(os.Args) > 2 {
		size = os.Args[2]
	}
	os.Stdout.Write(fleet.Fleet(n, size))
}
