package schema

import (
	"bytes"
	"encoding/json"
	"testing"
)

// TestDecodeDiag: a value the schema admits but the Go field cannot
// hold is reported at its field path and position, with what the field
// takes, not as encoding/json's message about Go struct fields and
// types (which also leaves out map keys such as the host's name).
func TestDecodeDiag(t *testing.T) {
	pos := map[string]Position{
		"hosts.app1":                 {Line: 3, Column: 2},
		"hosts.app1.memory_mb":       {Line: 4, Column: 14},
		"tuning":                     {File: "lib/tuning.libsonnet", Line: 7, Column: 1},
		"waive":                      {Line: 9, Column: 1},
		`tuning.sysctl."fs.nr_open"`: {Line: 8, Column: 3},
	}
	for _, c := range []struct{ data, want string }{
		{`{"name":"a","hosts":{"app0":{"cores":1},"app1":{"roles":["app"],"memory_mb":9223372036854775808}}}`,
			"stack.cue:4:14: hosts.app1.memory_mb: invalid value 9223372036854775808 (want an integer from -9223372036854775808 to 9223372036854775807)"},
		{`{"hosts":{"app1":{"cores":1e3}}}`,
			"stack.cue:3:2: hosts.app1.cores: invalid value 1e3 (want an integer from -9223372036854775808 to 9223372036854775807)"},
		{`{"waive":[{"rule":"a"},{"rule":5}]}`,
			"stack.cue:9:1: waive[1].rule: invalid value 5 (want a string)"},
		{`{"tuning":{"nofile":[1]}}`,
			"lib/tuning.libsonnet:7:1: tuning.nofile: invalid value […] (want an integer from -9223372036854775808 to 9223372036854775807)"},
		{`{"tuning":{"sysctl":{"fs.nr_open":true, "net.core.somaxconn":{"a":1}}, "nginx_worker_connections":"many"}}`,
			`stack.cue: reading the validated stack: want a string or a number, got true`},
		{`{"tuning":{"sysctl":{"fs.nr_open":1},  "nginx_worker_connections" : "many"}}`,
			`lib/tuning.libsonnet:7:1: tuning.nginx_worker_connections: invalid value "many" (want an integer from -9223372036854775808 to 9223372036854775807)`},
		{`{"apps":{"web":{"name":"web","static":{"url":"/"}}}}`,
			`stack.cue: apps.web.static: invalid value {…} (want a list)`},
	} {
		var s Stack
		err := json.NewDecoder(bytes.NewReader([]byte(c.data))).Decode(&s)
		if err == nil {
			t.Fatalf("%s decoded", c.data)
		}
		if got := decodeDiag(err, []byte(c.data), "stack.cue", pos).String(); got != c.want {
			t.Errorf("%s:\n got %s\nwant %s", c.data, got, c.want)
		}
	}
}
