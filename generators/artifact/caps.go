package artifact

import (
	"fmt"
	"slices"
	"strings"

	"github.com/hacompile/hacompile/schema"
)

// Capabilities: optional interfaces a Generator implements to say what
// its files need on a host, in the style of Hugo's converter
// interfaces. Consumers — cloud-init, the runbook — ask the generators
// of a render through them (Packages, FirstBoot) instead of switching on
// kind names, so a new artifact kind brings its own packages and
// first-boot steps with it. A generator that needs nothing implements
// none of them.

// Scoper is a generator whose files for a host are made from that
// host, the stack's settings (all but its hosts) and the hosts of some
// roles only. compile.RenderChanged renders again only the hosts a
// change reaches through it (the runbook's previews).
type Scoper interface {
	// Reads lists the roles of the other hosts whose records (any
	// field, their number included) reach the files it makes for h;
	// All when every host's may. It reads h's roles and the stack's
	// settings only.
	Reads(s *schema.Stack, h *schema.Host) []string
}

// All, among the roles a Scoper reads, stands for every host, and among
// the settings a SettingsReader reads, for every setting.
const All = "*"

// all is what a generator that says nothing reads, of hosts or settings.
var all = []string{All}

// ReadsOf is what g reads for host h: its Reads, or All when it is not a
// Scoper.
func ReadsOf(g Generator, s *schema.Stack, h *schema.Host) []string {
	if sc, ok := g.(Scoper); ok {
		return sc.Reads(s, h)
	}
	return all
}

// SettingsReader is a generator that says which of the stack's settings
// reach its files: its top-level fields other than hosts, by their names
// in the stack file ("database", "tls"), a field's written positions
// (Stack.Wrote) among it; All stands for all of them.
// compile.RenderChanged keeps its files when none of those changed; a
// generator that says nothing reads them all.
type SettingsReader interface {
	ReadsSettings() []string
}

// ReadsSetting reports whether g's files may read the setting name (a
// SettingsReader listing it or All, or any other generator).
func ReadsSetting(g Generator, name string) bool {
	sr, ok := g.(SettingsReader)
	if !ok {
		return true
	}
	reads := sr.ReadsSettings()
	return slices.Contains(reads, name) || slices.Contains(reads, All)
}

// Packager is a generator whose files need Debian packages on a host.
type Packager interface {
	// Packages lists the packages host h needs. files are this
	// generator's files of h (none when it rendered nothing there: a
	// generator may still need packages for the host's role).
	Packages(s *schema.Stack, h *schema.Host, files []File) []string
	// PackageDirs are the directories its packages create and own
	// ("etc/nginx/"): a new machine gets the files under them after the
	// packages are installed, so dpkg never meets a configuration file
	// it did not ship.
	PackageDirs() []string
}

// PackageDirs is every package directory of gens.
func PackageDirs(gens []Generator) []string {
	var dirs []string
	for _, g := range gens {
		if p, ok := g.(Packager); ok {
			dirs = append(dirs, p.PackageDirs()...)
		}
	}
	return dirs
}

// Phase is when a first-boot step runs, relative to the steps every
// host gets (systemctl daemon-reload, enabling the rendered units).
type Phase int

// The phases, in the order they run. Within a phase, steps keep the
// order of the generator table.
const (
	// PhaseKernel runs before systemd reads the units: kernel settings
	// services may size themselves from.
	PhaseKernel Phase = iota
	// PhaseBeforeUnits runs after daemon-reload and before the rendered
	// units are enabled: what a service needs before it can start (a
	// certificate).
	PhaseBeforeUnits
	// PhaseServices runs last: validate the configuration, enable and
	// (re)start the service.
	PhaseServices
)

// Step is one first-boot shell command and when it runs.
type Step struct {
	Phase   Phase
	Command string
}

// Booter is a generator whose files need commands on a new machine's
// first boot to take effect.
type Booter interface {
	// FirstBoot is the steps for host h; files are this generator's
	// files of h, in path order.
	FirstBoot(s *schema.Stack, h *schema.Host, files []File) []Step
}

