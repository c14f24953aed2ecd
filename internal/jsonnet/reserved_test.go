package jsonnet_test

import (
	"testing"

	"github.com/hacompile/hacompile/internal/jsonnet"
	"github.com/hacompile/hacompile/internal/push"
)

// TestReservedPaths: what custom generators may not write is what push
// keeps for itself.
func TestReservedPaths(t *testing.T) {
	if "/"+jsonnet.ReservedDir != push.StateDir || jsonnet.ReservedPrefix != push.TempPrefix {
		t.Errorf("reserved /%s and %s*, push keeps %s and %s*", jsonnet.ReservedDir, jsonnet.ReservedPrefix, push.StateDir, push.TempPrefix)
	}
}
