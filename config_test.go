package beyondidentity

// The config's regions, wherever they are named.

import (
	"context"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/biclient"
)

func TestRegionsInTheOpenAPIEnum(t *testing.T) {
	t.Parallel()
	e := newTestBackend(t)
	resp, err := e.b.HandleRequest(context.Background(), &logical.Request{Operation: logical.HelpOperation, Path: "", Storage: e.storage})
	if err != nil {
		t.Fatal(err)
	}
	doc := resp.Data["openapi"].(*framework.OASDocument)
	write := doc.Paths["/config"].Post
	if write == nil {
		t.Fatal("the OpenAPI document has no write of /config")
	}
	var enum []string
	for _, media := range write.RequestBody.Content {
		name := strings.TrimPrefix(media.Schema.Ref, "#/components/schemas/")
		for _, value := range doc.Components.Schemas[name].Properties["region"].Enum {
			enum = append(enum, value.(string))
		}
	}
	if !slices.Equal(enum, biclient.Regions()) {
		t.Fatalf("OpenAPI enum of region %q, want %q", enum, biclient.Regions())
	}
}

func TestRegionsInValidationAndHelp(t *testing.T) {
	t.Parallel()
	e := newTestBackend(t)
	for _, region := range biclient.Regions() {
		e.mustOK(logical.CreateOperation, "config", e.configData(map[string]any{"auth_url": nil, "region": region, "verify_connection": false}))
		read := e.mustOK(logical.ReadOperation, "config", nil)
		host, _ := biclient.AuthURLForRegion(region)
		if !strings.HasPrefix(read.Data["token_url"].(string), host+"/v1/tenants/tenant-1/realms/realm-1/applications/app-1/token") {
			t.Errorf("region %s: token_url %v", region, read.Data["token_url"])
		}
		if !strings.Contains(configFields()["region"].Description, region) {
			t.Errorf("the help of region does not name %s", region)
		}
	}
	resp, _ := e.request(logical.UpdateOperation, "config", map[string]any{"region": "mars", "client_secret": testClientSecret})
	if resp == nil || !resp.IsError() || !strings.Contains(resp.Error().Error(), strings.Join(biclient.Regions(), ", ")) {
		t.Fatalf("an unknown region: %s", errorText(resp))
	}
}

func TestRegionsInTheReadme(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	section := string(readme)[strings.Index(string(readme), "\n### Regions\n"):]
	row := regexp.MustCompile("(?m)^\\| `([a-z-]+)` \\| `(https://[^`]+)` \\|$")
	var listed []string
	for _, match := range row.FindAllStringSubmatch(section, -1) {
		listed = append(listed, match[1])
		if host, err := biclient.AuthURLForRegion(match[1]); err != nil || host != match[2] {
			t.Errorf("the README gives %s for region %s; the plugin uses %q (%v)", match[2], match[1], host, err)
		}
	}
	if !slices.Equal(listed, biclient.Regions()) {
		t.Fatalf("the README's region table lists %q, want %q", listed, biclient.Regions())
	}
}

// A first config write names every missing required field at once.
func TestAConfigWriteNamesEveryMissingField(t *testing.T) {
	t.Parallel()
	e := newTestBackend(t)
	status, message := statusOf(e.request(logical.CreateOperation, "config", map[string]any{"tenant_id": "t", "verify_connection": false}))
	if status != http.StatusBadRequest || !strings.Contains(message, "'realm_id', 'application_id', 'client_id' and 'client_secret' are required") {
		t.Fatalf("%d %q", status, message)
	}
	status, message = statusOf(e.request(logical.CreateOperation, "config", e.configData(map[string]any{"client_id": ""})))
	if status != http.StatusBadRequest || !strings.Contains(message, "'client_id'") {
		t.Fatalf("%d %q", status, message)
	}
}

// A secret piped with echo ends in a newline: the answer says so, shows
// printf, and quotes no part of the secret.
func TestASecretEndingInANewlineIsToldToUsePrintf(t *testing.T) {
	t.Parallel()
	e := newTestBackend(t)
	for _, ending := range []string{"\n", "\r\n"} {
		status, message := statusOf(e.request(logical.CreateOperation, "config", e.configData(map[string]any{"client_secret": testClientSecret + ending})))
		if status != http.StatusBadRequest || !strings.Contains(message, "'client_secret' ends in a newline") ||
			!strings.Contains(message, `printf '%s' "$CLIENT_SECRET" | vault write beyondidentity/config client_secret=-`) {
			t.Fatalf("%d %q", status, message)
		}
		assertNoSecretIn(t, e, message)
	}
	if calls := e.fake.Calls(); len(calls) != 0 {
		t.Fatalf("a refused write called Beyond Identity: %v", opsOf(calls))
	}
}

// Reading config shows region only when it decides the host: auth_url
// overrides it.
func TestConfigReadShowsRegionOnlyWhenItApplies(t *testing.T) {
	t.Parallel()
	e := newTestBackend(t)
	e.mustOK(logical.CreateOperation, "config", e.configData(map[string]any{"auth_url": "", "region": "eu", "verify_connection": false}))
	if region := e.mustOK(logical.ReadOperation, "config", nil).Data["region"]; region != "eu" {
		t.Fatalf("region = %#v without auth_url, want eu", region)
	}
	e.mustOK(logical.UpdateOperation, "config", map[string]any{"auth_url": e.server.URL, "client_secret": testClientSecret})
	if region, shown := e.mustOK(logical.ReadOperation, "config", nil).Data["region"]; shown {
		t.Fatalf("region = %#v while auth_url overrides it", region)
	}
}
