package beyondidentity

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/jsonstore"
	"github.com/hashicorp/vault/sdk/logical"
)

// defaultMountPath stands in for the mount path in messages when a request
// does not carry one (in-process tests).
const defaultMountPath = "beyondidentity/"

// mountPath is the request's mount path with its trailing slash, for
// commands quoted in warnings.
func mountPath(req *logical.Request) string {
	if req == nil || req.MountPoint == "" {
		return defaultMountPath
	}
	return strings.TrimSuffix(req.MountPoint, "/") + "/"
}

// humanDuration writes a duration the way an operator types it: whole hours
// as "2160h", otherwise whole seconds as "90s".
func humanDuration(d time.Duration) string {
	if d > 0 && d%time.Hour == 0 {
		return fmt.Sprintf("%dh", d/time.Hour)
	}
	return seconds(d)
}

// bothUnits writes a duration an operator may have typed in either unit,
// in both: "48h (172800s)", "90m (5400s)"; under a minute, or not whole
// minutes, in seconds alone. The framework hands the plugin seconds, so the
// unit the operator wrote is unknown; showing both lets them recognise it.
func bothUnits(d time.Duration) string {
	if d < time.Minute || d%time.Minute != 0 {
		return seconds(d)
	}
	short := strings.TrimSuffix(d.String(), "0s") // "48h0m", "1h30m", "5m"
	if strings.HasSuffix(short, "h0m") {
		short = strings.TrimSuffix(short, "0m")
	}
	return fmt.Sprintf("%s (%s)", short, seconds(d))
}

// seconds writes a duration in whole seconds, as Vault reads ttl fields.
func seconds(d time.Duration) string {
	return fmt.Sprintf("%ds", int64(d/time.Second))
}

// ceilSeconds rounds a duration up to whole seconds, as Vault counts
// leases: a lease that ends within the second after its token does no
// harm, while one shortened by rounding would surprise every reader.
func ceilSeconds(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return (d + time.Second - 1).Truncate(time.Second)
}

// getJSON decodes the JSON entry at key into v, and reports whether there
// was one. what names the entry in errors.
func getJSON(ctx context.Context, s logical.Storage, key, what string, v any) (bool, error) {
	return jsonstore.Get(ctx, s, key, what, v)
}

// putJSON stores v as JSON at key. what names the entry in errors.
func putJSON(ctx context.Context, s logical.Storage, key, what string, v any) error {
	return jsonstore.Put(ctx, s, key, what, v)
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// rfc3339 writes a time as RFC 3339 in UTC, as the plugin reports times.
func rfc3339(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// backoff is the wait after the attempt-th failure in a row (the first is
// 1): base, doubling with each failure up to ceiling.
func backoff(base, ceiling time.Duration, attempt int) time.Duration {
	return min(base<<min(max(attempt-1, 0), 8), ceiling)
}
