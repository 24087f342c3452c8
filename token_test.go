package beyondidentity

import (
	"encoding/json"
	"os"
	"reflect"
	"testing"
	"time"

	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/biclient"
)

// Every record that holds a token embeds storedToken. The records in
// testdata/records are what the versions before that wrote: each record
// type of that time marshalled as it was (a lease's data as its
// internalData), each with its own access_token field. A record stored then
// must read the same now, and a record written now must be what an earlier
// version reads alike: the same fields, the same values. Only the order of
// kind and access_token in a revocation record differs, which no JSON
// reader sees.

// Tokens of the fixtures: a lease's, a static role's, and one written
// before tokens said whether they were static, their fingerprint or their
// latest end.
var (
	fixtureEnd        = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	fixtureLeaseToken = issuedToken{AccessToken: secretOf("fixture-lease-token"), TokenID: "tok-lease", Role: "sync",
		Issuer: "https://auth.example/v1/tenants/t/realms/r/applications/a", ClientID: "client-1",
		ExpiresAt: fixtureEnd.Unix(), EndsBy: fixtureEnd.Add(time.Minute).Unix(), SecretFingerprint: "fp-1"}
	fixtureStaticToken = issuedToken{AccessToken: secretOf("fixture-static-token"), TokenID: "tok-static", Role: "ci",
		Issuer: fixtureLeaseToken.Issuer, ClientID: "client-1", ExpiresAt: fixtureEnd.Unix(),
		EndsBy: fixtureEnd.Add(time.Minute).Unix(), Static: true, SecretFingerprint: "fp-1"}
	fixtureOlderToken = issuedToken{AccessToken: secretOf("fixture-older-token"), TokenID: "tok-older", Role: "ci",
		Issuer: fixtureLeaseToken.Issuer, ClientID: "client-1", ExpiresAt: fixtureEnd.Unix()}
)

// recordFixtures are the records of testdata/records and what each holds.
func recordFixtures() map[string]any {
	at := fixtureEnd
	lease, static, older := fixtureLeaseToken, fixtureStaticToken, fixtureOlderToken
	revoked := stored(static)
	revoked.AccessToken = storedSecret{}
	return map[string]any{
		"journal_entry_lease":        &journalEntry{storedToken: stored(lease), Kind: kindLease},
		"journal_entry_static":       &journalEntry{storedToken: stored(static), Kind: kindStatic},
		"journal_entry_older_static": &journalEntry{storedToken: stored(older), Kind: "static"},
		"journal_entry_older_creds":  &journalEntry{storedToken: stored(older), Kind: "creds"},
		"revocation_pending": &revocationRecord{storedToken: stored(lease), Kind: kindLease, Attempts: 2,
			LastError: "revoking token tok-lease: 503", Next: at.Add(-time.Hour)},
		"revocation_revoked": &revocationRecord{storedToken: revoked, Kind: kindStatic, Attempts: 1,
			Next: at.Add(2 * time.Minute), RevokedAt: at.Add(-2 * time.Hour)},
		"revocation_older_static": &revocationRecord{storedToken: stored(older), Kind: kindStatic, Attempts: 1,
			LastError: "maintenance", Next: at.Add(-time.Hour)},
		"revocation_older_kindless": &revocationRecord{storedToken: stored(older), Attempts: 1, Next: at.Add(-time.Hour)},
		"static_role": &staticRole{Scopes: []string{"identities:read"}, RotationPeriod: time.Hour,
			GracePeriod: 10 * time.Minute, Description: "ci",
			Current: &staticToken{storedToken: stored(static), TokenType: "Bearer", Scopes: []string{"identities:read"}},
			Retired: []staticToken{{storedToken: stored(older), TokenType: "Bearer",
				Scopes: []string{"identities:read", "groups:read"}, RevokeAt: at.Add(10 * time.Minute)}},
			LastRotation: at.Add(-time.Hour), NextRotation: at},
		"lease_internal_data":       &leaseData{storedToken: stored(lease), TTL: 3600, Lifetime: 7200, EntityID: "entity-1"},
		"lease_internal_data_older": &leaseData{storedToken: stored(older), TTL: 3600, Lifetime: 3600},
	}
}

