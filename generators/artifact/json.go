package artifact

import (
	"bytes"
	"encoding/json"
)

// JSON encodes v for a file: two-space indentation, a final newline, and
// "<", ">" and "&" left as they are (the files are read by tools, not
// embedded in HTML). Struct fields come out in declaration order, so the
// bytes depend on v alone.
func JSON(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
