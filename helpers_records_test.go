package beyondidentity

// Test scaffolding: what the plugin stored and minted, for assertions.

import (
	"context"
	"encoding/base64"
	"fmt"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/biclient"
	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/clock"
	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/fakebi"
	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/journal"
)

// expiresAtMatches reports whether a response's expires_at is the token's
// end, or up to a second before it: the plugin counts a token's life from
// when it sent the request, in whole seconds, and keeps the earlier end.
func expiresAtMatches(expiresAt any, end time.Time) bool {
	got, err := time.Parse(time.RFC3339, fmt.Sprint(expiresAt))
	return err == nil && !got.After(end) && end.Sub(got) <= time.Second
}

// jwtLike is a token shaped like a JWT that ends after life, for answers
// the fake is made to give (the plugin never checks signatures).
func jwtLike(life time.Duration) string {
	claims := fmt.Sprintf(`{"jti":"made-up-%d","exp":%d,"scope":"identities:read"}`, life, time.Now().Add(life).Unix())
	return "eyJhbGciOiJSUzI1NiJ9." + base64.RawURLEncoding.EncodeToString([]byte(claims)) + ".c2ln"
}

// withExpiry returns a copy of lease internal data with another token end.
func withExpiry(t *testing.T, internal map[string]any, end time.Time) map[string]any {
	t.Helper()
	lease, err := leaseFromInternal(internal)
	if err != nil {
		t.Fatal(err)
	}
	lease.ExpiresAt, lease.EndsBy = end.Unix(), end.Unix()
	data := lease.internalData()
	data["secret_type"] = secretTypeToken
	return data
}

// assertNothingLeft checks that every token minted since configure is dead
// at the fake, and that no write-ahead entry or pending revocation remains.
func (e *testEnv) assertNothingLeft() {
	e.t.Helper()
	for _, token := range e.fake.Tokens() {
		if e.fake.IsActive(token.Value) {
			e.t.Errorf("token %s was left valid", token.ID)
		}
	}
	if pages := e.journalPages(); len(pages) != 0 {
		e.t.Errorf("journal pages left: %v", pages)
	}
	for _, record := range e.revocationRecords() {
		if !record.revoked() {
			e.t.Errorf("a revocation of token %s is still pending", record.TokenID)
		}
	}
}

// journalPages lists the journal's pages left in storage once the pages of
// tokens handed over are removed, as they are handoverDelay later.
func (e *testEnv) journalPages() []string {
	e.t.Helper()
	e.b.journal.Flush()
	keys, err := e.storage.List(context.Background(), journal.Prefix)
	if err != nil {
		e.t.Fatal(err)
	}
	return keys
}

// secretOf wraps a token value the fake minted.
func secretOf(value string) biclient.Secret { return biclient.NewSecret(value) }

// revocationRecords reads every revocation record in storage.
func (e *testEnv) revocationRecords() []*revocationRecord {
	e.t.Helper()
	keys, err := e.storage.List(context.Background(), revocationPrefix)
	if err != nil {
		e.t.Fatal(err)
	}
	var records []*revocationRecord
	for _, key := range keys {
		record, err := readRevocation(context.Background(), e.storage, key)
		if err != nil {
			e.t.Fatal(err)
		}
		records = append(records, record)
	}
	return records
}

func (e *testEnv) assertNoRevocationRecords() {
	e.t.Helper()
	if records := e.revocationRecords(); len(records) != 0 {
		e.t.Fatalf("%d revocation records left", len(records))
	}
}

// failRevocationsNow issues a credential and fails its revocation while
// Beyond Identity answers 503, so that it is left to the background.
func failRevocationsNow(t *testing.T) (*testEnv, *logical.Response, *clock.Fake) {
	t.Helper()
	e, resp := newIssuedCredential(t)
	fake := e.useFakeClock()
	e.fake.SetFault(fakebi.OpRevoke, fakebi.Fault{Status: 503, Body: `{"code":"service_unavailable"}`})
	if _, err := e.revoke(resp.Secret); err == nil {
		t.Fatal("the revocation should fail while Beyond Identity answers 503")
	}
	return e, resp, fake
}

// activeTokens counts the tokens the fake would still accept.
func (e *testEnv) activeTokens() int {
	active := 0
	for _, token := range e.fake.Tokens() {
		if e.fake.IsActive(token.Value) {
			active++
		}
	}
	return active
}
