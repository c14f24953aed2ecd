package schema_test

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/hacompile/hacompile/schema"
)

// TestJSONSchemaBounds: the JSON Schema for editors carries the stack
// schema's integer bounds, a negative one too (a sysctl number is a
// signed or unsigned 64-bit value).
func TestJSONSchemaBounds(t *testing.T) {
	b, err := schema.JSONSchema()
	if err != nil {
		t.Fatal(err)
	}
	var js map[string]any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&js); err != nil {
		t.Fatal(err)
	}
	at := func(v any, keys ...string) any {
		for _, k := range keys {
			m, ok := v.(map[string]any)
			if !ok {
				return nil
			}
			v = m[k]
		}
		return v
	}
	if got := at(js, "$defs", "Host", "properties", "memory_mb", "maximum"); got != json.Number("67108864") {
		t.Errorf("hosts.<name>.memory_mb maximum %v, want 67108864", got)
	}
	alts, _ := at(js, "$defs", "Tuning", "properties", "sysctl", "additionalProperties", "anyOf").([]any)
	found := false
	for _, alt := range alts {
		if at(alt, "type") != "integer" {
			continue
		}
		found = true
		if at(alt, "minimum") != json.Number("-9223372036854775808") || at(alt, "maximum") != json.Number("18446744073709551615") {
			t.Errorf("a sysctl number is %v to %v, want -9223372036854775808 to 18446744073709551615", at(alt, "minimum"), at(alt, "maximum"))
		}
	}
	if !found {
		t.Errorf("no integer alternative for a sysctl value: %v", alts)
	}
}
