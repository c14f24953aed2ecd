// Command bench measures how hacompile's build time and memory grow with
// the fleet: it writes synthetic stacks of 10 to 10,000 hosts into a
// temporary directory and times the hacompile binary as a whole process
// (median of several runs: wall time, CPU time, peak RSS) for a full
// build, a no-op rebuild, a rebuild after changing one host, build
// --check and vet; beside it, `cue export` of the same stack file (CUE
// evaluation alone) and a trivial Go program writing the same files (the
// floor). It prints a table and writes it as JSON for comparisons.
//
// Run it with `make bench`; it is not part of `make test`.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hacompile/hacompile/internal/fleet"
)

func main() {
	sizes := flag.String("sizes", "10,100,1000,10000", "fleet sizes (hosts), comma-separated")
	runs := flag.Int("runs", 5, "runs per measurement; the median is reported")
	out := flag.String("json", "bench.json", "where to write the results")
	cue := flag.String("cue", "", "cue binary for the comparison (default: installed at the go.mod version into a temp dir)")
	flag.Parse()
	if err := run(*sizes, *runs, *out, *cue); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// Sample is one measured process run.
type Sample struct {
	Wall, CPU time.Duration
	MaxRSSKB  int64
}

// Row is the median of the runs of one measurement.
type Row struct {
	Hosts   int     `json:"hosts"`
	Case    string  `json:"case"`
	WallS   float64 `json:"wall_s"`
	CPUS    float64 `json:"cpu_s"`
	MaxRSSM float64 `json:"max_rss_mb"`
	Files   int     `json:"files,omitempty"`
}

// Report is what bench writes as JSON.
type Report struct {
	Machine string `json:"machine"`
	Go      string `json:"go"`
	Rows    []Row  `json:"rows"`
}

func run(sizesFlag string, runs int, jsonOut, cueBin string) error {
	tmp, err := os.MkdirTemp("", "hacompile-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	// build's no-change records go with the fleets, not into the user's cache.
	os.Setenv("XDG_CACHE_HOME", filepath.Join(tmp, "cache"))
	bin := filepath.Join(tmp, "hacompile")
	if err := sh("", "go", "build", "-o", bin, "./cmd/hacompile"); err != nil {
		return err
	}
	floor := filepath.Join(tmp, "floor")
	if err := os.WriteFile(filepath.Join(tmp, "floor.go"), []byte(floorSrc), 0o644); err != nil {
		return err
	}
	if err := sh(tmp, "go", "build", "-o", floor, "floor.go"); err != nil {
		return err
	}
	if cueBin == "" {
		cueBin, err = installCUE(tmp)
		if err != nil {
			return err
		}
	}
	rep := Report{Machine: machine(), Go: runtime.Version()}
	fmt.Printf("machine: %s\n\n", rep.Machine)
	fmt.Printf("%7s  %-26s %9s %9s %10s %8s\n", "hosts", "case", "wall s", "cpu s", "rss MB", "files")
	for _, f := range strings.Split(sizesFlag, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			return fmt.Errorf("-sizes: %v", err)
		}
		dir := filepath.Join(tmp, fmt.Sprintf("fleet-%d", n))
		stack := filepath.Join(dir, "stacks", "fleet.cue")
		if err := os.MkdirAll(filepath.Dir(stack), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(stack, fleet.Fleet(n, ""), 0o644); err != nil {
			return err
		}
		measure := func(name string, prep func() error, argv ...string) (Row, error) {
			var samples []Sample
			for range runs {
				if prep != nil {
					if err := prep(); err != nil {
						return Row{}, err
					}
				}
				s, err := timeIt(dir, argv...)
				if err != nil {
					return Row{}, fmt.Errorf("%d hosts, %s: %w", n, name, err)
				}
				samples = append(samples, s)
			}
			r := median(n, name, samples)
			rep.Rows = append(rep.Rows, r)
			return r, nil
		}
		clean := func() error { return os.RemoveAll(filepath.Join(dir, "out")) }
		full, err := measure("build (full)", clean, bin, "build")
		if err != nil {
			return err
		}
		files := countFiles(filepath.Join(dir, "out"))
		rep.Rows[len(rep.Rows)-1].Files = files
		print(rep.Rows[len(rep.Rows)-1])
		steps := []struct {
			name string
			prep func() error
			argv []string
		}{
			{"build (no-op)", nil, []string{bin, "build"}},
			{"build (one host changed)", toggleHost(stack, n), []string{bin, "build"}},
			{"build --check", func() error { return quiet(dir, bin, "build") }, []string{bin, "build", "--check"}},
			{"vet", nil, []string{bin, "vet"}},
			{"cue export", nil, []string{cueBin, "export", "--out", "json", "stacks/fleet.cue"}},
			{"floor (write files)", clean, []string{floor, filepath.Join(dir, "out"), strconv.Itoa(files), strconv.Itoa(avgSize(dir, files, full))}},
		}
		for _, st := range steps {
			r, err := measure(st.name, st.prep, st.argv...)
			if err != nil {
				return err
			}
			print(r)
		}
		fmt.Printf("%7s  full build / cue export: %.1f×, / floor: %.1f×\n", "", ratio(rep.Rows, n, "build (full)", "cue export"), ratio(rep.Rows, n, "build (full)", "floor (write files)"))
	}
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(jsonOut, append(b, '\n'), 0o644)
}

func print(r Row) {
	files := ""
	if r.Files > 0 {
		files = strconv.Itoa(r.Files)
	}
	fmt.Printf("%7d  %-26s %9.3f %9.3f %10.1f %8s\n", r.Hosts, r.Case, r.WallS, r.CPUS, r.MaxRSSM, files)
}

func ratio(rows []Row, n int, a, b string) float64 {
	var x, y float64
	for _, r := range rows {
		if r.Hosts == n && r.Case == a {
			x = r.WallS
		}
		if r.Hosts == n && r.Case == b {
			y = r.WallS
		}
	}
	if y == 0 {
		return 0
	}
	return x / y
}

// timeIt runs argv in dir and measures it from outside: wall clock,
// user+system CPU and peak resident set size from the kernel's rusage.
func timeIt(dir string, argv ...string) (Sample, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start := time.Now()
	err := cmd.Run()
	wall := time.Since(start)
	if err != nil {
		return Sample{}, fmt.Errorf("%s: %v\n%s", strings.Join(argv, " "), err, stderr.String())
	}
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	return Sample{Wall: wall, CPU: cpu, MaxRSSKB: ru.Maxrss}, nil
}

func median(n int, name string, s []Sample) Row {
	pick := func(f func(Sample) float64) float64 {
		v := make([]float64, len(s))
		for i := range s {
			v[i] = f(s[i])
		}
		slices.Sort(v)
		return v[len(v)/2]
	}
	return Row{
		Hosts: n, Case: name,
		WallS:   pick(func(x Sample) float64 { return x.Wall.Seconds() }),
		CPUS:    pick(func(x Sample) float64 { return x.CPU.Seconds() }),
		MaxRSSM: pick(func(x Sample) float64 { return float64(x.MaxRSSKB) / 1024 }),
	}
}

// toggleHost returns a step that changes one host's size back and forth,
// so every run rebuilds after a real one-host change.
func toggleHost(stack string, n int) func() error {
	flip := false
	return func() error {
		flip = !flip
		size := "s-2vcpu-4gb"
		if flip {
			size = "s-4vcpu-8gb"
		}
		return os.WriteFile(stack, fleet.Fleet(n, size), 0o644)
	}
}

func countFiles(dir string) int {
	n := 0
	filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			n++
		}
		return nil
	})
	return n
}

