package site

import (
	"html/template"
	"regexp"
	"strings"

	"github.com/hacompile/hacompile/schema"
)

// The field reference: every field of #Stack with its type, default and
// doc comment, from the schema hacompile embeds.

// ReferencePage is the reference's path in the site.
const ReferencePage = "reference.html"

type refRow struct {
	ID, Path, Presence, When, Doc string
	Type, Default                 template.HTML
}

type refSection struct {
	ID, Name string
	Rows     []refRow
}

type refDef struct {
	ID, Name, Doc string
	Type          template.HTML
}

type refData struct {
	Sections []refSection
	Types    []refDef
	Count    int
}

// defRef matches a reference to a schema definition in a type.
var defRef = regexp.MustCompile(`#[A-Z][A-Za-z0-9]*`)

// refType escapes a type or default and links the definitions it names
// that the page lists.
func refType(s string, listed map[string]bool) template.HTML {
	esc := template.HTMLEscapeString(s)
	return template.HTML(defRef.ReplaceAllStringFunc(esc, func(m string) string {
		if !listed[m] {
			return m
		}
		return `<a href="#t-` + strings.ToLower(m[1:]) + `">` + m + `</a>`
	}))
}

// fieldID is a field's anchor: "f-" and its path, with what an id
// should not hold replaced.
func fieldID(p string) string {
	return "f-" + strings.NewReplacer(`"`, "", "<", "", ">", "", "[]", "-", " ", "-").Replace(p)
}

func (g *gen) reference() error {
	fields, defs, err := schema.SchemaFields()
	if err != nil {
		return err
	}
	listed := map[string]bool{}
	var d refData
	for _, def := range defs {
		if def.Struct {
			continue // its fields are listed where they are used
		}
		listed[def.Name] = true
	}
	for _, def := range defs {
		if listed[def.Name] {
			d.Types = append(d.Types, refDef{ID: "t-" + strings.ToLower(def.Name[1:]), Name: def.Name, Doc: def.Doc, Type: refType(def.Type, listed)})
		}
	}
	for _, sec := range schema.FieldSections(fields) {
		d.Sections = append(d.Sections, refSection{ID: "s-" + sec.Name, Name: sec.Name})
		for _, f := range sec.Fields {
			row := refRow{ID: fieldID(f.Path), Path: f.Path, When: f.When, Doc: f.Doc, Type: refType(f.Type, listed)}
			switch {
			case f.Required:
				row.Presence = "required"
			case f.Optional:
				row.Presence = "optional"
			}
			var defaults []string
			if f.Default != "" {
				defaults = append(defaults, string(refType(f.Default, listed)))
			}
			for _, cd := range f.Defaults {
				defaults = append(defaults, string(refType(cd.Value, listed))+" when <code>"+template.HTMLEscapeString(cd.When)+"</code>")
			}
			row.Default = template.HTML(strings.Join(defaults, "; "))
			last := &d.Sections[len(d.Sections)-1]
			last.Rows = append(last.Rows, row)
			d.Count++
			g.addSearch(searchEntry{Kind: "field", Title: f.Path, Text: f.Doc, URL: ReferencePage + "#" + row.ID})
		}
	}
	return g.write(page{Path: ReferencePage, Title: "Stack file reference", Crumbs: []link{{"Runbook", "index.html"}}, Footer: footer(nil, ReferencePage)}, "reference", d)
}
