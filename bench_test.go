package beyondidentity

import (
	"context"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/biclient"
)

// BenchmarkCredentialOverhead measures what the plugin adds to the one
// upstream call a credential costs: it times, in the same run, a bare
// client-credentials mint against the fake and a full creds read (mint,
// journal entry, lease) followed by its revocation against a bare mint
// plus revoke, and reports their ratios. Wall-clock numbers are noisy here;
// the ratios, measured side by side, are what to compare across changes:
//
//	go test -run '^$' -bench CredentialOverhead -benchtime 200x .
func BenchmarkCredentialOverhead(b *testing.B) {
	e := newTestBackend(b)
	e.configure()
	e.writeRole("sync", map[string]any{"scopes": "identities:read", "ttl": "1h"})
	client, err := e.b.client(context.Background(), e.storage)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	mint := biclient.MintRequest{Scopes: []string{"identities:read"}, Lifetime: time.Hour}

	var bare, bareWithRevoke, plugin, pluginWithRevoke time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		token, err := client.MintToken(ctx, mint)
		if err != nil {
			b.Fatal(err)
		}
		bare += time.Since(start)
		if err := client.Revoke(ctx, token.AccessToken); err != nil {
			b.Fatal(err)
		}
		bareWithRevoke += time.Since(start)

		start = time.Now()
		resp, err := e.b.HandleRequest(ctx, &logical.Request{Operation: logical.ReadOperation, Path: "creds/sync", Storage: e.storage})
		if err != nil || resp.IsError() {
			b.Fatalf("creds: %v", err)
		}
		plugin += time.Since(start)
		if _, err := e.b.HandleRequest(ctx, &logical.Request{Operation: logical.RevokeOperation, Secret: resp.Secret, Storage: e.storage}); err != nil {
			b.Fatal(err)
		}
		pluginWithRevoke += time.Since(start)
	}
	b.StopTimer()
	b.ReportMetric(float64(plugin)/float64(bare), "creds/bare-mint")
	b.ReportMetric(float64(pluginWithRevoke)/float64(bareWithRevoke), "lifecycle/bare-mint+revoke")
	b.ReportMetric(float64(plugin.Microseconds())/float64(b.N), "µs/creds")
}

// BenchmarkAttributionOverhead measures what attribution adds to a
// credential: it times, in the same run and taking turns, creds reads of a
// plain role and of a role with a claims_template, both by the same entity,
// and reports their ratio and the difference per credential. The template
// is make bench-vault's, and the entity's answer is reused as in
// production (identity.go). Profile the difference with
//
//	go test -run '^$' -bench AttributionOverhead -benchtime 2000x -cpuprofile /tmp/cpu.pprof .
func BenchmarkAttributionOverhead(b *testing.B) {
	e := newTestBackend(b)
	e.sys.EntityVal = &logical.Entity{ID: "entity-bench", Name: "bench"}
	e.configure()
	e.writeRole("plain", map[string]any{"scopes": "identities:read", "ttl": "1h"})
	e.writeRole("attributed", map[string]any{"scopes": "identities:read", "ttl": "1h",
		"claims_template": `{"vault_entity": {{identity.entity.id}}, "vault_user": {{identity.entity.name}}}`})
	ctx := context.Background()
	read := func(role string) time.Duration {
		start := time.Now()
		resp, err := e.b.HandleRequest(ctx, &logical.Request{Operation: logical.ReadOperation, Path: "creds/" + role,
			Storage: e.storage, MountPoint: "beyondidentity/", EntityID: "entity-bench"})
		took := time.Since(start)
		if err != nil || resp.IsError() {
			b.Fatalf("creds/%s: %v", role, err)
		}
		// Revoked untimed, so that the fake's tokens do not pile up.
		if _, err := e.b.HandleRequest(ctx, &logical.Request{Operation: logical.RevokeOperation, Secret: resp.Secret, Storage: e.storage}); err != nil {
			b.Fatal(err)
		}
		return took
	}

	var plain, attributed time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		plain += read("plain")
		attributed += read("attributed")
	}
	b.StopTimer()
	b.ReportMetric(float64(plain)/float64(attributed), "plain/attributed")
	b.ReportMetric(float64((attributed-plain).Microseconds())/float64(b.N), "µs-attribution/creds")
}
