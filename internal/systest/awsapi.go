//go:build unix

package systest

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"

	"github.com/hacompile/hacompile/generators/instance"
)

// awsAPIPort is where the stand-in AWS API listens on an instance's own
// loopback.
const awsAPIPort = "8978"

// awsStandIn gives an instance of an Auto Scaling group the AWS API its
// setup unit calls at boot: Systems Manager's GetParameter answers each
// parameter scaling.secrets names with the run's throwaway secret (an
// environment file's parameter with every variable the host's files
// reference). The instance reaches it through the endpoint its
// environment file may name, with throwaway credentials there instead
// of an instance profile.
func (e *env) awsStandIn(m *Machine, host string) error {
	sc := e.s.Scaling
	if sc == nil || len(sc.Secrets) == 0 || !slices.Contains(e.instances, host) {
		return nil
	}
	values := map[string]string{}
	for file, param := range sc.Secrets {
		if file == e.s.App.EnvironmentFile {
			values[param] = e.envFileBody(host)
		} else {
			values[param] = e.secret()
		}
	}
	l, err := listenIn(m.NS, "127.0.0.1:"+awsAPIPort)
	if err != nil {
		return fmt.Errorf("%s: the stand-in AWS API: %w", host, err)
	}
	e.mu.Lock()
	e.closers = append(e.closers, func() { l.Close() })
	e.mu.Unlock()
	go http.Serve(l, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct{ Name string }
		json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&req)
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		v, ok := values[req.Name]
		signed := strings.HasPrefix(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256 Credential=AKIDSTANDIN/")
		if r.Header.Get("X-Amz-Target") != "AmazonSSM.GetParameter" || !ok || !signed {
			w.WriteHeader(400)
			io.WriteString(w, `{"__type":"ParameterNotFound"}`)
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"Parameter": map[string]any{"Name": req.Name, "Type": "SecureString", "Value": v, "Version": 1}})
	}))
	env := fmt.Sprintf("# hacompile test: the stand-in AWS API on this instance's loopback, and throwaway\n# credentials instead of the instance profile.\nAWS_SSM_ENDPOINT=http://%s\nAWS_ACCESS_KEY_ID=AKIDSTANDIN\nAWS_SECRET_ACCESS_KEY=%s\n",
		net.JoinHostPort("127.0.0.1", awsAPIPort), e.secret())
	if err := m.Write(strings.TrimPrefix(instance.EnvFile, "/"), []byte(env), 0o600); err != nil {
		return err
	}
	e.deviate(fmt.Sprintf("the instances' secrets come from a stand-in Systems Manager API on their loopback (%s names it, with throwaway credentials instead of the instance profile); it answers the parameters scaling.secrets names: %s",
		instance.EnvFile, strings.Join(slices.Sorted(mapKeys(values)), ", ")))
	return nil
}
