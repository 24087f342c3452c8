//go:build e2e

package e2e

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// TestMetricsThroughTheHTTPAPI issues and revokes a credential, then scrapes
// the mount's metrics as Prometheus would (format=prometheus), with a Vault
// token; without one, Vault refuses. vault read shows them too, as JSON.
func TestMetricsThroughTheHTTPAPI(t *testing.T) {
	e := newEnv(t)
	e.write("beyondidentity/roles/r", map[string]any{"scopes": "identities:read", "ttl": "1h"})
	creds := e.issue("r")
	e.vault.MustCLI("lease", "revoke", "-sync", creds.LeaseID)

	e.vault.MustCLI("policy", "write", "metrics", writeTemp(t, `path "beyondidentity/metrics" { capabilities = ["read"] }`))
	scraper := strings.TrimSpace(e.vault.MustCLI("token", "create", "-policy=metrics", "-field=token"))
	status, contentType, body := scrapeMetrics(t, e.vault.URL(), scraper)
	if status != http.StatusOK || !strings.HasPrefix(contentType, "text/plain; version=0.0.4") {
		t.Fatalf("scrape answered %d %s", status, contentType)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("the exposition does not parse: %v", err)
	}
	for family, want := range map[string]string{
		"beyondidentity_tokens_issued_total": `role="r"`,
		"beyondidentity_revocations_total":   `outcome="revoked"`,
	} {
		if families[family] == nil || !strings.Contains(body, family+"{"+want+"} 1\n") {
			t.Errorf("the scrape lacks %s{%s} 1:\n%s", family, want, body)
		}
	}
	if strings.Contains(body, accessToken(creds)) {
		t.Fatal("the metrics show the token")
	}

	if status, _, _ := scrapeMetrics(t, e.vault.URL(), ""); status != http.StatusForbidden {
		t.Fatalf("a scrape without a Vault token answered %d, want 403", status)
	}

	// The obvious command works: the CLI prints the counters.
	out, err := e.vault.CLIAs(scraper, "read", "beyondidentity/metrics")
	if err != nil || !strings.Contains(out, `beyondidentity_tokens_issued_total{role="r"}`) ||
		!strings.Contains(out, `beyondidentity_revocations_total{outcome="revoked"}`) {
		t.Fatalf("vault read beyondidentity/metrics: %v\n%s", err, redactSecrets(out))
	}

	// A deleted config makes every read fail, and the failure counter says
	// why, once per refused read.
	e.vault.MustCLI("delete", "beyondidentity/config")
	for range 2 {
		if out, err := e.vault.CLI("read", "beyondidentity/creds/r"); err == nil {
			t.Fatalf("creds/r was read without a config:\n%s", redactSecrets(out))
		}
	}
	_, _, body = scrapeMetrics(t, e.vault.URL(), scraper)
	if want := `beyondidentity_issue_failures_total{cause="not_configured",path="creds",status="400"} 2` + "\n"; !strings.Contains(body, want) {
		t.Errorf("after two reads of an unconfigured mount, the scrape lacks %s:\n%s", want, body)
	}
}

