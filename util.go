package beyondidentity

import (
	"fmt"
	"strings"
	"time"

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

// seconds writes a duration in whole seconds, as Vault reads ttl fields.
func seconds(d time.Duration) string {
	return fmt.Sprintf("%ds", int64(d/time.Second))
}

// truncate bounds user input quoted back in an error message.
func truncate(s string, limit int) string {
	if len(s) <= limit {
		return s
	}
	return strings.ToValidUTF8(s[:limit], "") + "..."
}

// untilCeil is the time left until end in whole seconds, rounded up: Vault
// counts leases in seconds, and a lease that ends within the second after
// its token does no harm, while one shortened to 59m59s for a one-hour
// token would surprise every reader.
func untilCeil(end time.Time) time.Duration {
	left := time.Until(end)
	if left <= 0 {
		return 0
	}
	return (left + time.Second - 1).Truncate(time.Second)
}
