package site_test

import (
	"encoding/xml"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

var svgRE = regexp.MustCompile(`(?s)<svg class="topology".*?</svg>`)

// TestTopologyLegible: in every example stack's diagram no text sits on
// a line, every line of a box fits inside it, and what the stack has
// beyond hosts is drawn: the balancers' virtual address and the
// monitoring host.
func TestTopologyLegible(t *testing.T) {
	files := exampleSite(t)
	res := exampleResult(t)
	for _, r := range res.Rendered {
		name, st := r.Stack.Name, r.Stack
		page := string(files["stacks/"+name+"/index.html"])
		raw := svgRE.FindString(page)
		if raw == "" {
			t.Errorf("%s: no topology diagram", name)
			continue
		}
		var lines [][4]float64
		type box struct{ x, y, w, h float64 }
		var boxes []box
		type label struct {
			x0, y0, x1, y1 float64
			text           string
			in             *box
		}
		var texts []label
		dec := xml.NewDecoder(strings.NewReader(raw))
		var cur *box
		for {
			tok, err := dec.Token()
			if err != nil {
				break
			}
			se, ok := tok.(xml.StartElement)
			if !ok {
				continue
			}
			attr := map[string]string{}
			for _, a := range se.Attr {
				attr[a.Name.Local] = a.Value
			}
			f := func(k string) float64 { v, _ := strconv.ParseFloat(attr[k], 64); return v }
			switch se.Name.Local {
			case "line":
				lines = append(lines, [4]float64{f("x1"), f("y1"), f("x2"), f("y2")})
			case "rect":
				boxes = append(boxes, box{f("x"), f("y"), f("width"), f("height")})
				cur = &boxes[len(boxes)-1]
			case "text":
				var s string
				if err := dec.DecodeElement(&s, &se); err != nil {
					t.Fatal(err)
				}
				// DejaVu Sans Mono's advance is 0.602 em; the classes'
				// sizes are those of assets/hacompile.css.
				size := map[string]float64{"name": 13, "detail": 11, "edge-label": 11, "col-title": 13}[attr["class"]]
				w := 0.61 * size * float64(len([]rune(s)))
				x, y := f("x"), f("y")
				x0 := x
				switch attr["text-anchor"] {
				case "middle":
					x0 = x - w/2
				case "end":
					x0 = x - w
				}
				l := label{x0, y - 0.8*size, x0 + w, y + 0.25*size, s, nil}
				if attr["class"] == "name" || attr["class"] == "detail" {
					l.in = cur
				}
				texts = append(texts, l)
			}
		}
		for _, l := range texts {
			for _, ln := range lines {
				if segmentHitsBox(ln, l.x0, l.y0, l.x1, l.y1) {
					t.Errorf("%s: the text %q sits on a line from (%g,%g) to (%g,%g)", name, l.text, ln[0], ln[1], ln[2], ln[3])
				}
			}
			if b := l.in; b != nil && (l.x1 > b.x+b.w-4 || l.y1 > b.y+b.h) {
				t.Errorf("%s: %q does not fit its box (%.0f px wide, the box ends at %.0f)", name, l.text, l.x1-l.x0, b.x+b.w)
			}
		}
		all := strings.Join(func() []string {
			var s []string
			for _, l := range texts {
				s = append(s, l.text)
			}
			return s
		}(), "\n")
		if v := st.Balancer.VRRP; v != nil && !strings.Contains(all, v.VirtualAddress) {
			t.Errorf("%s: the diagram does not show the virtual address %s", name, v.VirtualAddress)
		}
		if st.Monitoring.Enabled && !strings.Contains(all, "Prometheus") {
			t.Errorf("%s: the diagram does not show the monitoring host", name)
		}
	}
}

// segmentHitsBox reports whether the segment ln crosses the rectangle.
func segmentHitsBox(ln [4]float64, x0, y0, x1, y1 float64) bool {
	// Clip the segment to the box (Liang–Barsky).
	dx, dy := ln[2]-ln[0], ln[3]-ln[1]
	t0, t1 := 0.0, 1.0
	for _, c := range [][2]float64{{-dx, ln[0] - x0}, {dx, x1 - ln[0]}, {-dy, ln[1] - y0}, {dy, y1 - ln[1]}} {
		p, q := c[0], c[1]
		if p == 0 {
			if q < 0 {
				return false
			}
			continue
		}
		r := q / p
		if p < 0 {
			t0 = max(t0, r)
		} else {
			t1 = min(t1, r)
		}
		if t0 > t1 {
			return false
		}
	}
	return true
}
