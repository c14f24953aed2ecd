//go:build unix

// Command bench measures how hacompile's build time and memory grow with
// the fleet: it writes synthetic stacks of 10 to 10,000 hosts into a
// temporary directory and times the hacompile binary as a whole process
// (median of several runs: wall time, CPU time, peak RSS) for a full
// build, a no-op rebuild, a rebuild after changing one host, build
// --check and vet. Beside it: `cue export` of the same stack file (CUE
// evaluation alone); the chain hacompile replaces, `cue export` computing
// every host's files with CUE templates and then Hugo rendering a page per
// host (chain.go); and a trivial Go program writing the same files (the
// floor). With -base, another revision's hacompile runs beside this
// one, each case's runs alternating between the two, and the ratios are
// the median of each run's ratio. The full build's growth from a tenth
// of the hosts is measured the same way: full builds at N/10 and at N
// hosts in turn, the median of each pair's ratio; and so are the
// rebuilds' shares of a full build (one host changed, no-op), each
// beside a full build at its size. It prints a table and writes it as
// JSON for comparisons.
//
// Run it with `make bench`; it is not part of `make test`. It is unix
// only: a run's CPU time and peak RSS are the kernel's rusage.
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
	"runtime/debug"
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
	hugo := flag.String("hugo", "hugo", "hugo binary for the comparison")
	dir := flag.String("dir", "", "where the fleets are written (default: the system's temp directory); /dev/shm measures the tools without the disk")
	table := flag.String("table", "", "print the BENCHMARKS.md tables of a saved `bench.json` and exit")
	base := flag.String("base", "", "a git revision whose hacompile is measured beside this one's, case by case, in the same run (ratios in the report)")
	others := flag.Bool("others", true, "measure the other tools too (cue export, Hugo, the floor)")
	flag.Parse()
	if *table != "" {
		b, err := os.ReadFile(*table)
		var rep Report
		if err == nil {
			err = json.Unmarshal(b, &rep)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		fmt.Print(markdown(rep))
		return
	}
	if err := run(*sizes, *runs, *out, *cue, *hugo, *dir, *base, *others); err != nil {
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

// Summary compares one fleet size's full build (wall time) with the
// other tools: the ratios are the full build's time over theirs.
type Summary struct {
	Hosts int `json:"hosts"`
	// ChainS is cue export (per-host files) + hugo (page per host, code
	// unhighlighted): the files and the site computed by two tools
	// chained. ChainHLS is the same with Hugo highlighting the code, as
	// hacompile's pages do.
	ChainS          float64 `json:"cue_files_plus_hugo_wall_s"`
	ChainHLS        float64 `json:"cue_files_plus_hugo_highlighted_wall_s"`
	FullOverCUE     float64 `json:"full_over_cue_export"`
	FullOverFloor   float64 `json:"full_over_floor"`
	FullOverChain   float64 `json:"full_over_cue_files_plus_hugo"`
	FullOverChainHL float64 `json:"full_over_cue_files_plus_hugo_highlighted"`
	// ChainSameS is cue export of the same files hacompile writes for the
	// app hosts (and their cloud-init) + Hugo's pages of those files.
	ChainSameS        float64 `json:"cue_same_files_plus_hugo_wall_s"`
	FullOverChainSame float64 `json:"full_over_cue_same_files_plus_hugo"`
}

// Report is what bench writes as JSON.
type Report struct {
	Machine   string    `json:"machine"`
	Dir       string    `json:"dir"` // the file system the fleets were written to
	Go        string    `json:"go"`
	Base      string    `json:"base,omitempty"` // the revision measured beside this one
	Rows      []Row     `json:"rows"`
	Summaries []Summary `json:"summaries"`
	// Paired holds this revision's cases beside the base's, measured in
	// turn run by run (none in reports from before they were).
	Paired []Paired `json:"paired,omitempty"`
	// Scale holds, for each size whose tenth was measured too, the full
	// build at that size beside the full build at a tenth of the hosts,
	// measured in turn run by run (none in reports from before it was).
	Scale []Paired `json:"scale,omitempty"`
	// Shares holds, for each size, a rebuild (one host changed, no-op)
	// beside a full build at that size, measured in turn run by run: the
	// median of each run's ratio rebuild ÷ full (none in reports from
	// before they were measured so).
	Shares []Paired `json:"shares,omitempty"`
}

func run(sizesFlag string, runs int, jsonOut, cueBin, hugoBin, dir, baseRev string, others bool) error {
	// Hugo is half of the chained comparison; a bench without it would
	// quietly drop the number it exists to report.
	var err error
	if others {
		if hugoBin, err = exec.LookPath(hugoBin); err != nil {
			return fmt.Errorf("hugo is needed for the cue export + Hugo comparison (make bench installs Debian's hugo): %v", err)
		}
	}
	tmp, err := os.MkdirTemp(dir, "hacompile-bench-")
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
	// The base revision's hacompile, built from its tree.
	baseBin := ""
	if baseRev != "" {
		src := filepath.Join(tmp, "base-src")
		if err := os.MkdirAll(src, 0o755); err != nil {
			return err
		}
		if err := sh("", "sh", "-c", "git archive "+baseRev+" | tar -x -C "+src); err != nil {
			return fmt.Errorf("-base %s: %v", baseRev, err)
		}
		baseBin = filepath.Join(tmp, "hacompile-base")
		if err := sh(src, "go", "build", "-o", baseBin, "./cmd/hacompile"); err != nil {
			return err
		}
	}
	floor := filepath.Join(tmp, "floor")
	if err := os.WriteFile(filepath.Join(tmp, "floor.go"), []byte(floorSrc), 0o644); err != nil {
		return err
	}
	if err := sh(tmp, "go", "build", "-o", floor, "floor.go"); err != nil {
		return err
	}
	if cueBin == "" && others {
		cueBin, err = installCUE(tmp)
		if err != nil {
			return err
		}
	}
	var sizes []int
	for _, f := range strings.Split(sizesFlag, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			return fmt.Errorf("-sizes: %v", err)
		}
		sizes = append(sizes, n)
	}
	rep := Report{Machine: machine(), Go: runtime.Version(), Dir: fileSystem(tmp), Base: baseRev}
	fmt.Printf("machine: %s\nfleets on: %s\n\n", rep.Machine, rep.Dir)
	fmt.Printf("%7s  %-28s %9s %9s %10s %8s\n", "hosts", "case", "wall s", "cpu s", "rss MB", "files")
	for _, n := range sizes {
		// measurePairs runs the trials of one case in turn, run by run,
		// so that the machine's drift falls on each alike; with a base,
		// the pair's ratio is the median of each run's ratio.
		measurePairs := func(trials []trial) error {
			samples, err := inTurn(runs, trials)
			if err != nil {
				return fmt.Errorf("%d hosts, %w", n, err)
			}
			for i, t := range trials {
				r := median(n, t.name, samples[i])
				rep.Rows = append(rep.Rows, r)
				print(r)
			}
			if len(trials) == 2 {
				p := paired(n, trials[1].name, samples[1], samples[0])
				rep.Paired = append(rep.Paired, p)
				fmt.Printf("%7d  %-28s %8.2f× %8.2f× %9.2f×  (run by run, ÷ base)\n", n, p.Case, p.Wall, p.CPU, p.RSS)
			}
			return nil
		}
		// measureAt is one trial's measurePairs: its median row.
		measureAt := func(dir, name string, prep func() error, argv func() []string) (Row, error) {
			if err := measurePairs([]trial{{dir: dir, name: name, prep: prep, argv: argv}}); err != nil {
				return Row{}, err
			}
			return rep.Rows[len(rep.Rows)-1], nil
		}
		// hacompile's cases: the base revision's binary (its rows marked
		// " [base]") and this one's, each in a fleet directory of its
		// own, in turn run by run.
		var subjects []subject
		for _, b := range []struct{ bin, suffix string }{{baseBin, baseSuffix}, {bin, ""}} {
			if b.bin != "" {
				subjects = append(subjects, subject{b.bin, b.suffix, filepath.Join(tmp, fmt.Sprintf("fleet-%d%s", n, strings.Trim(strings.ReplaceAll(b.suffix, " ", "-"), "[]")))})
			}
		}
		dir := subjects[len(subjects)-1].dir
		files, size, err := measureHacompile(n, subjects, measurePairs)
		if err != nil {
			return err
		}
		for i := range rep.Rows {
			if rep.Rows[i].Hosts == n && strings.HasPrefix(rep.Rows[i].Case, caseFull) {
				rep.Rows[i].Files = files
			}
		}
		fmt.Printf("%7d  %-28s %9s %9s %10s %8d\n", n, "(files written)", "", "", "", files)
		if others {
			if err := measureOthers(dir, n, files, size, cueBin, hugoBin, floor, measureAt); err != nil {
				return err
			}
			s := summarize(rep.Rows, n)
			rep.Summaries = append(rep.Summaries, s)
			fmt.Printf("%7s  full build / cue export: %.1f×, / floor: %.1f×, / (cue export per-host files + hugo = %.3f s): %.2f×, / (… + hugo highlighted = %.3f s): %.2f×, / (same files: cue export + hugo = %.3f s): %.2f×\n",
				"", s.FullOverCUE, s.FullOverFloor, s.ChainS, s.FullOverChain, s.ChainHLS, s.FullOverChainHL, s.ChainSameS, s.FullOverChainSame)
		}
		var dirs []string
		for _, sub := range subjects {
			dirs = append(dirs, sub.dir)
		}
		if err := removeAll(dirs...); err != nil {
			return err
		}
		// The rebuilds' shares of a full build, in pairs.
		shares, err := measureShares(n, bin, tmp, runs)
		if err != nil {
			return err
		}
		rep.Shares = append(rep.Shares, shares...)
		for _, p := range shares {
			fmt.Printf("%7d  %-28s %8.2f× %8.2f× %9.2f×  (run by run, ÷ full build)\n", n, p.Case, p.Wall, p.CPU, p.RSS)
		}
		// The full build's growth from a tenth of the hosts, when that
		// size is measured too.
		if n%10 == 0 && slices.Contains(sizes, n/10) {
			p, err := measureScale(n, bin, tmp, runs)
			if err != nil {
				return err
			}
			rep.Scale = append(rep.Scale, p)
			fmt.Printf("%7d  %-28s %8.2f× %8.2f× %9.2f×  (run by run, ÷ full build at %d hosts)\n", n, p.Case, p.Wall, p.CPU, p.RSS, n/10)
		}
	}
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(jsonOut, append(b, '\n'), 0o644); err != nil {
		return err
	}
	// BENCHMARKS.md's tables, from this run.
	fmt.Printf("\n%s", markdown(rep))
	return nil
}

// The cases the summary compares.
const (
	baseSuffix   = " [base]"
	caseOneHost  = "build (one host changed)"
	caseOneStack = "build (one stack of two changed)"
	caseFull     = "build (full)"
	caseNoop     = "build (no-op)"
	caseVet      = "vet"
	caseCUE      = "cue export"
	caseCUEFiles = "cue export (per-host files)"
	caseHugo     = "hugo (page per host)"
	caseHugoHL   = "hugo (highlighted)"
	caseCUESame  = "cue export (same files)"
	caseHugoSame = "hugo (same files)"
	caseFloor    = "floor (write files)"
)

// summarize compares a fleet size's full build with the other tools.
func summarize(rows []Row, n int) Summary {
	wall := map[string]float64{}
	for _, r := range rows {
		if r.Hosts == n {
			wall[r.Case] = r.WallS
		}
	}
	ratio := func(y float64) float64 {
		if y == 0 {
			return 0
		}
		return wall[caseFull] / y
	}
	chain, chainHL := wall[caseCUEFiles]+wall[caseHugo], wall[caseCUEFiles]+wall[caseHugoHL]
	chainSame := wall[caseCUESame] + wall[caseHugoSame]
	return Summary{
		Hosts:             n,
		ChainS:            chain,
		ChainHLS:          chainHL,
		ChainSameS:        chainSame,
		FullOverChainSame: ratio(chainSame),
		FullOverCUE:       ratio(wall[caseCUE]),
		FullOverFloor:     ratio(wall[caseFloor]),
		FullOverChain:     ratio(chain),
		FullOverChainHL:   ratio(chainHL),
	}
}

func print(r Row) {
	files := ""
	if r.Files > 0 {
		files = strconv.Itoa(r.Files)
	}
	fmt.Printf("%7d  %-28s %9.3f %9.3f %10.1f %8s\n", r.Hosts, r.Case, r.WallS, r.CPUS, r.MaxRSSM, files)
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
	rss := ru.Maxrss
	if runtime.GOOS == "darwin" {
		rss /= 1024 // bytes there, KB on Linux and the BSDs
	}
	return Sample{Wall: wall, CPU: cpu, MaxRSSKB: rss}, nil
}

// Paired is one case measured in turn run by run beside another: the
// median of each run's ratio. In Report.Paired it is this revision ÷
// the base's; in Report.Scale, the full build at Hosts ÷ the full build
// at a tenth of them.
type Paired struct {
	Hosts int     `json:"hosts"`
	Case  string  `json:"case"`
	Wall  float64 `json:"wall_ratio"`
	CPU   float64 `json:"cpu_ratio"`
	RSS   float64 `json:"rss_ratio"`
}

// inTurn runs each trial once per run, in turn (A B A B …), so that a
// machine whose speed drifts slows each alike, and returns each trial's
// samples.
func inTurn(runs int, trials []trial) ([][]Sample, error) {
	samples := make([][]Sample, len(trials))
	for range runs {
		for i, t := range trials {
			if t.prep != nil {
				if err := t.prep(); err != nil {
					return nil, err
				}
			}
			s, err := timeIt(t.dir, t.argv()...)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", t.name, err)
			}
			samples[i] = append(samples[i], s)
		}
	}
	return samples, nil
}

