package site_test

import (
	"fmt"
	"maps"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hacompile/hacompile/schema"
	"github.com/hacompile/hacompile/site"
)

// contrastJS measures, on the loaded page, the body's background
// luminance, the contrast of body text on it, and the lowest contrast
// of any highlighted token (and its class) on its listing's background.
const contrastJS = `(() => {
  const lum = c => {
    const m = c.match(/[\d.]+/g).map(Number);
    const a = m.slice(0, 3).map(v => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); });
    return 0.2126 * a[0] + 0.7152 * a[1] + 0.0722 * a[2];
  };
  const ratio = (a, b) => { const x = lum(a), y = lum(b); return (Math.max(x, y) + 0.05) / (Math.min(x, y) + 0.05); };
  const body = getComputedStyle(document.body);
  let worst = 100, worstOf = "";
  document.querySelectorAll("pre.chroma").forEach(pre => {
    const bg = getComputedStyle(pre).backgroundColor;
    pre.querySelectorAll("span").forEach(s => {
      if (s.textContent.trim() === "") return; // whitespace shows no colour
      const r = ratio(getComputedStyle(s).color, bg);
      if (r < worst) { worst = r; worstOf = s.className + " " + getComputedStyle(s).color + " on " + bg; }
    });
  });
  return {BgLum: lum(body.backgroundColor), Text: ratio(body.color, body.backgroundColor), Worst: worst, WorstOf: worstOf};
})()`