func avgSize(dir string, files int, _ Row) int {
	var total int64
	filepath.WalkDir(filepath.Join(dir, "out"), func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if fi, err := d.Info(); err == nil {
				total += fi.Size()
			}
		}
		return nil
	})
	if files == 0 {
		return 0
	}
	return int(total / int64(files))
}

func quiet(dir string, argv ...string) error {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s: %v\n%s", strings.Join(argv, " "), err, out)
	}
	return nil
}

func sh(dir string, argv ...string) error {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	return cmd.Run()
}

// installCUE builds the cue command at the version go.mod requires.
func installCUE(tmp string) (string, error) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Version}}", "cuelang.org/go").Output()
	if err != nil {
		return "", fmt.Errorf("finding the cuelang.org/go version: %v", err)
	}
	v := strings.TrimSpace(string(out))
	cmd := exec.Command("go", "install", "cuelang.org/go/cmd/cue@"+v)
	cmd.Env = append(os.Environ(), "GOBIN="+tmp)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("installing cue %s: %v", v, err)
	}
	return filepath.Join(tmp, "cue"), nil
}

func machine() string {
	mem := ""
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb int64
		fmt.Sscanf(strings.SplitN(string(b), "\n", 2)[0], "MemTotal: %d kB", &kb)
		mem = fmt.Sprintf(", %.1f GiB", float64(kb)/1024/1024)
	}
	model := ""
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "model name") {
				_, model, _ = strings.Cut(l, ": ")
				break
			}
		}
	}
	return fmt.Sprintf("%d cores%s, %s, %s/%s", runtime.NumCPU(), mem, model, runtime.GOOS, runtime.GOARCH)
}

// floorSrc writes N files of a given size into a directory tree, one
// directory per 10 files: the least any tool writing this fleet must do.
const floorSrc = `package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
)

func main() {
	dir := os.Args[1]
	n, _ := strconv.Atoi(os.Args[2])
	size, _ := strconv.Atoi(os.Args[3])
	buf := make([]byte, size)
	for i := range buf {
		buf[i] = byte('a' + i%26)
	}
	for i := 0; i < n; i++ {
		p := filepath.Join(dir, fmt.Sprintf("h%d", i/10), fmt.Sprintf("f%d.conf", i))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			panic(err)
		}
		if err := os.WriteFile(p, buf, 0o644); err != nil {
			panic(err)
		}
	}
}
`
