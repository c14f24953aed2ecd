package monitoring

import (
	"strings"

	"github.com/hacompile/hacompile/generators/artifact"
	"github.com/hacompile/hacompile/schema"
)

// AlertmanagerPath is Alertmanager's configuration, on the monitoring
// host beside prometheus.yml (Debian: /etc/prometheus/alertmanager.yml).
const AlertmanagerPath = "monitoring/alertmanager.yml"

// nullReceiver takes what nobody is to be told about.
const nullReceiver = "null"

// watchdogReceiver is the dead man's switch.
const watchdogReceiver = "watchdog"

// hostAlerts are the alerts about one host that its HostDown explains:
// they are held back while it is down (HostDown itself stays).
func hostAlerts(gs []group) []string {
	var names []string
	seen := map[string]bool{"HostDown": true, "Watchdog": true}
	for _, g := range gs {
		for _, r := range g.rules {
			if !seen[r.name] {
				seen[r.name] = true
				names = append(names, r.name)
			}
		}
	}
	return names
}

// renderAlertmanager writes alertmanager.yml: critical alerts go out at
// once and repeat hourly, warnings are grouped and repeat twice a day,
// the Watchdog goes to the dead man's switch, a host that is down holds
// back the alerts about that host, and a critical alert holds back the
// warning of the same name on the same host.
func renderAlertmanager(s *schema.Stack, gs []group) ([]byte, error) {
	am := s.Monitoring.Alertmanager
	w := &yamlWriter{}
	w.b.WriteString(artifact.Header("#", s))
	w.comment(0, "Alertmanager for the "+s.Name+" stack (Debian: prometheus-alertmanager, reading\n"+
		"/etc/prometheus/alertmanager.yml). Credentials are read from files on the monitoring\n"+
		"host, never written here. Check with: amtool check-config alertmanager.yml")
	receiver := nullReceiver
	if am != nil {
		receiver = am.Receiver
		if files := amSecretFiles(am); len(files) > 0 {
			var b strings.Builder
			b.WriteString("Provision its credentials on the monitoring host (paste the secret, then Ctrl-D):")
			for _, f := range files {
				b.WriteString("\n  install -D -m 0640 -o root -g prometheus /dev/stdin " + f)
			}
			w.comment(0, b.String())
		}
	} else {
		w.comment(0, "The stack names no receiver (monitoring.alertmanager): alerts are shown in\n"+
			"Alertmanager's web page but sent nowhere.")
	}
	w.raw(0, "route:")
	w.str(2, "receiver", receiver)
	w.list(2, "group_by", []string{"alertname", "host", "instance"})
	w.raw(2, "group_wait: 30s")
	w.raw(2, "group_interval: 5m")
	w.raw(2, "repeat_interval: 4h")
	w.raw(2, "routes:")
	w.list(4, "- matchers", []string{`alertname="Watchdog"`})
	if am != nil && (am.WatchdogURL != "" || am.WatchdogURLFile != "") {
		w.str(6, "receiver", watchdogReceiver)
		w.comment(6, "The dead man's switch pages when this stops arriving every minute.")
		w.raw(6, "group_wait: 0s")
		w.raw(6, "group_interval: 1m")
		w.raw(6, "repeat_interval: 1m")
	} else {
		w.comment(6, "No dead man's switch is configured (monitoring.alertmanager.watchdog_url).")
		w.str(6, "receiver", nullReceiver)
	}
	w.list(4, "- matchers", []string{`severity="critical"`})
	w.str(6, "receiver", receiver)
	w.raw(6, "group_wait: 10s")
	w.raw(6, "repeat_interval: 1h")
	w.list(4, "- matchers", []string{`severity="warning"`})
	w.str(6, "receiver", receiver)
	w.raw(6, "repeat_interval: 12h")
	w.raw(0, "")
	w.raw(0, "inhibit_rules:")
	w.comment(2, "A host that is down explains every other alert about it. host=~\".+\" keeps\n"+
		"alerts without a host label (a managed database, a probed Redis) out: Alertmanager\n"+
		"takes a label missing on both sides as equal.")
	w.list(2, "- source_matchers", []string{`alertname="HostDown"`})
	w.list(4, "target_matchers", []string{`alertname=~"` + strings.Join(hostAlerts(gs), "|") + `"`, `host=~".+"`})
	w.list(4, "equal", []string{"host"})
	w.comment(2, "The critical alert of a pair (BackendDown over UnhealthyBackends) is enough.")
	w.list(2, "- source_matchers", []string{`severity="critical"`})
	w.list(4, "target_matchers", []string{`severity="warning"`})
	w.list(4, "equal", []string{"host", "instance"})
	w.raw(0, "")
	w.raw(0, "receivers:")
	w.str(2, "- name", nullReceiver)
	if am != nil {
		w.str(2, "- name", am.Receiver)
		switch am.Kind {
		case "webhook":
			w.raw(4, "webhook_configs:")
			webhookURL(w, am.URL, am.URLFile)
			w.raw(8, "send_resolved: true")
			credentials(w, 8, am.CredentialsFile)
		case "slack":
			w.raw(4, "slack_configs:")
			w.str(6, "- api_url_file", am.APIURLFile)
			w.str(8, "channel", am.Channel)
			w.raw(8, "send_resolved: true")
			w.str(8, "title", `{{ .Status | toUpper }}: {{ .CommonLabels.alertname }} ({{ .CommonLabels.severity }})`)
			w.str(8, "text", `{{ range .Alerts }}{{ .Annotations.summary }} {{ .Annotations.runbook_url }}
{{ end }}`)
		case "email":
			w.raw(4, "email_configs:")
			w.str(6, "- to", am.To)
			w.str(8, "from", am.From)
			w.str(8, "smarthost", am.Smarthost)
			if am.AuthUsername != "" {
				w.str(8, "auth_username", am.AuthUsername)
				w.str(8, "auth_password_file", am.AuthPasswordFile)
			}
			w.raw(8, "require_tls: true")
			w.raw(8, "send_resolved: true")
		}
		if am.WatchdogURL != "" || am.WatchdogURLFile != "" {
			w.str(2, "- name", watchdogReceiver)
			w.raw(4, "webhook_configs:")
			webhookURL(w, am.WatchdogURL, am.WatchdogURLFile)
			credentials(w, 8, am.WatchdogCredentialsFile)
		}
	}
	return w.done()
}

// webhookURL starts a webhook_configs entry with its endpoint: the URL,
// or the file on the monitoring host that holds it.
func webhookURL(w *yamlWriter, url, file string) {
	if file != "" {
		w.str(6, "- url_file", file)
		return
	}
	w.str(6, "- url", url)
}

func credentials(w *yamlWriter, indent int, file string) {
	if file == "" {
		return
	}
	w.raw(indent, "http_config:")
	w.raw(indent+2, "authorization:")
	w.raw(indent+4, "type: Bearer")
	w.str(indent+4, "credentials_file", file)
}

// amSecretFiles are the credential files the receivers read.
func amSecretFiles(am *schema.Alertmanager) []string {
	var files []string
	for _, f := range []string{am.URLFile, am.CredentialsFile, am.APIURLFile, am.WatchdogURLFile, am.WatchdogCredentialsFile} {
		if f != "" {
			files = append(files, f)
		}
	}
	if am.Kind == "email" && am.AuthUsername != "" {
		files = append(files, am.AuthPasswordFile)
	}
	return files
}
