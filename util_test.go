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
