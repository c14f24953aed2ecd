package rules

import (
	"reflect"
	"slices"
	"testing"

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
