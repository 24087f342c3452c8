package beyondidentity

// The mount's counters.

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/hashicorp/vault/sdk/logical"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/fakebi"
)

// scrape reads <mount>/metrics as Vault would serve it and parses the body
// with Prometheus's own parser.
func (e *testEnv) scrape() map[string]*dto.MetricFamily {
	e.t.Helper()
	resp := e.mustOK(logical.ReadOperation, "metrics", map[string]any{"format": "prometheus"})
	if resp.Data[logical.HTTPContentType] != "text/plain; version=0.0.4; charset=utf-8" || resp.Data[logical.HTTPStatusCode] != 200 {
		e.t.Fatalf("metrics answered %v %v", resp.Data[logical.HTTPContentType], resp.Data[logical.HTTPStatusCode])
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(bytes.NewReader(resp.Data[logical.HTTPRawBody].([]byte)))
	if err != nil {
		e.t.Fatalf("the exposition does not parse: %v", err)
	}
	return families
}

// value is the value of the series of family whose labels include want.
func value(families map[string]*dto.MetricFamily, family string, want map[string]string) float64 {
	f := families[family]
	if f == nil {
		return 0
	}
series:
	for _, m := range f.GetMetric() {
		for _, pair := range m.GetLabel() {
			if v, ok := want[pair.GetName()]; ok && v != pair.GetValue() {
				continue series
			}
		}
		switch {
		case m.GetCounter() != nil:
			return m.GetCounter().GetValue()
		case m.GetGauge() != nil:
			return m.GetGauge().GetValue()
		case m.GetHistogram() != nil:
			return float64(m.GetHistogram().GetSampleCount())
		}
	}
	return 0
}

func TestMetricsCountTheLifeCycle(t *testing.T) {
	t.Parallel()
	e := newSyncRoleBackend(t)
	resp := e.issue("sync", nil)
	if _, err := e.revoke(resp.Secret); err != nil {
		t.Fatal(err)
	}
	e.fake.SetFault(fakebi.OpToken, fakebi.Fault{Status: 429, Body: `{}`, Times: 1})
	e.issue("sync", nil)
	e.fake.SetFault(fakebi.OpToken, fakebi.Fault{Status: 400, Body: `{"error":"invalid_scope"}`})
	_, _ = e.request(logical.ReadOperation, "creds/sync", nil)

	families := e.scrape()
	for _, check := range []struct {
		family string
		labels map[string]string
		want   float64
	}{
		{"beyondidentity_tokens_issued_total", map[string]string{"role": "sync"}, 2},
		{"beyondidentity_issue_failures_total", map[string]string{"path": "creds", "cause": "upstream", "status": "400"}, 1},
		{"beyondidentity_revocations_total", map[string]string{"outcome": "revoked"}, 1},
		{"beyondidentity_upstream_calls_total", map[string]string{"call": "token", "status": "200"}, 3}, // with the config's check
		{"beyondidentity_upstream_calls_total", map[string]string{"call": "token", "status": "429"}, 1},
		{"beyondidentity_upstream_throttled_total", map[string]string{"call": "token"}, 1},
		{"beyondidentity_upstream_retries_total", map[string]string{"call": "token"}, 1},
		{"beyondidentity_upstream_latency_seconds", map[string]string{"call": "revoke"}, 2},
		{"beyondidentity_revocations_pending", nil, 0},
	} {
		if got := value(families, check.family, check.labels); got != check.want {
			t.Errorf("%s%v = %v, want %v", check.family, check.labels, got, check.want)
		}
	}
	body := fmt.Sprint(families)
	for _, token := range e.fake.Tokens() {
		if strings.Contains(body, token.Value) || strings.Contains(body, token.ID) {
			t.Fatalf("the metrics show token %s", token.ID)
		}
	}
}

func TestMetricsCountPendingRevocationsAndRotations(t *testing.T) {
	t.Parallel()
	e, _, fake := failRevocationsNow(t)
	if got := value(e.scrape(), "beyondidentity_revocations_pending", nil); got != 1 {
		t.Fatalf("pending revocations %v, want 1", got)
	}
	e.fake.ClearFaults()
	e.advance(fake, revocationRetryMax)
	e.mustOK(logical.CreateOperation, "static-roles/s", map[string]any{"scopes": "identities:read", "rotation_period": "1h"})
	families := e.scrape()
	if got := value(families, "beyondidentity_revocations_pending", nil); got != 0 {
		t.Fatalf("pending revocations %v after the background revocation, want 0", got)
	}
	if got := value(families, "beyondidentity_static_rotations_total", map[string]string{"role": "s", "outcome": "rotated"}); got != 1 {
		t.Fatalf("static rotations %v", got)
	}
	if got := value(families, "beyondidentity_revocations_total", map[string]string{"outcome": "retrying"}); got != 1 {
		t.Fatalf("retrying revocations %v", got)
	}
}

// failureCount sums beyondidentity_issue_failures_total over the series
// whose labels include want (nil: every series).
func failureCount(families map[string]*dto.MetricFamily, want map[string]string) float64 {
	total := 0.0
	f := families["beyondidentity_issue_failures_total"]
	if f == nil {
		return 0
	}
series:
	for _, m := range f.GetMetric() {
		for _, pair := range m.GetLabel() {
			if v, ok := want[pair.GetName()]; ok && v != pair.GetValue() {
				continue series
			}
		}
		total += m.GetCounter().GetValue()
	}
	return total
}

// TestDeletedConfigMovesTheFailureCounter: once config is deleted every
// credential request fails, and each failure is counted, once.
func TestDeletedConfigMovesTheFailureCounter(t *testing.T) {
	t.Parallel()
	e := newSyncRoleBackend(t)
	e.mustOK(logical.DeleteOperation, "config", nil)
	for _, check := range []struct {
		op    logical.Operation
		path  string
		label map[string]string
	}{
		{logical.ReadOperation, "creds/sync", map[string]string{"path": "creds", "cause": "not_configured", "status": "400"}},
		{logical.UpdateOperation, "creds/sync", map[string]string{"path": "creds", "cause": "not_configured", "status": "400"}},
		{logical.ReadOperation, "static-creds/sync", map[string]string{"path": "static-creds", "cause": "bad_request", "status": "400"}},
		{logical.UpdateOperation, "rotate-role/sync", map[string]string{"path": "rotate-role", "cause": "bad_request", "status": "400"}},
	} {
		before := e.scrape()
		if status, _ := statusOf(e.request(check.op, check.path, nil)); status != 400 {
			t.Fatalf("%s %s answered %d once config is deleted", check.op, check.path, status)
		}
		after := e.scrape()
		if moved := failureCount(after, nil) - failureCount(before, nil); moved != 1 {
			t.Errorf("%s %s moved the failure counter by %v, want 1", check.op, check.path, moved)
		}
		if moved := failureCount(after, check.label) - failureCount(before, check.label); moved != 1 {
			t.Errorf("%s %s: beyondidentity_issue_failures_total%v moved by %v, want 1", check.op, check.path, check.label, moved)
		}
	}
}

// TestIssueFailuresCountEachRefusalByCause: every refused credential
// request, before or after minting, counts once, in its cause class.
func TestIssueFailuresCountEachRefusalByCause(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		fault      *fakebi.Fault
		staticRole bool
		op         logical.Operation
		path       string
		data       map[string]any
		want       map[string]string
	}{
		"unknown role":            {op: logical.ReadOperation, path: "creds/nope", want: map[string]string{"cause": "bad_request", "status": "400"}},
		"scope outside the role":  {op: logical.UpdateOperation, path: "creds/sync", data: map[string]any{"scopes": "groups:read"}, want: map[string]string{"cause": "bad_request", "status": "400"}},
		"ttl above max_ttl":       {op: logical.UpdateOperation, path: "creds/sync", data: map[string]any{"ttl": "2h"}, want: map[string]string{"cause": "bad_request", "status": "400"}},
		"a parameter not taken":   {op: logical.UpdateOperation, path: "creds/sync", data: map[string]any{"tll": "1h"}, want: map[string]string{"cause": "bad_request", "status": "400"}},
		"an invalid role name":    {op: logical.ReadOperation, path: "creds/bad name", want: map[string]string{"cause": "bad_request", "status": "400"}},
		"unknown static role":     {op: logical.ReadOperation, path: "static-creds/nope", want: map[string]string{"path": "static-creds", "cause": "bad_request", "status": "400"}},
		"rotate-role of a role":   {op: logical.UpdateOperation, path: "rotate-role/sync", want: map[string]string{"path": "rotate-role", "cause": "bad_request", "status": "400"}},
		"Beyond Identity refuses": {fault: &fakebi.Fault{Status: 401, Body: `{"error":"invalid_client"}`}, op: logical.ReadOperation, path: "creds/sync", want: map[string]string{"cause": "upstream", "status": "400"}},
		"Beyond Identity fails":   {fault: &fakebi.Fault{Status: 502, Body: `{}`}, op: logical.ReadOperation, path: "creds/sync", want: map[string]string{"cause": "upstream", "status": "502"}},
		"a rotation Beyond Identity fails": {fault: &fakebi.Fault{Status: 504, Body: `{}`}, staticRole: true, op: logical.UpdateOperation, path: "rotate-role/s",
			want: map[string]string{"path": "rotate-role", "cause": "upstream", "status": "502"}},
		"Beyond Identity throttles": {fault: &fakebi.Fault{Status: 429, Body: `{}`}, op: logical.ReadOperation, path: "creds/sync", want: map[string]string{"cause": "unavailable", "status": "503"}},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			e := newSyncRoleBackend(t)
			if tc.staticRole {
				e.mustOK(logical.CreateOperation, "static-roles/s", map[string]any{"scopes": "identities:read", "rotation_period": "1h"})
			}
			if tc.fault != nil {
				e.fake.SetFault(fakebi.OpToken, *tc.fault)
			}
			if status, _ := statusOf(e.request(tc.op, tc.path, tc.data)); status < 400 {
				t.Fatalf("%s %s answered %d", tc.op, tc.path, status)
			}
			families := e.scrape()
			if got := failureCount(families, nil); got != 1 {
				t.Errorf("the refusal counted %v times, want once", got)
			}
			if tc.want["path"] == "" {
				tc.want["path"] = "creds"
			}
			if got := failureCount(families, tc.want); got != 1 {
				t.Errorf("beyondidentity_issue_failures_total%v = %v, want 1", tc.want, got)
			}
		})
	}
}