// paired is the median of each run's ratio s[i] ÷ base[i].
func paired(n int, name string, s, base []Sample) Paired {
	pick := func(f func(Sample) float64) float64 {
		var v []float64
		for i := range min(len(s), len(base)) {
			if b := f(base[i]); b > 0 {
				v = append(v, f(s[i])/b)
			}
		}
		if len(v) == 0 {
			return 0
		}
		return middle(v)
	}
	return Paired{
		Hosts: n, Case: name,
		Wall: pick(func(x Sample) float64 { return x.Wall.Seconds() }),
		CPU:  pick(func(x Sample) float64 { return x.CPU.Seconds() }),
		RSS:  pick(func(x Sample) float64 { return float64(x.MaxRSSKB) }),
	}
}

// middle sorts v and returns its middle value (the upper one of an even
// count).
func middle(v []float64) float64 {
	slices.Sort(v)
	return v[len(v)/2]
}

func median(n int, name string, s []Sample) Row {
	pick := func(f func(Sample) float64) float64 {
		v := make([]float64, len(s))
		for i := range s {
			v[i] = f(s[i])
		}
		return middle(v)
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

// countFiles returns how many files dir holds and their average size.
func countFiles(dir string) (files, avg int) {
	var total int64
	filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if fi, err := d.Info(); err == nil {
				files++
				total += fi.Size()
			}
		}
		return nil
	})
	if files == 0 {
		return 0, 0
	}
	return files, int(total / int64(files))
}

