package cli

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/hacompile/hacompile/internal/outdir"
	"github.com/hacompile/hacompile/site"
)

// pollInterval is how often serve looks at the stack files for changes.
const pollInterval = time.Second

func newServe() *cobra.Command {
	var out, addr string
	c := &cobra.Command{
		Use:   "serve [FILE|DIR]...",
		Short: "Serve the runbook site and rebuild it when a stack changes",
		Long: `Serve builds the stacks (default: the stacks directory) into OUT as build does,
then serves the runbook site, OUT/site/, over HTTP for reading. It looks at the
stack files every second and rebuilds when one changes; a stack that stops
compiling leaves the last good build in place and its errors on stderr.
It listens on loopback unless told otherwise: the runbook names every host.`,
		Example: `  hacompile serve                       # http://127.0.0.1:8080/
  hacompile serve --addr 127.0.0.1:9000 --out /tmp/shop stacks/shop.cue`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				args = []string{"stacks"}
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			// The address first: a bad one is said before anything is
			// built or written.
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				return usageError{fmt.Errorf("--addr %s: %w", addr, err)}
			}
			defer ln.Close()
			s := &server{cmd: cmd, args: args, out: out}
			if err := s.rebuild(); err != nil {
				return err
			}
			warnNonLoopback(cmd.ErrOrStderr(), ln.Addr())
			srv := &http.Server{Handler: s.handler(), ReadHeaderTimeout: 10 * time.Second}
			fmt.Fprintf(cmd.OutOrStdout(), "serving %s on http://%s/ (Ctrl-C to stop)\n", filepath.Join(out, site.Dir), ln.Addr())
			errc := make(chan error, 1)
			go func() { errc <- srv.Serve(ln) }()
			go s.watch(ctx)
			select {
			case err := <-errc:
				return err
			case <-ctx.Done():
			}
			shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			return srv.Shutdown(shut)
		},
	}
	c.Flags().StringVar(&addr, "addr", "127.0.0.1:8080", "address to listen on")
	c.Flags().StringVar(&out, "out", "out", "output directory (the site is OUT/site/)")
	addStackFlags(c)
	return c
}

// server rebuilds OUT and serves OUT/site/.
type server struct {
	cmd  *cobra.Command
	args []string
	out  string
	mu   sync.Mutex // one rebuild at a time; output lines whole
	seen string     // fingerprint of the stack files last built
}

// rebuild runs build's pipeline and writes OUT.
func (s *server) rebuild() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seen = fingerprint(s.args)
	c, err := compileBuild(s.cmd, s.args, s.out, true, true, nil, nil, nil)
	if err != nil {
		return err
	}
	unlock := outdir.LockOut(s.out, true, func() {
		fmt.Fprintf(s.cmd.ErrOrStderr(), "hacompile: waiting for another build of %s to finish\n", s.out)
	})
	listing := outdir.StartListing(s.out)
	if namesFiles(s.args) {
		// The runbook of named stack files covers them alone, and the
		// write that follows leaves OUT holding just their output.
		if err := othersIn(s.out, listing, c); err != nil {
			unlock()
			return err
		}
	}
	// The way build writes: one write path from a compile to an out/.
	stats, _, err := writeAll(s.out, newOutWriter(listing, outdir.StartIndex(s.out)), c)
	unlock()
	if err != nil {
		return err
	}
	var w, u, r int
	for _, st := range stats {
		w, u, r = w+st.Written, u+st.Unchanged, r+st.Removed
	}
	fmt.Fprintf(s.cmd.OutOrStdout(), "built %d stacks: %d files written, %d unchanged, %d removed\n", len(c.names), w, u, r)
	return nil
}

// othersIn refuses an OUT that holds the output of stacks the compile c
// did not build: serving named stack files would remove it.
func othersIn(out string, l *outdir.Listing, c *compiled) error {
	tops, err := l.Tops()
	if err != nil {
		return err
	}
	built := map[string]bool{site.Dir: true}
	for _, r := range c.res.Rendered {
		built[r.Stack.Name] = true
	}
	for _, k := range c.kept {
		built[k.Name] = true
	}
	var others []string
	for _, t := range tops {
		if !built[t] {
			others = append(others, t)
		}
	}
	if len(others) == 0 {
		return nil
	}
	return fmt.Errorf("%s holds the output of stacks not named here (%s): serving stack files renders a runbook of those alone and would remove the others' output; serve the stacks directory, or give --out a directory of its own", out, strings.Join(others, ", "))
}

// watch polls the stack files and rebuilds when they change. A failed
// rebuild is reported and the last good output stays served.
func (s *server) watch(ctx context.Context) {
	t := time.NewTicker(pollInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s.mu.Lock()
		changed := fingerprint(s.args) != s.seen
		s.mu.Unlock()
		if !changed {
			continue
		}
		if err := s.rebuild(); err != nil {
			stderr := s.cmd.ErrOrStderr()
			s.mu.Lock()
			report(stderr, err)
			fmt.Fprintln(stderr, "hacompile: serve: kept the last good build; fix the stack and save again")
			s.mu.Unlock()
		}
	}
}

// handler serves OUT/site/, never cached: a reload shows the rebuild.
func (s *server) handler() http.Handler {
	files := http.FileServer(siteDir{http.Dir(filepath.Join(s.out, site.Dir))})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !localHost(r.Host) {
			// A name other than localhost is a page elsewhere reaching
			// this server by DNS rebinding.
			http.Error(w, "hacompile serve answers only to localhost and IP addresses", http.StatusForbidden)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			http.Error(w, "read only", http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("Cache-Control", "no-cache")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		files.ServeHTTP(w, r)
	})
}

// siteDir is OUT/site/ as the file server reads it. A request path too
// long for the file system (a name past its limit, or a path deeper
// than it goes) names no page of the site: not found, where the file
// server would answer it as its own failure (500).
type siteDir struct{ http.Dir }

func (d siteDir) Open(name string) (http.File, error) {
	f, err := d.Dir.Open(name)
	if errors.Is(err, syscall.ENAMETOOLONG) {
		return nil, fs.ErrNotExist
	}
	return f, err
}

// fingerprint sums the names, sizes and modification times of every
// file under args (stack files, and the libraries a Jsonnet stack
// imports beside them). It is cheap enough to run every second.
func fingerprint(args []string) string {
	var lines []string
	for _, a := range args {
		filepath.WalkDir(a, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				lines = append(lines, p+" "+err.Error())
				return nil
			}
			if d.IsDir() {
				return nil
			}
			if fi, err := d.Info(); err == nil {
				lines = append(lines, fmt.Sprintf("%s %d %d", p, fi.Size(), fi.ModTime().UnixNano()))
			}
			return nil
		})
	}
	slices.Sort(lines)
	sum := sha256.Sum256([]byte(strings.Join(lines, "\n")))
	return string(sum[:])
}

func warnNonLoopback(w io.Writer, a net.Addr) {
	tcp, ok := a.(*net.TCPAddr)
	if !ok || tcp.IP.IsLoopback() {
		return
	}
	fmt.Fprintf(w, "hacompile: serve: listening on %s, not loopback: anyone who reaches it can read the runbook\n", a)
}

// localHost reports whether a request's Host header names this server
// as a browser on this machine does: localhost, or an IP address (which
// no other site's DNS name can rebind to).
func localHost(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	return strings.EqualFold(host, "localhost") || net.ParseIP(host) != nil
}
