package cli

import (
	"errors"

	"github.com/spf13/cobra"
)

// newTest is the system test's command where it cannot run: it boots
// hosts as systemd-nspawn containers in network namespaces, which only
// Linux has.
func newTest() *cobra.Command {
	return &cobra.Command{
		Use:                "test [FILE|DIR]...",
		Short:              "Boot the rendered stacks as real hosts (Linux only)",
		DisableFlagParsing: true,
		RunE: func(*cobra.Command, []string) error {
			return errors.New("hacompile test boots hosts as systemd-nspawn containers in network namespaces: it runs on Linux only")
		},
	}
}