func writeFile(path string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
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

// fileSystem names dir's file system type and mount point, from
// /proc/self/mounts (the longest mount point that contains dir).
func fileSystem(dir string) string {
	b, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		return dir
	}
	best, kind := "", ""
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) < 3 {
			continue
		}
		mnt := f[1]
		if (dir == mnt || strings.HasPrefix(dir, strings.TrimSuffix(mnt, "/")+"/")) && len(mnt) > len(best) {
			best, kind = mnt, f[2]
		}
	}
	return fmt.Sprintf("%s on %s", kind, best)
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

type measureFunc func(dir, name string, prep func() error, argv func() []string) (Row, error)

// subject is one hacompile binary under measurement, with the fleet
// directory of its own it builds in and the suffix of its rows (" [base]"
// for the base revision's).
type subject struct{ bin, suffix, dir string }

// trial is one subject's run of a case: prep makes the change it
// measures, argv is the command timed.
type trial struct {
	dir, name string
	prep      func() error
	argv      func() []string
}

// pairsFunc measures trials of one case, the subjects in turn run by run.
type pairsFunc func(trials []trial) error

// measureHacompile measures the subjects' cases on a fleet of n hosts
// written into each subject's directory (and a second, small stack
// beside it for the one-stack change), each case's runs alternating
// between the subjects (A B A B …), and returns how many files the last
// subject's build writes and their average size.
func measureHacompile(n int, subjects []subject, measure pairsFunc) (files, size int, err error) {
	var fs []*fleetDir
	for _, sub := range subjects {
		f, err := newFleetDir(sub, n)
		if err != nil {
			return 0, 0, err
		}
		fs = append(fs, f)
	}
	each := func(name string, mk func(f *fleetDir) (func() error, func() []string)) error {
		var ts []trial
		for _, f := range fs {
			prep, argv := mk(f)
			ts = append(ts, trial{dir: f.dir, name: name + f.suffix, prep: prep, argv: argv})
		}
		return measure(ts)
	}
	if err := each(caseFull, fullBuild); err != nil {
		return 0, 0, err
	}
	// The rebuild cases need an out/ that a build produced and
	// recorded; this untimed build makes it.
	for _, f := range fs {
		if err := quiet(f.dir, f.bin, "build"); err != nil {
			return 0, 0, err
		}
		files, size = countFiles(filepath.Join(f.dir, "out"))
	}
	forgetPeak()
	fixed := func(argv ...string) func() []string { return func() []string { return argv } }
	steps := []struct {
		name string
		mk   func(f *fleetDir) (func() error, func() []string)
	}{
		{caseNoop, func(f *fleetDir) (func() error, func() []string) { return nil, fixed(f.bin, "build") }},
		{caseOneHost, func(f *fleetDir) (func() error, func() []string) {
			return toggleHost(f.stack, n), fixed(f.bin, "build")
		}},
		{caseOneStack, func(f *fleetDir) (func() error, func() []string) { return toggleSide(f.side), fixed(f.bin, "build") }},
		{"build --check", func(f *fleetDir) (func() error, func() []string) {
			return func() error {
				if err := os.WriteFile(f.side, sideStack(""), 0o644); err != nil {
					return err
				}
				if err := os.WriteFile(f.stack, fleet.Fleet(n, ""), 0o644); err != nil {
					return err
				}
				return quiet(f.dir, f.bin, "build")
			}, fixed(f.bin, "build", "--check")
		}},
		{caseVet, func(f *fleetDir) (func() error, func() []string) { return nil, fixed(f.bin, "vet") }},
	}
	for _, st := range steps {
		if err := each(st.name, st.mk); err != nil {
			return 0, 0, err
		}
	}
	return files, size, nil
}

