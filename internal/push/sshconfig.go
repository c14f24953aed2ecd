package push

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
)

// SSHConfig is the subset of ssh_config(5) that push reads from
// --ssh-config: Host blocks with HostName, User, Port and IdentityFile.
// Anything else is an error rather than silently ignored, so nobody
// believes a ProxyJump or a StrictHostKeyChecking line took effect.
type SSHConfig struct {
	file   string
	blocks []sshBlock
}

type sshBlock struct {
	line     int
	patterns []string
	hostName string
	user     string
	port     int
	identity []string
}

// SSHSettings are the values a config gives one host; zero values mean
// "not set".
type SSHSettings struct {
	HostName      string
	User          string
	Port          int
	IdentityFiles []string
}

// SSHConfigKeywords are the keywords ParseSSHConfig accepts.
var SSHConfigKeywords = []string{"Host", "HostName", "User", "Port", "IdentityFile"}

// LoadSSHConfig reads and parses an ssh_config-style file.
func LoadSSHConfig(file string) (*SSHConfig, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("ssh config: %w", err)
	}
	return ParseSSHConfig(file, b)
}

// ParseSSHConfig parses data read from file (the name is only for
// messages). Lines before the first Host apply to every host, as in
// OpenSSH.
func ParseSSHConfig(file string, data []byte) (*SSHConfig, error) {
	c := &SSHConfig{file: file}
	cur := &sshBlock{patterns: []string{"*"}}
	c.blocks = append(c.blocks, *cur)
	cur = &c.blocks[0]
	sc := bufio.NewScanner(bytes.NewReader(data))
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		key, val, err := splitSSHLine(line)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %v", file, n, err)
		}
		bad := func(msg string, a ...any) error {
			return fmt.Errorf("%s:%d: %s: %s", file, n, key, fmt.Sprintf(msg, a...))
		}
		switch strings.ToLower(key) {
		case "host":
			pats := strings.Fields(val)
			if len(pats) == 0 {
				return nil, bad("want at least one pattern")
			}
			c.blocks = append(c.blocks, sshBlock{line: n, patterns: pats})
			cur = &c.blocks[len(c.blocks)-1]
		case "hostname":
			if cur.hostName == "" {
				cur.hostName = val
			}
		case "user":
			if cur.user == "" {
				cur.user = val
			}
		case "port":
			p, err := strconv.Atoi(val)
			if err != nil || p < 1 || p > 65535 {
				return nil, bad("want a port number 1-65535, got %q", val)
			}
			if cur.port == 0 {
				cur.port = p
			}
		case "identityfile":
			cur.identity = append(cur.identity, val)
		default:
			return nil, fmt.Errorf("%s:%d: %s is not supported (supported: %s)", file, n, key, strings.Join(SSHConfigKeywords, ", "))
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return c, nil
}

// splitSSHLine splits "Keyword value", "Keyword=value" or
// `Keyword "quoted value"`.
func splitSSHLine(line string) (key, val string, err error) {
	i := strings.IndexAny(line, " \t=")
	if i < 0 {
		return "", "", fmt.Errorf("%s: missing value", line)
	}
	key = line[:i]
	val = strings.TrimSpace(line[i:])
	val = strings.TrimSpace(strings.TrimPrefix(val, "="))
	if strings.HasPrefix(val, `"`) {
		if len(val) < 2 || !strings.HasSuffix(val, `"`) {
			return "", "", fmt.Errorf("%s: unterminated quote", key)
		}
		val = val[1 : len(val)-1]
	}
	if val == "" {
		return "", "", fmt.Errorf("%s: missing value", key)
	}
	return key, val, nil
}

// For returns the settings for a stack host, matching Host patterns
// against its name and its address. As in OpenSSH the first value found
// for a keyword wins; IdentityFile lines accumulate.
func (c *SSHConfig) For(name, address string) SSHSettings {
	var s SSHSettings
	if c == nil {
		return s
	}
	for _, b := range c.blocks {
		if !b.matches(name) && !b.matches(address) {
			continue
		}
		if s.HostName == "" {
			s.HostName = b.hostName
		}
		if s.User == "" {
			s.User = b.user
		}
		if s.Port == 0 {
			s.Port = b.port
		}
		for _, f := range b.identity {
			s.IdentityFiles = append(s.IdentityFiles, expandHome(f))
		}
	}
	return s
}

// matches applies OpenSSH pattern-list rules: any negated pattern that
// matches excludes the host; otherwise one positive match is needed.
func (b sshBlock) matches(host string) bool {
	ok := false
	for _, p := range b.patterns {
		neg := strings.HasPrefix(p, "!")
		p = strings.TrimPrefix(p, "!")
		// path.Match knows * and ? like ssh_config; hosts have no '/'.
		m, err := path.Match(p, host)
		if err != nil || !m {
			continue
		}
		if neg {
			return false
		}
		ok = true
	}
	return ok
}

func expandHome(p string) string {
	if p == "~" || strings.HasPrefix(p, "~/") {
		if home, err := os.UserHomeDir(); err == nil {
			return filepath.Join(home, p[1:])
		}
	}
	return p
}
