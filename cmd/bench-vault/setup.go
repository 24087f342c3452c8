package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/fakebi"
	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/vaulttest"
)

// The fake's one application. Its secret protects nothing.
const (
	tenantID      = "tenant-bench"
	realmID       = "realm-bench"
	applicationID = "app-bench"
	clientID      = "client-bench"
	clientSecret  = "bench-secret-not-a-secret"
	mount         = "beyondidentity"
	role          = "bench"
)

// The attributed workload's role, and the userpass user whose login reads
// it: a root token has no entity, and such a role refuses it.
const (
	attributedRole = "bench-attributed"
	// claimsTemplate is the README's example without its team and groups,
	// which a user without metadata and in no group has no value for.
	claimsTemplate = `{"vault_entity": {{identity.entity.id}}, "vault_user": {{identity.entity.name}}}`
	userpassUser   = "bench"
	// Its password protects nothing beyond this run's throwaway Vault.
	userpassPassword = "bench-password-not-a-secret"
)

// setup is one Vault configuration to measure.
type setup struct {
	name    string
	storage vaulttest.Storage
	latency time.Duration
	readers int
	// credsOnly measures creds alone: the slow-upstream setup, whose
	// question is the plugin's throughput and tail under latency.
	credsOnly bool
	// attributed adds creds of a role with a claims_template, read with a
	// login's token, and creds of the plain role read with the same token:
	// the dev setup, whose in-memory ratio of the two is what attribution
	// costs with no upstream, storage or policy check to hide it.
	attributed bool
	// container runs the plugin twice in one Vault, as a process and as a
	// containerized plugin under gVisor: see measureContainer.
	container bool
}

// measurement is what one setup gave.
type measurement struct {
	setup
	results []result
	// rssPeak is the plugin's peak RSS during the creds load, in bytes.
	rssPeak int64
	// journal is what the plugin's metrics say of its journal writes, for
	// the tokens of every creds workload the setup has.
	journal journalStats
}

func (m measurement) result(name string) (result, bool) {
	for _, r := range m.results {
		if r.name == name {
			return r, true
		}
	}
	return result{}, false
}

// measure starts the setup's Vault and fake, drives each workload for d in
// all, in rounds, after a warm-up, and stops them again.
func (s setup) measure(ctx context.Context, r *runner, opts vaulttest.Options, warmup, d time.Duration, rounds int) measurement {
	dir, err := os.MkdirTemp("", "bench-vault-")
	if err != nil {
		r.Fatalf("%v", err)
	}
	r.Cleanup(func() { os.RemoveAll(dir) })
	if s.container {
		return s.measureContainer(ctx, r, opts, warmup, d, rounds)
	}
	fake := s.newFake()
	upstream := httptest.NewServer(fake)
	r.Cleanup(upstream.Close)

	opts.Storage = s.storage
	vault := vaulttest.Start(r, dir, opts)
	vault.RegisterAndMount(mount)
	client := loadClient(r, vault, s.readers)
	write(r, client, mount+"/config", map[string]any{"tenant_id": tenantID, "realm_id": realmID,
		"application_id": applicationID, "client_id": clientID, "client_secret": clientSecret, "auth_url": upstream.URL})
	// A 1h credential: the leases of a run stay in Vault's memory, and the
	// fake's tokens in this process, well within bounds.
	write(r, client, mount+"/roles/"+role, map[string]any{"scopes": "identities:read", "ttl": "1h"})

	m := measurement{setup: s}
	workloads := s.workloads(client)
	if s.attributed {
		// Last, so that the other workloads keep their turns' order.
		workloads = append(workloads, s.attributedWorkloads(r, vault, client)...)
	}
	m.takeTurns(ctx, fake, workloads, vault.PluginPath(), warmup, d, rounds)
	if ctx.Err() != nil {
		return m
	}
	m.journal = readJournalStats(ctx, client)
	return m
}

// takeTurns drives the workloads, rounds times each, so that drift (Raft
// snapshots, the leases piling up, other work on the machine) falls on all
// of them alike instead of on whichever ran last. It samples the RSS of the
// plugin process running pluginPath under the creds workload.
func (m *measurement) takeTurns(ctx context.Context, fake *fakebi.Server, workloads []workload, pluginPath string, warmup, d time.Duration, rounds int) {
	for round := range rounds {
		for i, w := range workloads {
			if round == 0 {
				drive(ctx, w.name, m.readers, warmup, w.op)
				m.results = append(m.results, result{name: w.name})
			}
			fake.ResetCalls() // the fake records every call: keep its memory flat
			var rss *rssSampler
			if w.name == "creds" {
				rss = sampleRSS(pluginPath, 100*time.Millisecond)
			}
			m.results[i].add(drive(ctx, w.name, m.readers, d/time.Duration(rounds), w.op))
			if rss != nil {
				m.rssPeak = max(m.rssPeak, rss.Stop())
			}
			if ctx.Err() != nil {
				return
			}
		}
	}
}

