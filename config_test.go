package beyondidentity

// The config's regions, wherever they are named.

import (
	"context"
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
