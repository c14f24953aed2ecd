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
// in CUE exactly the files hacompile writes for every app host, and each
// app host's cloud-init carrying them: the templates are made from the
// files hacompile rendered for the fleet's first app host, with its name
// and address replaced by interpolations. (The two balancers keep the
// light templates.)

// sameFilesCUE writes dir/cue/samefiles.cue from the host directory of
// the first app host under dir/out.
func sameFilesCUE(dir string, stack []byte) error {
	m := regexp.MustCompile(`(?m)^\t(app[0-9]+): \{address: "([^"]+)"`).FindSubmatch(stack)
	if m == nil {
		return fmt.Errorf("no app host in the fleet")
	}
	name, addr := string(m[1]), string(m[2])
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
	if err != nil {
		return err
	}
	nameRE := regexp.MustCompile(`\b` + regexp.QuoteMeta(name) + `\b`)
	addrRE := regexp.MustCompile(`\b` + regexp.QuoteMeta(addr) + `\b`)
	var b strings.Builder
	b.WriteString("package fleet\n\nimport (\n\t\"encoding/yaml\"\n\t\"list\"\n)\n\n")
	b.WriteString("same: {\n\tfor hn, h in hosts if list.Contains(h.roles, \"app\") {\n\t\t(hn): {\n\t\t\tfiles: {\n")
	for _, p := range slices.Sorted(maps.Keys(files)) {
		c := files[p]
		// A raw string: only \#( interpolates, and nothing else needs
		// escaping unless the file itself holds \# or """#.
		if strings.Contains(c, `\#`) || strings.Contains(c, `"""#`) {
			return fmt.Errorf("%s: cannot be written as a CUE raw string", p)
		}
		c = addrRE.ReplaceAllString(c, `\#(h.address)`)
		c = nameRE.ReplaceAllString(c, `\#(hn)`)
		fmt.Fprintf(&b, "\t\t\t\t%q: #\"\"\"\n", p)
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
	b.WriteString("\t\t}\n\t}\n}\n")
	return writeFile(filepath.Join(dir, "cue", "samefiles.cue"), []byte(b.String()))
}