// fleetDir is a subject's fleet directory: the fleet's stack, the small
// stack beside it, and fresh, which names an output directory never used
// before.
type fleetDir struct {
	subject
	stack, side string
	fresh       func(kind string) string
}

// newFleetDir writes a fleet of n hosts and the small stack beside it
// into sub's directory.
func newFleetDir(sub subject, n int) (*fleetDir, error) {
	f := &fleetDir{subject: sub, stack: filepath.Join(sub.dir, "stacks", "fleet.cue"), side: filepath.Join(sub.dir, "stacks", "side.cue")}
	if err := writeFile(f.stack, fleet.Fleet(n, "")); err != nil {
		return nil, err
	}
	if err := writeFile(f.side, sideStack("")); err != nil {
		return nil, err
	}
	// Every run that writes a tree writes it into a directory never
	// used before: deleting the last run's tree (on ext4 with
	// discard) makes the next run's writes several times slower,
	// and that cost is neither the tool's nor the run's. In memory
	// (tmpfs) the last run's goes first, before the next run's
	// clock starts: at 10,000 hosts the trees of every run would
	// fill it.
	seq, last := 0, ""
	inMemory := strings.HasPrefix(fileSystem(sub.dir), "tmpfs")
	f.fresh = func(kind string) string {
		if last != "" && inMemory {
			os.RemoveAll(last)
		}
		seq++
		last = filepath.Join(f.dir, fmt.Sprintf("%s-%d", kind, seq))
		return last
	}
	return f, nil
}

