package cli

import (
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"

	"github.com/spf13/cobra"
)

// addProfileFlags adds --cpuprofile and --memprofile to every command:
// pprof files for `go tool pprof`, as `go test` writes them. They are
// hidden from --help; BENCHMARKS.md names them. The
// returned function ends the profiles; Run calls it however the command
// ended.
func addProfileFlags(root *cobra.Command) func() error {
	var cpu, mem string
	var cpuFile *os.File
	pf := root.PersistentFlags()
	pf.StringVar(&cpu, "cpuprofile", "", "write a CPU profile to `file`")
	pf.StringVar(&mem, "memprofile", "", "write an allocation profile to `file` when the command ends")
	_ = pf.MarkHidden("cpuprofile")
	_ = pf.MarkHidden("memprofile")
	root.PersistentPreRunE = func(*cobra.Command, []string) error {
		if cpu == "" {
			return nil
		}
		f, err := os.Create(cpu)
		if err != nil {
			return fmt.Errorf("--cpuprofile: %w", err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			f.Close()
			return fmt.Errorf("--cpuprofile: %w", err)
		}
		cpuFile = f
		return nil
	}
	return func() error { return stopProfiles(&cpuFile, mem) }
}

// stopProfiles ends the CPU profile and writes the allocation profile
// (when the flags asked for them).
func stopProfiles(cpuFile **os.File, mem string) error {
	if *cpuFile != nil {
		pprof.StopCPUProfile()
		err := (*cpuFile).Close()
		*cpuFile = nil
		if err != nil {
			return fmt.Errorf("--cpuprofile: %w", err)
		}
	}
	if mem == "" {
		return nil
	}
	f, err := os.Create(mem)
	if err != nil {
		return fmt.Errorf("--memprofile: %w", err)
	}
	runtime.GC()
	if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
		f.Close()
		return fmt.Errorf("--memprofile: %w", err)
	}
	return f.Close()
}
