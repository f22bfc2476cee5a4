package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/heliosdb/auth/core"
	"github.com/heliosdb/auth/core/tlsfile"
)

// guideLine is one line of heliosd's start-up connection guide: the label
// and the ready-to-paste command.
var guideLine = regexp.MustCompile(`(?m)^  (PostgreSQL|MySQL|MongoDB|Redis|REST|helios CLI|Node\.js) +(.+)$`)

// connectGuide waits for the guide heliosd prints once every listener is up
// and returns its commands by label.
func connectGuide(t *testing.T, d *daemon) map[string]string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(d.Logs(), "Connect (") {
		if time.Now().After(deadline) {
			t.Fatalf("heliosd printed no connection guide:\n%s", d.Logs())
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond) // the rest of the block
	lines := map[string]string{}
	for _, m := range guideLine.FindAllStringSubmatch(d.Logs(), -1) {
		lines[m[1]] = m[2]
	}
	return lines
}

// clientShell runs a command line in bash the way a user pastes it: with
// HELIOS_TOKEN set, the project's mongosh and the built helios on PATH, a
// fresh HOME, and stdin. It returns the combined output and whether the
// command exited 0.
func clientShell(t *testing.T, dir, line, token, stdin string) (string, bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-eo", "pipefail", "-c", line)
	cmd.Dir = dir
	home := t.TempDir()
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "HELIOS_") && !strings.HasPrefix(kv, "HOME=") && !strings.HasPrefix(kv, "PATH=") &&
			!strings.HasPrefix(kv, "XDG_CONFIG_HOME=") && !strings.HasPrefix(kv, "NODE_EXTRA_CA_CERTS=") && !strings.HasPrefix(kv, "SSL_CERT") {
			env = append(env, kv)
		}
	}
	path := filepath.Dir(mongosh(t)) + ":" + filepath.Dir(buildBinary(t, "helios")) + ":" + os.Getenv("PATH")
	env = append(env, "HOME="+home, "XDG_CONFIG_HOME="+filepath.Join(home, ".config"), "PATH="+path, "MONGOSH_NO_TELEMETRY=1")
	if token != "" {
		env = append(env, "HELIOS_TOKEN="+token)
	}
	cmd.Env = env
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	return string(out), err == nil
}

// guideChecks completes each guide line into a command that does one thing
// and names what its output must hold. httpsURL is the REST listener's
// https:// base, for the Node.js line.
func guideChecks(label, line, httpsURL string) (command, want string) {
	switch label {
	case "PostgreSQL":
		return line + ` -Atc 'SELECT 1'`, "1"
	case "MySQL":
		return line + ` -N -e 'SELECT 1'`, "1"
	case "MongoDB":
		return line + ` --quiet --norc --eval 'db.runCommand({ping:1}).ok'`, "1"
	case "Redis":
		return line + " PING", "PONG"
	case "REST":
		return line, `"rows":[[1]]`
	case "helios CLI":
		return line + " && helios auth status", "Token"
	case "Node.js":
		env, _, _ := strings.Cut(line, "node app.js")
		return env + `node -e 'require("https").get(process.argv[1], r => { console.log("status " + r.statusCode); process.exit(r.statusCode === 200 ? 0 : 1) }).on("error", e => { console.log(e.code); process.exit(2) })' ` +
			httpsURL + "/healthz", "status 200"
	}
	return "", ""
}

// TestConnectGuideLinesWork: every line heliosd prints on start connects
// with its real client, TLS verified with the CA file it names (issue 11:
// "a ready-to-paste, working connection line for each protocol"); and with
// another CA in its place every one of them fails, so none of them works
// by skipping verification.
func TestConnectGuideLinesWork(t *testing.T) {
	d := startDaemon(t)
	guide := connectGuide(t, d)
	if !strings.Contains(d.Logs(), "TLS: clients verify heliosd with the CA certificate "+d.CACert+" (self-signed).") {
		t.Errorf("the guide does not name the CA file %s:\n%s", d.CACert, d.Logs())
	}
	for _, label := range []string{"PostgreSQL", "MySQL", "MongoDB", "Redis", "REST", "helios CLI", "Node.js"} {
		if guide[label] == "" {
			t.Fatalf("no %s line in the guide:\n%s", label, d.Logs())
		}
		if !strings.Contains(guide[label], d.CACert) {
			t.Errorf("the %s line does not name the CA file: %s", label, guide[label])
		}
	}
	token := d.Mint(t, core.Claims{Account: 1, Scopes: core.AllScopes})
	httpsURL := "https://" + d.HTTP
	// Another self-signed CA, as a second heliosd would generate.
	otherDir := t.TempDir()
	if _, _, _, err := tlsfile.LoadOrGenerate(otherDir, "", "", nil); err != nil {
		t.Fatal(err)
	}
	foreignCA := filepath.Join(otherDir, tlsfile.CertFile)

	for label, line := range guide {
		command, want := guideChecks(label, line, httpsURL)
		out, ok := clientShell(t, t.TempDir(), command, token, "")
		if !ok || !strings.Contains(out, want) || (want == "1" && strings.TrimSpace(out) != "1") {
			t.Errorf("%s: %s\nexit ok=%v, want %q in:\n%s", label, command, ok, want, out)
		}
		if strings.Contains(out, token) {
			t.Errorf("%s printed the token", label)
		}
		untrusted := strings.ReplaceAll(command, d.CACert, foreignCA)
		if out, ok := clientShell(t, t.TempDir(), untrusted, token, ""); ok {
			t.Errorf("%s connected while trusting another CA (verification is off?): %s\n%s", label, untrusted, out)
		}
	}
}