// fullBuild is the full-build case's trial in f: a fresh output
// directory has no record of an earlier build, so every full build
// renders and writes everything.
func fullBuild(f *fleetDir) (prep func() error, argv func() []string) {
	return nil, func() []string { return []string{f.bin, "build", "--out", f.fresh("out-full")} }
}

// measureScale measures bin's full build at n/10 hosts and at n in turn
// (n/10, n, n/10, n, …), each into an empty directory as the full-build
// case does, and returns the median of each pair's ratio (n ÷ n/10):
// measured minutes apart, the two sizes' medians would carry the
// machine's drift into their ratio.
func measureScale(n int, bin, tmp string, runs int) (Paired, error) {
	var trials []trial
	var dirs []string
	for _, m := range []int{n / 10, n} {
		f, err := newFleetDir(subject{bin: bin, dir: filepath.Join(tmp, fmt.Sprintf("scale-%d", m))}, m)
		if err != nil {
			return Paired{}, err
		}
		prep, argv := fullBuild(f)
		trials = append(trials, trial{dir: f.dir, name: fmt.Sprintf("%d hosts, %s", m, caseFull), prep: prep, argv: argv})
		dirs = append(dirs, f.dir)
	}
	forgetPeak()
	samples, err := inTurn(runs, trials)
	if err != nil {
		return Paired{}, err
	}
	if err := removeAll(dirs...); err != nil {
		return Paired{}, err
	}
	return paired(n, caseFull, samples[1], samples[0]), nil
}