// TestChromiumColourSchemes: the runbook follows the reader's colour
// scheme. In the light and the dark scheme alike, body text has a
// contrast of at least 7:1 (WCAG AAA) and every highlighted token at
// least 3:1 on its listing, on every kind of page (the field reference
// and a filled-in "what changed" with its diff among them); the search
// box's results are readable at 4.5:1; the dark scheme really is dark;
// screenshots of both are not blank (HACOMPILE_SCREENSHOTS=dir keeps
// them). And the copy button of a command block copies exactly its
// commands.
func TestChromiumColourSchemes(t *testing.T) {
	files := maps.Clone(exampleSite(t))
	// The "what changed" page as publish fills it in (build's says
	// publish will): a group of hosts and a highlighted diff.
	var stack *schema.Stack
	for _, r := range exampleResult(t).Rendered {
		if r.Stack.Name == "do-python-ha" {
			stack = r.Stack
		}
	}
	changed, err := site.ChangesPages([]site.Changes{{
		Stack: stack, Parent: strings.Repeat("a", 40), ParentSource: strings.Repeat("b", 40), Source: strings.Repeat("c", 40),
		Summary: "3 hosts and 1 file changed (each group shows its first host's files).",
		Groups: []site.ChangeGroup{{Hosts: "app1…app3 (3 hosts)", Status: "changed", Impact: "restart", Files: []site.ChangeFile{{
			Path: "do-python-ha/hosts/app1/etc/app/gunicorn.conf.py", Status: "changed", Added: 1, Removed: 1,
			Diff: "--- a/do-python-ha/hosts/app1/etc/app/gunicorn.conf.py\n+++ b/do-python-ha/hosts/app1/etc/app/gunicorn.conf.py\n@@ -3,3 +3,3 @@\n workers = 5\n-timeout = 30\n+timeout = 45\n keepalive = 5\n",
		}}}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	maps.Copy(files, changed)
	ctx, tb, srv := openSite(t, files, 2*time.Minute)
	// Every kind of page: the index, a stack's overview, a host, the
	// procedures, a source listing, the field reference, a file several
	// hosts share, the alerts and the filled-in "what changed".
	pages := []string{"index.html", "stacks/do-python-ha/index.html", "stacks/do-perl-ha/hosts/lb1.html", "stacks/python-celery-cache/procedures.html",
		"stacks/jsonnet-shop/source.html", "reference.html", "stacks/do-python-ha/alerts.html", "stacks/do-python-ha/changes.html"}
	for p := range files {
		if strings.HasPrefix(p, "stacks/do-python-ha/same/") && strings.Contains(p, "nginx-conf") {
			pages = append(pages, p)
			break
		}
	}
	for _, scheme := range []string{"light", "dark"} {
		if err := tb.call(ctx, "Emulation.setEmulatedMedia", map[string]any{
			"features": []map[string]string{{"name": "prefers-color-scheme", "value": scheme}},
		}, nil); err != nil {
			t.Fatal(err)
		}
		for _, p := range pages {
			if _, err := tb.navigate(ctx, srv.URL+"/"+p); err != nil {
				t.Fatal(err)
			}
			var c struct {
				BgLum, Text, Worst float64
				WorstOf            string
			}
			if err := tb.eval(ctx, contrastJS, &c); err != nil {
				t.Fatal(err)
			}
			where := fmt.Sprintf("%s (%s)", p, scheme)
			if dark := c.BgLum < 0.05; dark != (scheme == "dark") {
				t.Errorf("%s: background luminance %.3f", where, c.BgLum)
			}
			if c.Text < 7 {
				t.Errorf("%s: body text contrast %.1f:1, want at least 7:1", where, c.Text)
			}
			if c.Worst < 3 {
				t.Errorf("%s: a highlighted token has contrast %.1f:1 (%s), want at least 3:1", where, c.Worst, c.WorstOf)
			}
			if p == "stacks/do-python-ha/changes.html" {
				var n int
				if err := tb.eval(ctx, `document.querySelectorAll("pre.chroma span").length`, &n); err != nil {
					t.Fatal(err)
				}
				if n == 0 {
					t.Errorf("%s: the diff is not highlighted", where)
				}
			}
			shot := screenshot(ctx, t, tb, scheme+"-"+filepath.Base(filepath.Dir(p))+"-"+filepath.Base(p))
			if frac := inked(shot); frac < 0.03 {
				t.Errorf("%s: screenshot is blank: %.2f%% of pixels differ from the background", where, 100*frac)
			}
		}
		// The search box's results, over the page.
		searchFor(ctx, t, tb, srv.URL+"/index.html", "lb2", "stacks/do-perl-ha/hosts/lb2.html")
		if _, err := tb.navigate(ctx, srv.URL+"/index.html"); err != nil {
			t.Fatal(err)
		}
		var r struct {
			Worst float64
			N     int
		}
		if err := tb.eval(ctx, `(async () => {
  const input = document.getElementById("search");
  input.focus();
  input.value = "app";
  input.dispatchEvent(new Event("input"));
  for (let i = 0; i < 400 && !document.querySelector("#search-results a"); i++) await new Promise(r => setTimeout(r, 50));
  const lum = c => {
    const m = c.match(/[\d.]+/g).map(Number);
    const a = m.slice(0, 3).map(v => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); });
    return 0.2126 * a[0] + 0.7152 * a[1] + 0.0722 * a[2];
  };
  const bgOf = el => { for (; el; el = el.parentElement) { const b = getComputedStyle(el).backgroundColor; if (!/rgba\(.*, 0\)$/.test(b) && b !== "transparent") return b; } return "rgb(255, 255, 255)"; };
  let worst = 100, n = 0;
  document.querySelectorAll("#search-results a span").forEach(s => {
    n++;
    const x = lum(getComputedStyle(s).color), y = lum(bgOf(s));
    worst = Math.min(worst, (Math.max(x, y) + 0.05) / (Math.min(x, y) + 0.05));
  });
  return {Worst: worst, N: n};
})()`, &r); err != nil {
			t.Fatal(err)
		}
		if r.N == 0 {
			t.Errorf("search results (%s): none shown for \"app\"", scheme)
		} else if r.Worst < 4.5 {
			t.Errorf("search results (%s): text contrast %.1f:1, want at least 4.5:1", scheme, r.Worst)
		}
		shot := screenshot(ctx, t, tb, scheme+"-search.html")
		if frac := inked(shot); frac < 0.03 {
			t.Errorf("search results (%s): screenshot is blank", scheme)
		}
	}

	// The copy button: the clipboard receives the block's commands.
	if _, err := tb.navigate(ctx, srv.URL+"/stacks/python-celery-cache/procedures.html"); err != nil {
		t.Fatal(err)
	}
	var copied struct {
		Buttons       int
		Copied, Shown string
		Label         string
	}
	err = tb.eval(ctx, `(async () => {
  let got = null;
  navigator.clipboard.writeText = t => { got = t; return Promise.resolve(); };
  const block = document.querySelector(".cmd");
  const button = block.querySelector("button.copy");
  button.click();
  await new Promise(r => setTimeout(r, 50));
  return {Buttons: document.querySelectorAll(".cmd button.copy").length, Copied: got, Shown: block.querySelector("pre").innerText, Label: button.textContent};
})()`, &copied)
	if err != nil {
		t.Fatal(err)
	}
	if copied.Buttons == 0 || copied.Label != "Copied" {
		t.Fatalf("copy buttons: %d, the clicked one says %q", copied.Buttons, copied.Label)
	}
	if want := copied.Shown; copied.Copied != want || want == "" {
		t.Errorf("the copy button copied %q, want the block's commands %q", copied.Copied, want)
	}
}