func readFixture(t *testing.T, name string) []byte {
	t.Helper()
	old, err := os.ReadFile("testdata/records/" + name + ".json")
	if err != nil {
		t.Fatal(err)
	}
	return old
}

// decodeRecord decodes a fixture as the plugin reads that record: a
// lease's data as Vault hands it over, decoded JSON.
func decodeRecord(old []byte, into any) (any, error) {
	lease, isLease := into.(*leaseData)
	if !isLease {
		return into, json.Unmarshal(old, into)
	}
	var internal map[string]any
	if err := json.Unmarshal(old, &internal); err != nil {
		return nil, err
	}
	read, err := leaseFromInternal(internal)
	*lease = read
	return lease, err
}

// encodeRecord encodes a record as the plugin writes it: a lease's data
// as its internalData.
func encodeRecord(record any) ([]byte, error) {
	if lease, isLease := record.(*leaseData); isLease {
		return json.Marshal(lease.internalData())
	}
	return json.Marshal(record)
}

// Failures name the fixture, never print the records: they hold tokens.
func TestRecordsStoredBeforeReadTheSame(t *testing.T) {
	t.Parallel()
	for name, want := range recordFixtures() {
		got, err := decodeRecord(readFixture(t, name), reflect.New(reflect.TypeOf(want).Elem()).Interface())
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("%s does not read as the record it was (%v)", name, err)
		}
	}
}

func TestRecordsWrittenNowAreWhatEarlierVersionsWrote(t *testing.T) {
	t.Parallel()
	for name, record := range recordFixtures() {
		encoded, err := encodeRecord(record)
		var got, want map[string]any
		if err == nil {
			err = json.Unmarshal(encoded, &got)
		}
		if err != nil || json.Unmarshal(readFixture(t, name), &want) != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("%s is not written as it was (%v)", name, err)
		}
	}
}

// A record written before tokens said whether they were static says so by
// its kind, read one way (staticBy).
func TestOlderRecordsSayWhetherTheirTokenIsStatic(t *testing.T) {
	t.Parallel()
	records := recordFixtures()
	for name, static := range map[string]bool{"journal_entry_older_static": true, "journal_entry_older_creds": false,
		"journal_entry_static": true, "journal_entry_lease": false} {
		entry := records[name].(*journalEntry)
		if got := entry.token().staticBy(entry.Kind); got != static {
			t.Errorf("%s reads static %v, want %v", name, got, static)
		}
	}
	for name, role := range map[string]string{"revocation_older_static": "ci", "revocation_older_kindless": "",
		"revocation_revoked": "ci", "revocation_pending": ""} {
		if got := records[name].(*revocationRecord).staticRoleOf(); got != role {
			t.Errorf("%s is of static role %q, want %q", name, got, role)
		}
	}
}

// A record's token comes back from storage as the token, and the record
// the plugin writes from a token is what it reads back.
func TestStoredTokenRoundTrips(t *testing.T) {
	t.Parallel()
	for _, token := range []issuedToken{fixtureLeaseToken, fixtureStaticToken, fixtureOlderToken} {
		encoded, err := json.Marshal(staticToken{storedToken: stored(token), TokenType: "Bearer"})
		var back staticToken
		if err == nil {
			err = json.Unmarshal(encoded, &back)
		}
		got := back.token()
		sameToken := got.AccessToken.Reveal() == token.AccessToken.Reveal()
		got.AccessToken, token.AccessToken = biclient.Secret{}, biclient.Secret{}
		if err != nil || !sameToken || got != token {
			t.Errorf("token %s reads back as %s (%v; same token: %v)", token.TokenID, got.TokenID, err, sameToken)
		}
	}
}
