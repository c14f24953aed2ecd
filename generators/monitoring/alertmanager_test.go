package monitoring_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hacompile/hacompile/generators/artifact"
	"github.com/hacompile/hacompile/generators/monitoring"
	"github.com/hacompile/hacompile/internal/testtool"
)

// TestAmtoolAccepts runs Debian's amtool check-config over the
// alertmanager.yml of every stack, and checks what amtool cannot: the
// receiver is the one the stack names, credentials are file paths, and
// the Watchdog goes to the dead man's switch when there is one.
func TestAmtoolAccepts(t *testing.T) {
	bin := testtool.Require(t, "amtool", "prometheus-alertmanager")
	stacks := allStacks(t)
	stacks = append(stacks,
		load(t, "am-webhook", `
hosts: app1: {address: "10.0.0.11", roles: ["app"], cores: 1, memory_mb: 1024}
balancer: kind: "cloud"
monitoring: alertmanager: {receiver: "ops", kind: "webhook", url: "http://10.0.0.2:9095/alerts", credentials_file: "/etc/prometheus/ops-token",
	watchdog_url: "https://hc.example.com/ping/shop", watchdog_credentials_file: "/etc/prometheus/hc-token"}
`),
		load(t, "am-email", `
hosts: app1: {address: "10.0.0.11", roles: ["app"], cores: 1, memory_mb: 1024}
balancer: kind: "cloud"
monitoring: alertmanager: {receiver: "mail", kind: "email", to: "ops@example.com", from: "am@example.com", smarthost: "smtp.example.com:587", auth_username: "am"}
`))
	for _, s := range stacks {
		t.Run(s.Name, func(t *testing.T) {
			files, err := monitoring.Gen{}.Generate(s, artifact.Options{})
			if err != nil {
				t.Fatal(err)
			}
			var am []byte
			for _, f := range files {
				if f.Path == monitoring.AlertmanagerPath {
					am = f.Content
				}
			}
			if am == nil {
				t.Fatal("no alertmanager.yml")
			}
			dir := t.TempDir()
			path := filepath.Join(dir, "alertmanager.yml")
			if err := os.WriteFile(path, am, 0o644); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command(bin, "check-config", path).CombinedOutput()
			if err != nil || !strings.Contains(string(out), "SUCCESS") {
				t.Fatalf("amtool check-config: %v\n%s\n%s", err, out, am)
			}
			text := string(am)
			want := []string{`- name: "null"`, `alertname=\"HostDown\"`, `host=~\".+\"`}
			if a := s.Monitoring.Alertmanager; a != nil {
				want = append(want, `- name: "`+a.Receiver+`"`)
				switch a.Kind {
				case "webhook":
					want = append(want, `credentials_file: "`+a.CredentialsFile+`"`)
				case "email":
					want = append(want, `auth_password_file: "`+a.AuthPasswordFile+`"`)
				case "slack":
					want = append(want, `api_url_file: "`+a.APIURLFile+`"`)
				}
				if a.WatchdogURL != "" {
					want = append(want, `receiver: "watchdog"`, `credentials_file: "`+a.WatchdogCredentialsFile+`"`)
				}
			}
			for _, w := range want {
				if !strings.Contains(text, w) {
					t.Errorf("alertmanager.yml lacks %s:\n%s", w, text)
				}
			}
		})
	}
}

// TestWebhookURLFile: on Debian 13 a webhook and a dead man's switch
// named by url_file are written so (no URL in the file), and the files
// are among those the header says to provision; on Debian 12, whose
// Alertmanager 0.25 reads no url_file, and on Ubuntu 24.04, whose
// version is not recorded, it is an error at the field.
func TestWebhookURLFile(t *testing.T) {
	t.Parallel()
	src := `
hosts: app1: {address: "10.0.0.11", roles: ["app"], cores: 1, memory_mb: 1024}
balancer: kind: "cloud"
monitoring: alertmanager: {receiver: "oncall", kind: "webhook", url_file: "/etc/prometheus/oncall-url", watchdog_url_file: "/etc/prometheus/watchdog-url"}`
	s := load(t, "am-url-file", src)
	s.OS = "debian-13"
	files, err := monitoring.Gen{}.Generate(s, artifact.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var am string
	for _, f := range files {
		if f.Path == monitoring.AlertmanagerPath {
			am = string(f.Content)
		}
	}
	for _, want := range []string{
		"\n    webhook_configs:\n      - url_file: \"/etc/prometheus/oncall-url\"\n",
		"\n    webhook_configs:\n      - url_file: \"/etc/prometheus/watchdog-url\"\n",
		"install -D -m 0640 -o root -g prometheus /dev/stdin /etc/prometheus/oncall-url",
		"install -D -m 0640 -o root -g prometheus /dev/stdin /etc/prometheus/watchdog-url",
	} {
		if !strings.Contains(am, want) {
			t.Errorf("alertmanager.yml lacks %q:\n%s", want, am)
		}
	}
	if strings.Contains(am, "- url:") {
		t.Errorf("alertmanager.yml names a URL:\n%s", am)
	}
	s.OS = "debian-12"
	_, err = monitoring.Gen{}.Generate(s, artifact.Options{})
	if fe, ok := artifact.AsFieldError(err); !ok || fe.Path != "monitoring.alertmanager.url_file" || !strings.Contains(err.Error(), "Alertmanager 0.25.0 on Debian 12") {
		t.Errorf("url_file on debian-12: want an error at monitoring.alertmanager.url_file naming Alertmanager 0.25.0, got %v", err)
	}
	// Where the release's Alertmanager is not recorded, it is not
	// taken to read url_file.
	s.OS = "ubuntu-24.04"
	_, err = monitoring.Gen{}.Generate(s, artifact.Options{})
	if fe, ok := artifact.AsFieldError(err); !ok || fe.Path != "monitoring.alertmanager.url_file" || !strings.Contains(err.Error(), "version on Ubuntu 24.04 LTS (noble) is not recorded") {
		t.Errorf("url_file on ubuntu-24.04: want an error at monitoring.alertmanager.url_file saying the version is not recorded, got %v", err)
	}
}