// measureShares measures bin's rebuilds at n hosts beside its full
// build: a full build into an empty directory, then a rebuild of the
// fleet's out/ after one host's change, then a no-op rebuild of it, in
// turn run by run; it returns the median of each run's ratio of each
// rebuild to that run's full build. Measured minutes apart, as the
// cases vs the base revision are, the share carries the machine's drift.
func measureShares(n int, bin, tmp string, runs int) ([]Paired, error) {
	f, err := newFleetDir(subject{bin: bin, dir: filepath.Join(tmp, fmt.Sprintf("shares-%d", n))}, n)
	if err != nil {
		return nil, err
	}
	// The rebuilds need an out/ a build recorded.
	if err := quiet(f.dir, f.bin, "build"); err != nil {
		return nil, err
	}
	prep, argv := fullBuild(f)
	fixed := func() []string { return []string{f.bin, "build"} }
	trials := []trial{
		{dir: f.dir, name: caseFull, prep: prep, argv: argv},
		{dir: f.dir, name: caseOneHost, prep: toggleHost(f.stack, n), argv: fixed},
		{dir: f.dir, name: caseNoop, argv: fixed},
	}
	forgetPeak()
	samples, err := inTurn(runs, trials)
	if err != nil {
		return nil, err
	}
	if err := removeAll(f.dir); err != nil {
		return nil, err
	}
	return []Paired{paired(n, caseOneHost, samples[1], samples[0]), paired(n, caseNoop, samples[2], samples[0])}, nil
}

// forgetPeak forgets this process's peak RSS: a child's peak as the
// kernel reports it starts at this process's RSS when it forks.
func forgetPeak() {
	debug.FreeOSMemory()
	_ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) // (Linux)
}

