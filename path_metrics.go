package beyondidentity

import (
	"context"
	"net/http"
	"strings"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
	"github.com/prometheus/common/expfmt"

	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/biclient"
)

// pathMetrics serves the mount's counters to a Vault token allowed to read
// <mount>/metrics; like every path but none, it needs one. As Vault's own
// sys/metrics, it answers JSON by default, which `vault read` shows, and
// the Prometheus text exposition with format=prometheus, which a
// Prometheus scrape asks for.
func (b *backend) pathMetrics() *framework.Path {
	return &framework.Path{
		Pattern:      metricsPath,
		DisplayAttrs: &framework.DisplayAttributes{OperationPrefix: "beyond-identity", OperationSuffix: "metrics"},
		Fields: map[string]*framework.FieldSchema{
			"format": {
				Type:          framework.TypeString,
				Description:   "prometheus for the Prometheus text exposition format; empty or json for JSON. Default: json.",
				AllowedValues: []any{"", "json", "prometheus"},
				Query:         true,
			},
		},
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.ReadOperation: &framework.PathOperation{
				Callback: b.pathMetricsRead,
				Summary:  "The mount's counters, as JSON or (format=prometheus) in the Prometheus text format.",
			},
		},
		HelpSynopsis:    metricsHelpSynopsis,
		HelpDescription: metricsHelpDescription,
	}
}

func (b *backend) pathMetricsRead(_ context.Context, _ *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	switch format := d.Get("format").(string); format {
	case "prometheus":
		body, err := b.metrics.exposition()
		if err != nil {
			return nil, err
		}
		return &logical.Response{Data: map[string]any{
			logical.HTTPContentType: string(expfmt.NewFormat(expfmt.TypeTextPlain)),
			logical.HTTPRawBody:     body,
			logical.HTTPStatusCode:  http.StatusOK,
		}}, nil
	case "", "json":
		series, err := b.metrics.series()
		if err != nil {
			return nil, err
		}
		return &logical.Response{Data: series}, nil
	default:
		return logical.ErrorResponse("'format' must be json or prometheus, got %q", biclient.CleanText(format, 32)), nil
	}
}

const metricsHelpSynopsis = "The mount's counters, as JSON or in the Prometheus text format."

var metricsHelpDescription = strings.TrimSpace(`
Reading metrics returns this mount's counters to a Vault token allowed to
read the path (never without one), as Vault's own sys/metrics does: JSON by
default, one entry per series, which "vault read" shows; the Prometheus text
exposition format with format=prometheus, which is what a Prometheus scrape
asks for. Each node reports its own process's counters: credentials issued
by role, issue failures by status, revocations by outcome, pending
revocations, static rotations by role and outcome, calls to Beyond Identity
by call and status, their latency, retries and 429s, the call slots the
adaptive bound allows, and the storage writes of the journal of new tokens
with the tokens they carried. No label holds a secret, a token, a token id
or an entity.

  vault read beyondidentity/metrics
  curl -H "X-Vault-Token: $VAULT_TOKEN" "$VAULT_ADDR/v1/beyondidentity/metrics?format=prometheus"
`)