// OfKind returns the files of one kind, keeping their order.
func OfKind(files []File, kind string) []File {
	// Counted first: asked for every generator of every host, most
	// kinds have no file there, and the others are allocated once.
	n := 0
	for _, f := range files {
		if f.Kind == kind {
			n++
		}
	}
	if n == 0 {
		return nil
	}
	out := make([]File, 0, n)
	for _, f := range files {
		if f.Kind == kind {
			out = append(out, f)
		}
	}
	return out
}

// Packages is every package host h needs for files (h's files of one
// render) by the generators gens, in table order, with duplicates.
func Packages(gens []Generator, s *schema.Stack, h *schema.Host, files []File) []string {
	return PackagesOf(gens, s, h, GroupByKind(gens, files))
}

// PackagesOf is Packages of files grouped by GroupByKind.
func PackagesOf(gens []Generator, s *schema.Stack, h *schema.Host, byKind [][]File) []string {
	var pkgs []string
	for i, g := range gens {
		if p, ok := g.(Packager); ok {
			pkgs = append(pkgs, p.Packages(s, h, byKind[i])...)
		}
	}
	return pkgs
}

// GroupByKind is OfKind(files, gens[i].Kind()) for every i, in one
// allocation for all: an assembler asks it once of each of a fleet's
// hosts, for Packages and FirstBoot both. Each group is capped: nothing
// appends over the next.
func GroupByKind(gens []Generator, files []File) [][]File {
	// Each file goes to the first generator of its kind (a later one of
	// the same kind gets the same files).
	first := func(kind string) int {
		for i, g := range gens {
			if g.Kind() == kind {
				return i
			}
		}
		return -1
	}
	var countBuf [64]int
	count := countBuf[:0]
	if len(gens) > len(countBuf) {
		count = make([]int, len(gens))
	} else {
		count = countBuf[:len(gens)]
	}
	n := 0
	for _, f := range files {
		if i := first(f.Kind); i >= 0 {
			count[i]++
			n++
		}
	}
	byKind := make([][]File, len(gens))
	all := make([]File, 0, n)
	for i, c := range count {
		if c > 0 {
			byKind[i] = all[len(all) : len(all) : len(all)+c]
			all = all[:len(all)+c]
		}
	}
	for _, f := range files {
		if i := first(f.Kind); i >= 0 {
			byKind[i] = append(byKind[i], f)
		}
	}
	for i, g := range gens {
		if byKind[i] == nil {
			if j := first(g.Kind()); j != i {
				byKind[i] = byKind[j]
			}
		}
	}
	return byKind
}

// FirstBoot is the first-boot steps of the generators gens for host h,
// by phase, each phase's in table order. Each Booter is asked once.
func FirstBoot(gens []Generator, s *schema.Stack, h *schema.Host, files []File) [PhaseServices + 1][]string {
	return FirstBootOf(gens, s, h, GroupByKind(gens, files))
}

// FirstBootOf is FirstBoot of files grouped by GroupByKind.
func FirstBootOf(gens []Generator, s *schema.Stack, h *schema.Host, byKind [][]File) [PhaseServices + 1][]string {
	var cmds [PhaseServices + 1][]string
	for i, g := range gens {
		b, ok := g.(Booter)
		if !ok {
			continue
		}
		for _, st := range b.FirstBoot(s, h, byKind[i]) {
			if st.Phase >= 0 && int(st.Phase) < len(cmds) { // no other phase runs
				cmds[st.Phase] = append(cmds[st.Phase], st.Command)
			}
		}
	}
	return cmds
}

// IfAny is pkgs when files is not empty: the packages of a kind that
// needs them exactly on the hosts it renders files for.
func IfAny(files []File, pkgs ...string) []string {
	if len(files) == 0 {
		return nil
	}
	return pkgs
}

// StartService is the first-boot steps that check a service's
// configuration with the validate command of its file at conf (the one
// push runs) and enable and restart the service.
func StartService(files []File, conf, unit string) []Step {
	var steps []Step
	if v := ValidateOf(files, conf); !v.IsZero() {
		steps = append(steps, Step{Phase: PhaseServices, Command: v.String()})
	}
	return append(steps,
		Step{Phase: PhaseServices, Command: "systemctl enable " + unit},
		Step{Phase: PhaseServices, Command: "systemctl restart " + unit})
}

