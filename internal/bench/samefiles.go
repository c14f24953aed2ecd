//go:build unix

package main

import (
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
)

// The light CUE templates of hostFilesCUE compute about a tenth of the
// bytes hacompile writes for an app host. The same-files chain computes
// in CUE exactly the files hacompile writes for every app, worker and
// cache host, and each such host's cloud-init carrying them: the
// templates are made from the files hacompile rendered for the fleet's
// first host of each role, with its name and address replaced by
// interpolations. (The two balancers keep the light templates.)

// sameRoles are the roles whose hosts carry the same files up to their
// name and address.
var sameRoles = []string{"app", "worker", "cache"}

// sameFilesCUE writes dir/cue/samefiles.cue from the host directories of
// the first host of each role under dir/out.
func sameFilesCUE(dir string, stack []byte) error {
	var b strings.Builder
	b.WriteString("package fleet\n\nimport (\n\t\"encoding/yaml\"\n\t\"list\"\n)\n\nsame: {\n")
	for _, role := range sameRoles {
		m := regexp.MustCompile(`(?m)^\t(\S+): \{address: "([^"]+)", roles: \["` + role + `"\]`).FindSubmatch(stack)
		if m == nil {
			if role == "app" {
				return fmt.Errorf("no app host in the fleet")
			}
			continue
		}
		if err := sameFilesOf(&b, dir, role, string(m[1]), string(m[2])); err != nil {
			return err
		}
	}
	b.WriteString("}\n")
	return writeFile(filepath.Join(dir, "cue", "samefiles.cue"), []byte(b.String()))
}

// sameFilesOf writes the comprehension giving every host of role the
// files of host name at addr.
func sameFilesOf(b *strings.Builder, dir, role, name, addr string) error {
	files, err := hostFiles(dir, name)
	if err != nil {
		return err
	}
	nameRE := regexp.MustCompile(`\b` + regexp.QuoteMeta(name) + `\b`)
	addrRE := regexp.MustCompile(`\b` + regexp.QuoteMeta(addr) + `\b`)
	fmt.Fprintf(b, "\tfor hn, h in hosts if list.Contains(h.roles, %q) {\n\t\t(hn): {\n\t\t\tfiles: {\n", role)
	for _, p := range slices.Sorted(maps.Keys(files)) {
		c := files[p]
		// A raw string: only \#( interpolates, and nothing else needs
		// escaping unless the file itself holds \# or """#.
		if strings.Contains(c, `\#`) || strings.Contains(c, `"""#`) {
			return fmt.Errorf("%s: cannot be written as a CUE raw string", p)
		}
		c = addrRE.ReplaceAllString(c, `\#(h.address)`)
		c = nameRE.ReplaceAllString(c, `\#(hn)`)
		fmt.Fprintf(b, "\t\t\t\t%q: #\"\"\"\n", p)
		for _, l := range strings.Split(strings.TrimSuffix(c, "\n"), "\n") {
			if l != "" {
				b.WriteString("\t\t\t\t\t" + l)
			}
			b.WriteString("\n")
		}
		b.WriteString("\t\t\t\t\t\n\t\t\t\t\t\"\"\"#\n")
	}
	b.WriteString("\t\t\t}\n")
	b.WriteString("\t\t\t\"cloud-init\": \"#cloud-config\\n\" + yaml.Marshal({write_files: [for p, c in files {path: \"/\" + p, content: c, permissions: \"0644\"}]})\n")
	b.WriteString("\t\t}\n\t}\n")
	return nil
}

// hostFiles reads the files hacompile wrote for a host under dir/out,
// by path relative to the host's root.
func hostFiles(dir, name string) (map[string]string, error) {
	root := filepath.Join(dir, "out", "fleet", "hosts", name)
	files := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		files[filepath.ToSlash(rel)] = string(b)
		return nil
	})
	return files, err
}
