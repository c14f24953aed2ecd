package site

import (
	"fmt"
	"html/template"
	"strings"
)

// doc builds the HTML of the procedure and alert pages, whose shape
// follows the stack too closely for templates to stay readable.
// Everything inserted goes through hf, which escapes every argument
// that is not already template.HTML.
type doc struct {
	g     *gen
	b     strings.Builder
	inOl  bool
	depth int
}

// hf formats trusted HTML, escaping string arguments.
func hf(format string, args ...any) template.HTML {
	conv := make([]any, len(args))
	for i, a := range args {
		switch v := a.(type) {
		case template.HTML:
			conv[i] = string(v)
		case string:
			conv[i] = template.HTMLEscapeString(v)
		default:
			conv[i] = v
		}
	}
	return template.HTML(fmt.Sprintf(format, conv...))
}

func (d *doc) html() template.HTML {
	d.closeOl()
	for d.depth > 0 {
		d.end()
	}
	return template.HTML(d.b.String())
}

func (d *doc) raw(h template.HTML) { d.b.WriteString(string(h)) }

// section opens a section with a heading; end closes it.
func (d *doc) section(id, title string) {
	d.closeOl()
	d.depth++
	d.raw(hf("<section id=\"%s\">\n<h2>%s <a class=\"self\" href=\"#%s\" aria-label=\"Link to this section\">#</a></h2>\n", id, title, id))
}

func (d *doc) sub(id, title string) {
	d.closeOl()
	d.raw(hf("<h3 id=\"%s\">%s</h3>\n", id, title))
}

func (d *doc) end() {
	d.closeOl()
	if d.depth > 0 {
		d.depth--
		d.b.WriteString("</section>\n")
	}
}

func (d *doc) p(h template.HTML) {
	d.closeOl()
	d.raw("<p>" + h + "</p>\n")
}

func (d *doc) note(h template.HTML) {
	d.closeOl()
	d.raw("<p class=\"note\">" + h + "</p>\n")
}

// step adds a numbered step, with commands to run.
func (d *doc) step(h template.HTML, cmds ...string) {
	if !d.inOl {
		d.b.WriteString("<ol class=\"steps\">\n")
		d.inOl = true
	}
	d.raw("<li><p>" + h + "</p>")
	if len(cmds) > 0 {
		d.b.WriteString(string(d.cmdHTML(cmds...)))
	}
	d.b.WriteString("</li>\n")
}

// stepListing adds a step showing content in another language.
func (d *doc) stepListing(h template.HTML, lexer, content string) {
	if !d.inOl {
		d.b.WriteString("<ol class=\"steps\">\n")
		d.inOl = true
	}
	d.raw("<li><p>" + h + "</p><div class=\"cmd\">" + d.g.hl.listing(lexer, []byte(content+"\n")) + "</div></li>\n")
}

func (d *doc) closeOl() {
	if d.inOl {
		d.b.WriteString("</ol>\n")
		d.inOl = false
	}
}

// cmd shows commands outside a step.
func (d *doc) cmd(cmds ...string) {
	d.closeOl()
	d.raw(d.cmdHTML(cmds...))
}

func (d *doc) cmdHTML(cmds ...string) template.HTML {
	return "<div class=\"cmd\">" + d.g.hl.listing("bash", []byte(strings.Join(cmds, "\n")+"\n")) + "</div>\n"
}

func (d *doc) ul(items ...template.HTML) {
	d.closeOl()
	if len(items) == 0 {
		return
	}
	d.b.WriteString("<ul>\n")
	for _, it := range items {
		d.raw("<li>" + it + "</li>\n")
	}
	d.b.WriteString("</ul>\n")
}

func (d *doc) table(head []string, rows [][]template.HTML) {
	d.closeOl()
	if len(rows) == 0 {
		return
	}
	d.b.WriteString("<div class=\"table\"><table>\n<thead><tr>")
	for _, h := range head {
		d.raw(hf("<th scope=\"col\">%s</th>", h))
	}
	d.b.WriteString("</tr></thead>\n<tbody>\n")
	for _, r := range rows {
		d.b.WriteString("<tr>")
		for _, c := range r {
			d.raw("<td>" + c + "</td>")
		}
		d.b.WriteString("</tr>\n")
	}
	d.b.WriteString("</tbody></table></div>\n")
}
