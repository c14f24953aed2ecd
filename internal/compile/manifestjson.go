package compile

import (
	"strconv"

	"github.com/hacompile/hacompile/internal/outdir"
)

// appendManifestJSON appends m as json.MarshalIndent(m, "", "  ") writes
// it, byte for byte (TestManifestJSONIsMarshalIndent): the reflection
// of encoding/json over a 10,000-host fleet's 160,000 entries cost most
// of a second of every build.
func appendManifestJSON(b []byte, m *Manifest) []byte {
	return appendManifestWith(b, m, func(b []byte) []byte { return outdir.AppendJSONArray(b, m.Files, 1, appendEntryJSON) })
}

// appendManifestWith is appendManifestJSON with the files array appended
// by files (ManifestJSON makes the entries one at a time).
func appendManifestWith(b []byte, m *Manifest, files func([]byte) []byte) []byte {
	b = append(b, "{\n  \"stack\": "...)
	b = outdir.AppendJSONString(b, m.Stack)
	b = append(b, ",\n  \"source\": "...)
	b = outdir.AppendJSONString(b, m.Source)
	b = append(b, ",\n  \"source_sha256\": "...)
	b = outdir.AppendJSONString(b, m.SourceSHA256)
	b = append(b, ",\n  \"hosts\": "...)
	b = outdir.AppendJSONStrings(b, m.Hosts, 1)
	b = append(b, ",\n  \"files\": "...)
	b = files(b)
	return append(b, "\n}"...)
}

// appendEntryJSON appends one entry of the manifest's files, indented
// as an element of them.
func appendEntryJSON(b []byte, e *ManifestEntry) []byte {
	b = append(b, '{')
	if e.Host != "" { // omitempty
		b = append(b, "\n      \"host\": "...)
		b = outdir.AppendJSONString(b, e.Host)
		b = append(b, ',')
	}
	b = append(b, "\n      \"path\": "...)
	b = outdir.AppendJSONString(b, e.Path)
	b = append(b, ",\n      \"kind\": "...)
	b = outdir.AppendJSONString(b, e.Kind)
	b = append(b, ",\n      \"sha256\": "...)
	b = outdir.AppendJSONString(b, e.SHA256)
	b = append(b, ",\n      \"size\": "...)
	b = strconv.AppendInt(b, int64(e.Size), 10)
	b = append(b, ",\n      \"mode\": "...)
	b = outdir.AppendJSONString(b, e.Mode)
	b = append(b, ",\n      \"owner\": "...)
	b = outdir.AppendJSONString(b, e.Owner)
	// omitzero: an action without steps (Action.IsZero) is left out;
	// one with steps is its shell text (Action.MarshalJSON).
	if !e.Validate.IsZero() {
		b = append(b, ",\n      \"validate\": "...)
		b = outdir.AppendJSONString(b, e.Validate.String())
	}
	if !e.Reload.IsZero() {
		b = append(b, ",\n      \"reload\": "...)
		b = outdir.AppendJSONString(b, e.Reload.String())
	}
	return append(b, "\n    }"...)
}
