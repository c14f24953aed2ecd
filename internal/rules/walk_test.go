package rules

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/hacompile/hacompile/internal/testtool"
	"github.com/hacompile/hacompile/schema"
)

// TestWalkStringsPaths pins the field paths secret-inline reports, as
// the stack file writes them: json names, list indices, map keys in
// order, pointers followed, untagged fields left out.
func TestWalkStringsPaths(t *testing.T) {
	type inner struct {
		Notes string   `json:"notes,omitempty"`
		List  []string `json:"list"`
		skip  string
	}
	type outer struct {
		Name  string            `json:"name"`
		Hosts map[string]*inner `json:"hosts"`
		Tags  map[string]string `json:"tags"`
		Items []inner           `json:"items"`
		Nil   *inner            `json:"nil"`
		Hide  string            `json:"-"`
	}
	v := outer{
		Name:  "n",
		Hosts: map[string]*inner{"b": {Notes: "x", List: []string{"p", "q"}}, "a": {skip: "s"}},
		Tags:  map[string]string{"": "empty", "k.1": "v"},
		Items: []inner{{Notes: "i0"}},
		Hide:  "h",
	}
	var got []string
	walkStrings(reflect.ValueOf(v), &strPath{}, func(p *strPath, s string) { got = append(got, p.String()+"="+s) })
	want := []string{"name=n", "hosts.a.notes=", "hosts.b.notes=x", "hosts.b.list[0]=p", "hosts.b.list[1]=q", "tags.=empty", "tags.k.1=v", "items[0].notes=i0"}
	if !slices.Equal(got, want) {
		t.Errorf("paths\n got %q\nwant %q", got, want)
	}
	// A stack with the same secret in two hosts' notes reports both.
	s := &schema.Stack{Hosts: map[string]*schema.Host{
		"app1": {Notes: "password=hunter22"}, "app2": {Notes: "password=hunter22"}, "app3": {Notes: "ok"},
	}}
	var paths []string
	for _, f := range secretInline(s) {
		paths = append(paths, f.path)
	}
	if !slices.Equal(paths, []string{"hosts.app1.notes", "hosts.app2.notes"}) {
		t.Errorf("secret-inline paths %q", paths)
	}
}

// TestHostFDsWithoutWords proves that fd-limit's count without the words
// is the count with them, on every app host of the example stacks (and
// with a pooler and several apps among them).
func TestHostFDsWithoutWords(t *testing.T) {
	l, err := schema.NewLoader("")
	if err != nil {
		t.Fatal(err)
	}
	hosts := 0
	for _, f := range testtool.ExampleStacks(t) {
		if !strings.HasSuffix(f, ".cue") {
			continue
		}
		s, err := l.LoadFile(f)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, h := range s.HostsWithRole("app") {
			want, _ := HostFDs(s, h)
			if got, words := hostFDs(s, h, false); got != want || words != nil {
				t.Errorf("%s: %s: %d descriptors without words (%q), %d with", f, h.Name, got, words, want)
			}
			for _, a := range s.AppsOn(h) {
				want, _ := ProcessFDs(s, a)
				if got, what := processFDs(s, a, false); got != want || what != "" {
					t.Errorf("%s: %s: %d descriptors per process without words (%q), %d with", f, a.Name, got, what, want)
				}
			}
			hosts++
		}
	}
	if hosts < 10 {
		t.Errorf("%d app hosts", hosts)
	}
}
