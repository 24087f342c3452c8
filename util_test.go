package beyondidentity

// The small helpers every path uses: durations as operators write them, and
// the mount path in commands.

import (
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
)

func TestDurationsReadAsOperatorsWriteThem(t *testing.T) {
	t.Parallel()
	for d, want := range map[time.Duration]string{
		2160 * time.Hour: "2160h", time.Hour: "1h", 90 * time.Second: "90s", 90 * time.Minute: "5400s", 0: "0s",
	} {
		if got := humanDuration(d); got != want {
			t.Errorf("humanDuration(%s) = %q, want %q", d, got, want)
		}
	}
	for d, want := range map[time.Duration]time.Duration{
		0: 0, -time.Second: 0, time.Millisecond: time.Second, time.Second: time.Second, 1500 * time.Millisecond: 2 * time.Second,
	} {
		if got := ceilSeconds(d); got != want {
			t.Errorf("ceilSeconds(%s) = %s, want %s", d, got, want)
		}
	}
}

// A duration quoted back is shown in both units, since the plugin gets
// seconds whatever the operator typed.
func TestDurationsAreQuotedInBothUnits(t *testing.T) {
	t.Parallel()
	for d, want := range map[time.Duration]string{
		2160 * time.Hour: "2160h (7776000s)", time.Hour: "1h (3600s)", 90 * time.Minute: "1h30m (5400s)",
		10 * time.Minute: "10m (600s)", 90 * time.Second: "90s", 3601 * time.Second: "3601s", 0: "0s",
	} {
		if got := bothUnits(d); got != want {
			t.Errorf("bothUnits(%s) = %q, want %q", d, got, want)
		}
	}
}

func TestMountPathEndsWithOneSlash(t *testing.T) {
	t.Parallel()
	for mount, want := range map[string]string{"": defaultMountPath, "bi": "bi/", "bi/": "bi/", "teams/bi/": "teams/bi/"} {
		if got := mountPath(&logical.Request{MountPoint: mount}); got != want {
			t.Errorf("mountPath(%q) = %q, want %q", mount, got, want)
		}
	}
	if got := mountPath(nil); got != defaultMountPath {
		t.Errorf("mountPath(nil) = %q", got)
	}
}
