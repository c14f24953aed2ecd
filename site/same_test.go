package site_test

import (
	"regexp"
	"strings"
	"testing"

	"github.com/hacompile/hacompile/site"
)

// TestSharedListings: a file two hosts carry byte for byte is listed once,
// on a page naming both hosts, and each host page links there instead of
// repeating it; a file only one host has (the app's nginx site, which
// listens on the host's own address) stays on that host's page.
func TestSharedListings(t *testing.T) {
	res, opt := compileStack(t, notesStack)
	files, err := site.Render(res, opt)
	if err != nil {
		t.Fatal(err)
	}
	var same []string
	for p := range files {
		if strings.HasPrefix(p, "stacks/web/same/") {
			same = append(same, p)
		}
	}
	if len(same) == 0 {
		t.Fatal("no shared listing pages for two identical app hosts")
	}
	sysctl := ""
	for _, p := range same {
		if strings.Contains(p, "etc-sysctl-d-") {
			sysctl = p
		}
	}
	if sysctl == "" {
		t.Fatalf("no shared page for the sysctl file among %v", same)
	}
	page := string(files[sysctl])
	for _, want := range []string{`<a href="../hosts/app1.html">app1</a>, <a href="../hosts/app2.html">app2</a>`, `class="listing"`, "net.core.somaxconn"} {
		if !strings.Contains(page, want) {
			t.Errorf("%s lacks %q", sysctl, want)
		}
	}
	link := regexp.MustCompile(`Identical on 2 hosts: the listing is on <a href="\.\./same/(etc-sysctl-d-[^"]+)">`)
	for _, h := range []string{"app1", "app2"} {
		host := string(files["stacks/web/hosts/"+h+".html"])
		m := link.FindStringSubmatch(host)
		if m == nil || "stacks/web/same/"+m[1] != sysctl {
			t.Errorf("%s's page does not link its sysctl file to %s", h, sysctl)
		}
		// The host page keeps the file's metadata, not its listing.
		sec := host[strings.Index(host, `id="file-etc-sysctl-d-`):]
		sec = sec[:strings.Index(sec, "</section>")]
		if strings.Contains(sec, "somaxconn") || !strings.Contains(sec, "sha256") {
			t.Errorf("%s's sysctl section should carry metadata only:\n%s", h, sec)
		}
		// Its own nginx site (own listen address) is listed in place.
		if !strings.Contains(host, `data-lexer="nginx"`) {
			t.Errorf("%s's page lists none of its own nginx files", h)
		}
	}
}
