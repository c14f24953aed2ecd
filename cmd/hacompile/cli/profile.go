package cli

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"runtime/trace"
	"sync"
	"time"

	"github.com/spf13/cobra"
)

// addProfileFlags adds --cpuprofile, --memprofile, --peakprofile and
// --trace to every command: pprof files for `go tool pprof` and an
// execution trace for `go tool trace`, as `go test` writes them. They are
// hidden from --help; BENCHMARKS.md names them. The
// returned function ends the profiles; Run calls it however the command
// ended.
func addProfileFlags(root *cobra.Command) func() error {
	var cpu, mem, peak, tr string
	var cpuFile, traceFile *os.File
	var stopPeak func() error
	pf := root.PersistentFlags()
	pf.StringVar(&cpu, "cpuprofile", "", "write a CPU profile to `file`")
	pf.StringVar(&mem, "memprofile", "", "write an allocation profile to `file` when the command ends")
	_ = pf.MarkHidden("cpuprofile")
	pf.StringVar(&peak, "peakprofile", "", "write a heap profile to `file` each time the live heap reaches a new high")
	_ = pf.MarkHidden("memprofile")
	_ = pf.MarkHidden("peakprofile")
	pf.StringVar(&tr, "trace", "", "write an execution trace to `file` (go tool trace)")
	_ = pf.MarkHidden("trace")
	root.PersistentPreRunE = func(*cobra.Command, []string) error {
		if peak != "" {
			stopPeak = watchPeak(peak)
		}
		var err error
		if traceFile, err = startTo("--trace", tr, trace.Start); err != nil {
			return err
		}
		cpuFile, err = startTo("--cpuprofile", cpu, pprof.StartCPUProfile)
		return err
	}
	return func() error {
		var err error
		if stopPeak != nil {
			err = stopPeak()
		}
		if traceFile != nil {
			trace.Stop()
			if e := traceFile.Close(); e != nil && err == nil {
				err = fmt.Errorf("--trace: %w", e)
			}
			traceFile = nil
		}
		if e := stopProfiles(&cpuFile, mem); e != nil {
			return e
		}
		return err
	}
}

// startTo creates file and starts writing to it with start (a CPU
// profile, a trace); with no file it does nothing.
func startTo(flag, file string, start func(io.Writer) error) (*os.File, error) {
	if file == "" {
		return nil, nil
	}
	f, err := os.Create(file)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", flag, err)
	}
	if err := start(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", flag, err)
	}
	return f, nil
}

// watchPeak polls the live heap (as of the last collection) every 20 ms
// and, each time it passes its highest by 5 %, writes the heap profile
// to file: what the file holds at the end is what was live at the peak.
func watchPeak(file string) func() error {
	done := make(chan struct{})
	var wg sync.WaitGroup
	var werr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
		var high uint64
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
			}
			metrics.Read(sample)
			live := sample[0].Value.Uint64()
			if live <= high+high/20 {
				continue
			}
			high = live
			f, err := os.Create(file)
			if err == nil {
				err = pprof.Lookup("heap").WriteTo(f, 0)
				if cerr := f.Close(); err == nil {
					err = cerr
				}
			}
			if err != nil {
				werr = fmt.Errorf("--peakprofile: %w", err)
				return
			}
		}
	}()
	return func() error {
		close(done)
		wg.Wait()
		return werr
	}
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