// removeAll deletes the fleet directories and lets the file system
// finish the deletion's discards before the next timed writes.
func removeAll(dirs ...string) error {
	for _, d := range dirs {
		if err := os.RemoveAll(d); err != nil {
			return err
		}
	}
	syscall.Sync()
	return nil
}

// sideStack is a small stack beside the fleet, for the one-stack change:
// 10 hosts under another name and VRRP router id.
func sideStack(size string) []byte {
	s := string(fleet.Fleet(10, size))
	s = strings.Replace(s, `name:        "fleet"`, `name:        "side"`, 1)
	s = strings.Replace(s, "router_id: 50", "router_id: 51", 1)
	s = strings.ReplaceAll(s, "fleet.example.com", "side.example.com")
	return []byte(s)
}

// toggleSide changes the side stack's first app host's size back and
// forth.
func toggleSide(side string) func() error {
	flip := false
	return func() error {
		flip = !flip
		size := "s-2vcpu-4gb"
		if flip {
			size = "s-4vcpu-8gb"
		}
		return os.WriteFile(side, sideStack(size), 0o644)
	}
}

// measureOthers measures the other tools on the fleet in dir.
func measureOthers(dir string, n, files, size int, cueBin, hugoBin, floor string, measure measureFunc) error {
	if err := writeFile(filepath.Join(dir, "cue", "fleet.cue"), append([]byte("package fleet\n\n"), fleet.Fleet(n, "")...)); err != nil {
		return err
	}
	if err := writeFile(filepath.Join(dir, "cue", "hostfiles.cue"), []byte(hostFilesCUE)); err != nil {
		return err
	}
	// The Hugo sites' pages carry the files the CUE templates compute,
	// as the glue between the two tools of the chain would.
	if err := sameFilesCUE(dir, fleet.Fleet(n, "")); err != nil {
		return fmt.Errorf("%d hosts: %w", n, err)
	}
	if err := writeHugoSites(dir, cueBin); err != nil {
		return fmt.Errorf("%d hosts: %w", n, err)
	}
	forgetPeak()
	// Each run writes into a directory of its own. In memory (tmpfs),
	// the last run's goes first: at 10,000 hosts a dozen trees of
	// 160,000 files fill it. On a disk they stay (see measureHacompile).
	seq, last := 0, ""
	inMemory := strings.HasPrefix(fileSystem(dir), "tmpfs")
	fresh := func(kind string) string {
		if last != "" && inMemory {
			os.RemoveAll(last)
		}
		seq++
		last = filepath.Join(dir, fmt.Sprintf("%s-other-%d", kind, seq))
		return last
	}
	fixed := func(argv ...string) func() []string { return func() []string { return argv } }
	steps := []struct {
		name string
		argv func() []string
	}{
		{caseCUE, fixed(cueBin, "export", "--out", "json", "stacks/fleet.cue")},
		{caseCUEFiles, fixed(cueBin, "export", "--out", "json", "-e", "files", "cue/fleet.cue", "cue/hostfiles.cue")},
		{caseHugo, func() []string {
			return []string{hugoBin, "--quiet", "-s", "hugo", "--config", "hugo-plain.toml", "-d", fresh("hugo-public")}
		}},
		{caseHugoHL, func() []string { return []string{hugoBin, "--quiet", "-s", "hugo", "-d", fresh("hugo-public")} }},
		{caseCUESame, fixed(cueBin, "export", "--out", "json", "-e", "same", "cue/fleet.cue", "cue/samefiles.cue")},
		{caseHugoSame, func() []string {
			return []string{hugoBin, "--quiet", "-s", "hugo-same", "--config", "hugo-plain.toml", "-d", fresh("hugo-public")}
		}},
		{caseFloor, func() []string { return []string{floor, fresh("floor"), strconv.Itoa(files), strconv.Itoa(size)} }},
	}
	for _, st := range steps {
		if _, err := measure(dir, st.name, nil, st.argv); err != nil {
			return err
		}
	}
	return nil
}
