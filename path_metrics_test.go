package beyondidentity

// The metrics path.

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/hashicorp/vault/sdk/logical"
)

// vault read <mount>/metrics shows the counters as JSON, one entry per
// series; format=prometheus gives the exposition (telemetry_test.go).
func TestMetricsAreJSONByDefault(t *testing.T) {
	t.Parallel()
	e := newSyncRoleBackend(t)
	e.issue("sync", nil)
	resp := e.mustOK(logical.ReadOperation, "metrics", nil)
	if got := resp.Data[`beyondidentity_tokens_issued_total{role="sync"}`]; got != float64(1) {
		t.Fatalf("tokens issued reads %v; data keys %v", got, keysOf(resp.Data))
	}
	if _, ok := resp.Data[`beyondidentity_upstream_latency_seconds_count{call="token"}`]; !ok {
		t.Fatal("the latency histogram has no count")
	}
	if resp.Data[logical.HTTPRawBody] != nil {
		t.Fatal("the JSON answer is a raw body")
	}
	status, message := statusOf(e.b.HandleRequest(context.Background(), &logical.Request{Operation: logical.ReadOperation,
		Path: "metrics", Data: map[string]any{"format": "yaml"}, Storage: e.storage}))
	if status != http.StatusBadRequest || !strings.Contains(message, "'format'") {
		t.Fatalf("format=yaml: %d %q", status, message)
	}
}
