package fakebi

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"sync"
)

// keySet is the signing key and its public forms.
type keySet struct {
	private *rsa.PrivateKey
	kid     string
	jwks    []byte // the JWK set, as served
}

var (
	keysOnce sync.Once
	keys     *keySet
)

// sharedKeys returns the process-wide signing key, generating it on first
// use: RSA-2048 generation takes long enough that doing it per test shows.
func sharedKeys() *keySet {
	keysOnce.Do(func() {
		private, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(fmt.Sprintf("fakebi: generating the RSA signing key: %v", err))
		}
		keys = newKeySet(private)
	})
	return keys
}

// jwk is an RSA public key in JWK form (RFC 7517, RFC 7518 §6.3).
type jwk struct {
	Kty string `json:"kty"`
	Use string `json:"use"`
	Alg string `json:"alg"`
	Kid string `json:"kid"`
	N   string `json:"n"`
	E   string `json:"e"`
}

// newKeySet derives the key id and the served JWK set from a private key.
func newKeySet(private *rsa.PrivateKey) *keySet {
	n := b64(private.N.Bytes())
	e := b64(big.NewInt(int64(private.E)).Bytes())
	kid := thumbprint(n, e)
	jwks, err := json.Marshal(map[string][]jwk{"keys": {{
		Kty: "RSA", Use: "sig", Alg: "RS256", Kid: kid, N: n, E: e,
	}}})
	if err != nil {
		panic(fmt.Sprintf("fakebi: encoding the JWK set: %v", err))
	}
	return &keySet{private: private, kid: kid, jwks: jwks}
}

// thumbprint is the RFC 7638 thumbprint of an RSA key, a stable key id.
func thumbprint(n, e string) string {
	// RFC 7638 §3.2: the required members, sorted, without whitespace.
	canonical := fmt.Sprintf(`{"e":%q,"kty":"RSA","n":%q}`, e, n)
	sum := sha256.Sum256([]byte(canonical))
	return b64(sum[:])
}

// b64 is the unpadded base64url encoding JOSE uses.
func b64(b []byte) string {
	return base64.RawURLEncoding.EncodeToString(b)
}

// jwtHeader is the JOSE header of minted tokens.
type jwtHeader struct {
	Alg string `json:"alg"`
	Typ string `json:"typ"`
	Kid string `json:"kid"`
	Jku string `json:"jku"`
}

// claims are the claims of a client-credentials access token.
type claims struct {
	Iss      string         `json:"iss"`
	Sub      string         `json:"sub"`
	Aud      []string       `json:"aud"`
	Exp      int64          `json:"exp"`
	Nbf      int64          `json:"nbf"`
	Iat      int64          `json:"iat"`
	Jti      string         `json:"jti"`
	Scope    string         `json:"scope"`
	Azp      string         `json:"azp"`
	BiP      string         `json:"bi_p"`
	BiT      string         `json:"bi_t"`
	BiR      string         `json:"bi_r"`
	BiCustom map[string]any `json:"bi_custom,omitzero"`
}

// sign builds an RS256 JWT (RFC 7515 compact serialization) for c.
func (k *keySet) sign(jku string, c claims) (string, error) {
	header, err := json.Marshal(jwtHeader{Alg: "RS256", Typ: "JWT", Kid: k.kid, Jku: jku})
	if err != nil {
		return "", fmt.Errorf("encoding the JWT header: %w", err)
	}
	payload, err := json.Marshal(c)
	if err != nil {
		return "", fmt.Errorf("encoding the JWT claims: %w", err)
	}
	signingInput := b64(header) + "." + b64(payload)
	digest := sha256.Sum256([]byte(signingInput))
	signature, err := rsa.SignPKCS1v15(rand.Reader, k.private, crypto.SHA256, digest[:])
	if err != nil {
		return "", fmt.Errorf("signing the JWT: %w", err)
	}
	return signingInput + "." + b64(signature), nil
}