// scrapeMetrics GETs the metrics path with token (none when empty).
func scrapeMetrics(t *testing.T, vaultURL, token string) (int, string, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, vaultURL+"/v1/beyondidentity/metrics?format=prometheus", nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("X-Vault-Token", token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Content-Type"), string(body)
}

// TestReadmePolicyLimitsNarrowing applies the documented allowed_parameters
// policy as written and checks what it allows, with the options as a write's
// body and as a read's query parameters alike.
func TestReadmePolicyLimitsNarrowing(t *testing.T) {
	e := newEnv(t)
	e.write("beyondidentity/roles/scim-sync", map[string]any{"scopes": "scim:users:read,groups:read", "ttl": "4h"})
	policies := docSection(t, "## Who may narrow a credential", "hcl")
	policy := policies[0]
	e.vault.MustCLI("policy", "write", "narrow", writeTemp(t, policy))
	reader := strings.TrimSpace(e.vault.MustCLI("token", "create", "-policy=narrow", "-field=token"))
	for _, tc := range []struct {
		args []string
		ok   bool
	}{
		{[]string{"read", "beyondidentity/creds/scim-sync"}, true},
		{[]string{"write", "beyondidentity/creds/scim-sync", "ttl=1h"}, true},
		{[]string{"write", "beyondidentity/creds/scim-sync", "scopes=scim:users:read"}, true},
		{[]string{"write", "beyondidentity/creds/scim-sync", "ttl=2h"}, false},
		{[]string{"write", "beyondidentity/creds/scim-sync", "scopes=groups:read"}, false},
		{[]string{"read", "beyondidentity/creds/scim-sync", "ttl=1h"}, true},
		{[]string{"read", "beyondidentity/creds/scim-sync", "scopes=scim:users:read"}, true},
		{[]string{"read", "beyondidentity/creds/scim-sync", "ttl=2h"}, false},
		{[]string{"read", "beyondidentity/creds/scim-sync", "scopes=groups:read"}, false},
	} {
		out, err := e.vault.CLIAs(reader, tc.args...)
		if (err == nil) != tc.ok {
			t.Errorf("vault %s: allowed %v, want %v (%v)", strings.Join(tc.args, " "), err == nil, tc.ok, err)
		}
		// What is allowed narrows: the lease is as asked.
		if err == nil && len(tc.args) == 3 && strings.HasPrefix(tc.args[2], "ttl=") && !strings.Contains(out, "1h") {
			t.Errorf("vault %s did not narrow the lease:\n%s", strings.Join(tc.args, " "), redactSecrets(out))
		}
	}

	// The second policy allows the role's settings only.
	if len(policies) < 2 {
		t.Fatalf("the docs show %d policies under \"Who may narrow a credential\", want the narrowing one and the strict one", len(policies))
	}
	strict := policies[1]
	if !strings.Contains(strict, "denied_parameters") {
		t.Fatalf("the docs' second policy is not the one that denies the options:\n%s", strict)
	}
	e.vault.MustCLI("policy", "write", "strict", writeTemp(t, strict))
	plain := strings.TrimSpace(e.vault.MustCLI("token", "create", "-policy=strict", "-field=token"))
	for _, tc := range []struct {
		args []string
		ok   bool
	}{
		{[]string{"read", "beyondidentity/creds/scim-sync"}, true},
		{[]string{"read", "beyondidentity/creds/scim-sync", "ttl=1h"}, false},
		{[]string{"read", "beyondidentity/creds/scim-sync", "scopes=scim:users:read"}, false},
		{[]string{"write", "beyondidentity/creds/scim-sync", "ttl=1h"}, false},
	} {
		if _, err := e.vault.CLIAs(plain, tc.args...); (err == nil) != tc.ok {
			t.Errorf("with the strict policy, vault %s: allowed %v, want %v (%v)", strings.Join(tc.args, " "), err == nil, tc.ok, err)
		}
	}
}

// TestScrapeWithABearerToken scrapes as the documented Prometheus config does:
// format=prometheus, with the Vault token as a Bearer token.
func TestScrapeWithABearerToken(t *testing.T) {
	e := newEnv(t)
	config := docSection(t, "# Metrics and events", "yaml")[0]
	if !strings.Contains(config, "format: ['prometheus']") {
		t.Fatalf("the documented scrape config does not ask for format=prometheus:\n%s", config)
	}
	req, err := http.NewRequest(http.MethodGet, e.vault.URL()+"/v1/beyondidentity/metrics?format=prometheus", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+e.vault.RootToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("a scrape with a Bearer token answered %d", resp.StatusCode)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	if _, err := parser.TextToMetricFamilies(strings.NewReader(string(body))); err != nil {
		t.Fatalf("Prometheus's parser cannot read the scrape: %v", err)
	}
}
