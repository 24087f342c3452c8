package beyondidentity

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/hashicorp/vault/sdk/logical"
)

func TestFactoryReportsVersionAndSealWraps(t *testing.T) {
	t.Parallel()
	e := newTestBackend(t)
	if got := e.b.PluginVersion().Version; got != Version || got == "" {
		t.Fatalf("PluginVersion = %q, want %q", got, Version)
	}
	if e.b.Type() != logical.TypeLogical {
		t.Fatalf("backend type = %v", e.b.Type())
	}
	wrapped := strings.Join(e.b.SpecialPaths().SealWrapStorage, ",")
	if wrapped != "config,roles/,static-roles/,retained/,revocations/,journal/,salt" {
		t.Fatalf("SealWrapStorage = %q: every path holding a secret or a token must be seal-wrapped", wrapped)
	}
	if local := strings.Join(e.b.SpecialPaths().LocalStorage, ","); local != "journal/,revocations/" {
		t.Fatalf("LocalStorage = %q: the journal and failed revocations must stay in the cluster that minted the token", local)
	}
}

func TestInvalidateDropsCachedClient(t *testing.T) {
	t.Parallel()
	e := newTestBackend(t)
	e.configure()
	first, err := e.b.client(context.Background(), e.storage)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := e.b.client(context.Background(), e.storage)
	if first != again {
		t.Fatal("the client is not cached")
	}
	e.b.invalidate(context.Background(), "roles/x")
	if kept, _ := e.b.client(context.Background(), e.storage); kept != first {
		t.Fatal("invalidating another key dropped the client")
	}
	e.b.invalidate(context.Background(), configPath)
	if rebuilt, _ := e.b.client(context.Background(), e.storage); rebuilt == first {
		t.Fatal("invalidating config kept the old client")
	}
}

func TestClientCacheUnderConcurrency(t *testing.T) {
	t.Parallel()
	e := newTestBackend(t)
	e.configure()
	var wg sync.WaitGroup
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			if i%10 == 0 {
				e.b.reset()
			}
			if _, err := e.b.client(context.Background(), e.storage); err != nil {
				t.Error(err)
			}
		}(i)
	}
	wg.Wait()
}

func TestEveryPathAndFieldHasHelp(t *testing.T) {
	t.Parallel()
	e := newTestBackend(t)
	for _, p := range e.b.Paths {
		if strings.TrimSpace(p.HelpSynopsis) == "" || strings.TrimSpace(p.HelpDescription) == "" {
			t.Errorf("path %q lacks help", p.Pattern)
		}
		for name, field := range p.Fields {
			if strings.TrimSpace(field.Description) == "" {
				t.Errorf("field %q of path %q has no description", name, p.Pattern)
			}
		}
		for op, handler := range p.Operations {
			if handler.Properties().Summary == "" {
				t.Errorf("operation %s of path %q has no summary", op, p.Pattern)
			}
		}
	}
	for _, s := range e.b.Secrets {
		for name, field := range s.Fields {
			if strings.TrimSpace(field.Description) == "" {
				t.Errorf("field %q of secret %q has no description", name, s.Type)
			}
		}
	}
	for _, path := range []string{"config", "config/retained/", "config/retained/x", "roles/", "roles/x", "creds/x",
		"static-roles/", "static-roles/x", "static-creds/x", "rotate-role/x"} {
		resp, err := e.request(logical.HelpOperation, path, nil)
		if err != nil || resp == nil || !strings.Contains(resp.Data["help"].(string), "## DESCRIPTION") {
			t.Errorf("path-help of %s: %s %v", path, errorText(resp), err)
		}
	}
}
