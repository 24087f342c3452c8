package journal

import "time"

// MinAge is how old a page must be before Recover acts on it: well beyond a
// request that makes a few calls of up to 5 minutes (request_timeout), so
// that recovery never settles the token of a request still running.
var MinAge = minAge(minAgeOverride)

// minAgeOverride lets a test build shorten MinAge, so that an HA test can
// watch a new leader revoke the tokens of requests that died with the old
// one, within minutes:
//
//	-ldflags "-X github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/journal.minAgeOverride=20s"
//
// Release builds leave it empty.
var minAgeOverride string

func minAge(override string) time.Duration {
	if d, err := time.ParseDuration(override); err == nil && d > 0 {
		return d
	}
	return 15 * time.Minute
}