// newFake is the fake Beyond Identity of a setup, answering after its
// latency.
func (s setup) newFake() *fakebi.Server {
	fake := fakebi.New()
	fake.AddApplication(fakebi.Application{TenantID: tenantID, RealmID: realmID, ID: applicationID,
		ClientID: clientID, ClientSecret: clientSecret, AllowedScopes: []string{"identities:read"}})
	if s.latency > 0 {
		// Every answer of Beyond Identity comes this late, as from a tenant
		// that far away.
		for _, op := range []fakebi.Op{fakebi.OpToken, fakebi.OpRevoke, fakebi.OpIntrospect} {
			fake.SetFault(op, fakebi.Fault{Delay: s.latency})
		}
	}
	return fake
}

// workload is one kind of request the load generator sends.
type workload struct {
	name string
	op   func(context.Context) error
}

// workloads are, side by side: the plugin's credential, which writes a
// lease and calls Beyond Identity; a child token, Vault's own lease with
// no plugin; and a role read, the plugin's round trip with no upstream.
// (The attributed setup adds its own, with what it needs: see
// attributedWorkload.)
func (s setup) workloads(client *api.Client) []workload {
	creds := workload{"creds", readCreds(client, role)}
	if s.credsOnly {
		return []workload{creds}
	}
	return []workload{
		creds,
		{"token-create", func(ctx context.Context) error {
			_, err := client.Auth().Token().CreateWithContext(ctx, &api.TokenCreateRequest{TTL: "1h", Policies: []string{"default"}})
			return err
		}},
		{"roles-read", readRoleAt(client, mount, role)},
	}
}

// readCreds reads a credential of a role and checks that it has a lease.
func readCreds(client *api.Client, name string) func(context.Context) error {
	return readCredsAt(client, mount, name)
}

// readCredsAt is readCreds on the mount at path.
func readCredsAt(client *api.Client, path, name string) func(context.Context) error {
	return func(ctx context.Context) error {
		secret, err := client.Logical().ReadWithContext(ctx, path+"/creds/"+name)
		if err == nil && (secret == nil || secret.LeaseID == "") {
			err = fmt.Errorf("%s/creds/%s returned no lease", path, name)
		}
		return err
	}
}

// readRoleAt reads a role of the mount at path: the plugin's round trip
// with no upstream call.
func readRoleAt(client *api.Client, path, name string) func(context.Context) error {
	return func(ctx context.Context) error {
		secret, err := client.Logical().ReadWithContext(ctx, path+"/roles/"+name)
		if err == nil && secret == nil {
			err = fmt.Errorf("%s/roles/%s is missing", path, name)
		}
		return err
	}
}

// attributedWorkloads writes a role whose claims_template names the
// reader's entity id and name, and returns creds reads made with the token
// of a userpass login: of the plain role ("creds-userpass"), then of the
// attributed one ("creds-attributed"). Each attributed credential costs
// the entity's look-up and the template's rendering on top of a plain one;
// both pay Vault's policy check of a token that is not root, so their
// ratio is what attribution alone costs.
func (s setup) attributedWorkloads(r *runner, vault *vaulttest.Server, client *api.Client) []workload {
	write(r, client, mount+"/roles/"+attributedRole, map[string]any{"scopes": "identities:read", "ttl": "1h",
		"claims_template": claimsTemplate})
	if err := client.Sys().EnableAuthWithOptions("userpass", &api.EnableAuthOptions{Type: "userpass"}); err != nil {
		r.Fatalf("enable userpass: %v", err)
	}
	// The login may read the two roles' credentials and nothing else, as a
	// reader in production would.
	policy := fmt.Sprintf("path %q {\n  capabilities = [\"read\"]\n}\npath %q {\n  capabilities = [\"read\"]\n}\n",
		mount+"/creds/"+role, mount+"/creds/"+attributedRole)
	if err := client.Sys().PutPolicy(attributedRole, policy); err != nil {
		r.Fatalf("write policy %s: %v", attributedRole, err)
	}
	write(r, client, "auth/userpass/users/"+userpassUser, map[string]any{"password": userpassPassword,
		"token_policies": attributedRole})
	reader := loadClient(r, vault, s.readers)
	// The login itself needs no token; the root one must not stand in.
	reader.ClearToken()
	login, err := reader.Logical().Write("auth/userpass/login/"+userpassUser, map[string]any{"password": userpassPassword})
	switch {
	case err != nil:
		r.Fatalf("userpass login: %v", err)
	case login == nil || login.Auth == nil || login.Auth.EntityID == "":
		r.Fatalf("userpass login gave no token with an entity")
	}
	reader.SetToken(login.Auth.ClientToken)
	return []workload{
		{"creds-userpass", readCreds(reader, role)},
		{"creds-attributed", readCreds(reader, attributedRole)},
	}
}

// loadClient is a root client whose connection pool fits the readers, so
// that every reader keeps its connection instead of opening one per request.
func loadClient(r *runner, vault *vaulttest.Server, readers int) *api.Client {
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.Proxy = nil // loopback only
	transport.MaxIdleConns, transport.MaxIdleConnsPerHost = 2*readers, 2*readers
	client, err := api.NewClient(&api.Config{Address: vault.URL(), Timeout: 30 * time.Second,
		HttpClient: &http.Client{Transport: transport}})
	if err != nil {
		r.Fatalf("%v", err)
	}
	client.SetToken(vault.RootToken)
	return client
}

func write(r *runner, client *api.Client, path string, data map[string]any) {
	if _, err := client.Logical().Write(path, data); err != nil {
		r.Fatalf("write %s: %v", path, err)
	}
}