// ValidateOf is the validate action of the file at p among files (none
// when there is no such file): first-boot steps check a configuration the way
// push does, with the file's own command.
func ValidateOf(files []File, p string) Action {
	for _, f := range files {
		if f.Path == p {
			return f.Validate
		}
	}
	return Action{}
}

// TerminatesTLS reports whether host h serves HTTPS itself.
func TerminatesTLS(s *schema.Stack, h *schema.Host) bool {
	if !s.TLS.Enabled() {
		return false
	}
	if s.TLS.Terminate == "app" {
		return h.Has("app")
	}
	return h.Has("lb") && s.Balancer.Kind != "cloud"
}

// UsesCertbot reports whether host h obtains the stack's certificate
// with certbot.
func UsesCertbot(s *schema.Stack, h *schema.Host) bool {
	return s.TLS.Mode == "certbot" && TerminatesTLS(s, h)
}

// CertbotCommand is the first-boot command that obtains the stack's
// certificate unless it exists: certbot's standalone listener, with
// extra arguments for the server it stands beside (hooks that free
// port 80, or another port to listen on).
func CertbotCommand(s *schema.Stack, extra ...string) string {
	return fmt.Sprintf("test -e %s || %s", ShellQuote(s.TLS.Certificate), CertbotCertonly(s, "--standalone", extra...))
}

// CertbotCertonly is the certbot command that obtains the stack's
// certificate with the authenticator given ("--standalone",
// "--webroot -w DIR") and extra arguments (hooks, addresses).
func CertbotCertonly(s *schema.Stack, authenticator string, extra ...string) string {
	args := []string{"certbot certonly " + authenticator + " --non-interactive --agree-tos --keep-until-expiring"}
	args = append(args, extra...)
	if s.TLS.Email != "" {
		args = append(args, "-m "+ShellQuote(s.TLS.Email))
	} else {
		args = append(args, "--register-unsafely-without-email")
	}
	args = append(args, "--cert-name "+ShellQuote(s.Domain))
	for _, d := range append([]string{s.Domain}, s.Aliases...) {
		args = append(args, "-d "+ShellQuote(d))
	}
	return strings.Join(args, " ")
}

// Locator is a generator that can say where its program writes the file
// at a host path (a custom generator's Jsonnet), for a diagnostic the
// build finds across generators (a clash): the file, line and column,
// and false when it cannot.
type Locator interface {
	Locate(path string) (schema.Diagnostic, bool)
}

// Sourcer is a generator that knows which stack fields its files come
// from, for the runbook's "from stack line" link.
type Sourcer interface {
	// Sources lists the field paths f comes from ("balancer",
	// "tuning.sysctl"), the most specific first; the first one the stack
	// file spells out is linked. The host's own entry is tried after
	// them for a host file.
	Sources(s *schema.Stack, f File) []string
}

// AppHostEntries are the app hosts' entries ("hosts.app1", …): what a
// balancer's configuration, which lists them as its servers, comes
// from after the balancer section, so that diff names the host added,
// removed or readdressed that changed it.
func AppHostEntries(s *schema.Stack) []string {
	var out []string
	for _, h := range s.HostsWithRole("app") {
		out = append(out, "hosts."+h.Name)
	}
	return out
}

// Effecter is a generator whose files take effect with no reload action,
// at a moment it names in words a reviewer knows ("new login
// sessions"); diff shows it as the change's impact.
type Effecter interface {
	Effect() string
}

// Facts are what a kind's files do that the runbook quotes, said by the
// generator that wrote them instead of read back from the text.
type Facts struct {
	// RelaysACME: hosts that cannot answer an ACME HTTP-01 challenge
	// pass it on to the host that can (each host runs its own certbot).
	RelaysACME bool
}

// Facter is a generator whose files hold facts the runbook quotes.
type Facter interface {
	// Facts is what files (this generator's files of the stack) do.
	Facts(s *schema.Stack, files []File) Facts
}

// FactsOf is the facts of a render: what any generator of gens says of
// its files.
func FactsOf(gens []Generator, s *schema.Stack, files []File) Facts {
	var all Facts
	for _, g := range gens {
		if f, ok := g.(Facter); ok {
			all.RelaysACME = all.RelaysACME || f.Facts(s, OfKind(files, g.Kind())).RelaysACME
		}
	}
	return all
}