// TestMongoAdviceURIWorks: the URI the SCRAM refusal gives (the guide's
// MongoDB URIs carry no authMechanism) is the one that works, pasted as it
// is with the token put in: PLAIN without TLS for a loopback client without
// TLS, PLAIN + TLS + tlsCAFile for a TLS client, and for a client whose
// address may not send tokens in cleartext.
func TestMongoAdviceURIWorks(t *testing.T) {
	advice := regexp.MustCompile(`mongodb://default:\$HELIOS_TOKEN@[^ "']+`)
	follow := func(t *testing.T, d *daemon, tok, guideURI, wantTLS string) {
		t.Helper()
		out, ok := clientShell(t, t.TempDir(), `mongosh --quiet --norc "`+guideURI+`" --eval 'db.runCommand({ping:1}).ok'`, "", "")
		if ok {
			t.Fatalf("the guide's URI %s authenticated:\n%s", guideURI, out)
		}
		uri := advice.FindString(out)
		if uri == "" || !strings.Contains(uri, "authMechanism=PLAIN") || strings.Contains(uri, "tls=true") != (wantTLS != "") ||
			(wantTLS != "" && !strings.Contains(uri, "tlsCAFile="+d.CACert)) {
			t.Fatalf("advice for %s: %q in\n%s", guideURI, uri, out)
		}
		out, ok = clientShell(t, t.TempDir(), `mongosh --quiet --norc "`+uri+`" --eval 'db.runCommand({ping:1}).ok'`, tok, "")
		if !ok || strings.TrimSpace(out) != "1" {
			t.Fatalf("the advised URI %s does not work:\n%s", uri, out)
		}
	}
	t.Run("loopback", func(t *testing.T) {
		d := startDaemon(t)
		tok := d.Mint(t, core.Claims{Account: 1, Scopes: core.AllScopes})
		follow(t, d, tok, "mongodb://default:"+tok+"@"+d.Mongo+"/main", "")
		follow(t, d, tok, "mongodb://default:"+tok+"@"+d.Mongo+"/main?tls=true&tlsCAFile="+d.CACert, "tls")
	})
	t.Run("cleartext not allowed", func(t *testing.T) {
		d := startDaemon(t, withArgs("--plaintext-allow", "10.255.255.0/24"))
		tok := d.Mint(t, core.Claims{Account: 1, Scopes: core.AllScopes})
		// The token never leaves the client here: the refusal comes first.
		follow(t, d, tok, "mongodb://default:"+tok+"@"+d.Mongo+"/main", "tls")
	})
}

// TestREADMEQuickStart runs the README's quick start as written, with TLS
// verification on for every client, against a daemon laid out as `make run`
// leaves it (bin/helios, data/tls-cert.pem in the working folder). The only
// change is the ports: the defaults may be taken on a test machine, so each
// default port is replaced by the test daemon's.
func TestREADMEQuickStart(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join(repoRoot(), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(readme), "In a second terminal")
	if !ok {
		t.Fatal("README.md has no second-terminal quick start")
	}
	_, rest, _ = strings.Cut(rest, "```sh\n")
	block, _, ok := strings.Cut(rest, "```")
	if !ok || strings.Count(block, "\n") < 5 {
		t.Fatalf("quick start block not found: %q", block)
	}
	// Verification on for every client: each names the CA file, none opts out.
	for _, line := range strings.Split(block, "\n") {
		for _, client := range []string{"psql ", "mariadb ", "mongosh ", "redis-cli ", "curl "} {
			if strings.HasPrefix(line, client) && !strings.Contains(line, "$HELIOS_CA_CERT") {
				t.Errorf("README: %sdoes not verify heliosd's certificate: %s", client, line)
			}
		}
	}
	for _, optOut := range []string{"http://", "sslmode=require", "tlsAllowInvalid", "tlsInsecure", " -k ", "--insecure", "--ssl-verify-server-cert=0"} {
		if strings.Contains(block, optOut) {
			t.Errorf("README quick start skips TLS verification (%s)", optOut)
		}
	}
	d := startDaemon(t)
	ports := map[string]string{"8080": d.HTTP, "5432": d.PG, "3306": d.MySQL, "27017": d.Mongo, "6379": d.Redis}
	script := regexp.MustCompile(`\b(8080|5432|3306|27017|6379)\b`).ReplaceAllStringFunc(block, func(p string) string {
		a := ports[p]
		return a[strings.LastIndexByte(a, ':')+1:]
	})
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(buildBinary(t, "helios"), filepath.Join(dir, "bin", "helios")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(d.DataDir, filepath.Join(dir, "data")); err != nil {
		t.Fatal(err)
	}
	email := "readme-" + time.Now().Format("150405.000000") + "@example.com"
	const pw = "correct-horse-battery-staple"
	out, ok := clientShell(t, dir, script, "", email+"\n"+pw+"\n"+email+"\n"+pw+"\n")
	if !ok {
		t.Fatalf("the quick start failed:\n%s\n%s", script, out)
	}
	for _, want := range []string{"Account created for " + email, "Logged in as " + email, "(1 row)", "ok: 1", "PONG", `"rows":[[1]]`} {
		if !strings.Contains(out, want) {
			t.Errorf("quick start output lacks %q:\n%s", want, out)
		}
	}
	if n := strings.Count(out, "\n1\n"); n < 1 { // mariadb's table
		t.Errorf("mariadb printed no 1:\n%s", out)
	}
}
