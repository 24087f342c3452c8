package beyondidentity

import (
	"context"
	"crypto/subtle"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/biclient"
	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/clock"
)

const (
	defaultRequestTimeout = 30 * time.Second
	maxRequestTimeout     = 5 * time.Minute
	defaultMaxRetries     = biclient.DefaultMaxRetries
	maxMaxRetries         = 10
	// defaultMaxConcurrent is the ceiling of a mount's adaptive bound on
	// calls at once: enough to keep up with a few hundred credentials a
	// second 100 ms away, while the bound starts at 10 and halves on every
	// 429 or 503, so a burst never floods a tenant that throttles.
	defaultMaxConcurrent = 64
	maxMaxConcurrent     = 256
	// verifyTokenLifetime is the life of the token verify_connection mints;
	// it is revoked at once, and expires on its own if that fails.
	verifyTokenLifetime = 60 * time.Second
	maxIDLen            = 128
	maxClientIDLen      = 256
	maxClientSecretLen  = 1024
	maxCACertLen        = 256 << 10
)

// idPattern accepts Beyond Identity ids, which go into URL paths: letters,
// digits, '.', '_' and '-', starting with a letter or digit.
var idPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// config is the mount's configuration. The client secret is held as a
// biclient.Secret so it cannot be printed; storageConfig is the one place it
// is written out.
type config struct {
	TenantID       string          `json:"tenant_id"`
	RealmID        string          `json:"realm_id"`
	ApplicationID  string          `json:"application_id"`
	ClientID       string          `json:"client_id"`
	ClientSecret   biclient.Secret `json:"-"`
	Region         string          `json:"region"`
	AuthURL        string          `json:"auth_url,omitempty"`
	CACert         string          `json:"ca_cert,omitempty"`
	RequestTimeout time.Duration   `json:"request_timeout"`
	MaxRetries     int             `json:"max_retries"`
	MaxConcurrent  int             `json:"max_concurrent_requests"`
}

// defaultConfig holds the defaults of the optional fields; stored configs
// are decoded over it, so a field added later reads as its default.
func defaultConfig() *config {
	return &config{
		Region:         biclient.DefaultRegion,
		RequestTimeout: defaultRequestTimeout,
		MaxRetries:     defaultMaxRetries,
		MaxConcurrent:  defaultMaxConcurrent,
	}
}

// storageConfig is config as stored (seal-wrapped): the client secret is
// revealed here and nowhere else.
type storageConfig struct {
	*config
	ClientSecret string `json:"client_secret"`
}

// authURL is the auth host: the override, or the region's.
func (c *config) authURL() string {
	if c.AuthURL != "" {
		return c.AuthURL
	}
	regionURL, err := biclient.AuthURLForRegion(c.Region)
	if err != nil {
		// Validated on write; an unknown stored region is a bug, and an
		// empty URL makes every call fail loudly.
		return ""
	}
	return regionURL
}

func (c *config) issuer() string {
	return biclient.IssuerURL(c.authURL(), c.TenantID, c.RealmID, c.ApplicationID)
}

// sameApplication reports whether both configs authenticate as the same
// application and client: whether tokens one issued, the other can revoke.
func (c *config) sameApplication(other *config) bool {
	return c.issuer() == other.issuer() && c.ClientID == other.ClientID
}

// sameCredentials reports whether both configs send the same secret of the
// same client to the same place: whether a check of one holds for the other.
func (c *config) sameCredentials(other *config) bool {
	return c.sameApplication(other) && c.CACert == other.CACert && sameSecret(c.ClientSecret, other.ClientSecret)
}

// newClient builds the client for this config; its calls wait for slots of
// the mount's limits, and between attempts on clk, and each is observed.
func (c *config) newClient(limits callLimits, clk clock.Clock, observe func(biclient.Attempt), fingerprint string) (*biclient.Client, error) {
	return biclient.New(biclient.Config{
		SecretFingerprint: fingerprint,
		Clock:             clk,
		Observe:           observe,
		AuthURL:           c.authURL(),
		TenantID:          c.TenantID,
		RealmID:           c.RealmID,
		ApplicationID:     c.ApplicationID,
		ClientID:          c.ClientID,
		ClientSecret:      c.ClientSecret,
		CACertPEM:         c.CACert,
		Timeout:           c.RequestTimeout,
		UserAgent:         "vault-plugin-secrets-beyondidentity/" + Version,
		MaxRetries:        c.MaxRetries,
		Limiter:           limits.issue,
		RevokeLimiter:     limits.revoke,
	})
}

func readConfig(ctx context.Context, s logical.Storage) (*config, error) {
	stored := storageConfig{config: defaultConfig()}
	if found, err := getJSON(ctx, s, configPath, "config", &stored); !found || err != nil {
		return nil, err
	}
	stored.config.ClientSecret = biclient.NewSecret(stored.ClientSecret)
	return stored.config, nil
}

func writeConfig(ctx context.Context, s logical.Storage, cfg *config) error {
	return putJSON(ctx, s, configPath, "config", storageConfig{config: cfg, ClientSecret: cfg.ClientSecret.Reveal()})
}

// destinationFields decide where the client secret is sent: changing any of
// them requires the secret again.
var destinationFields = []struct {
	name     string
	target   func(*config) *string
	validate func(string) error
}{
	{"tenant_id", func(c *config) *string { return &c.TenantID }, validateID},
	{"realm_id", func(c *config) *string { return &c.RealmID }, validateID},
	{"application_id", func(c *config) *string { return &c.ApplicationID }, validateID},
	{"client_id", func(c *config) *string { return &c.ClientID }, validateClientID},
	{"region", func(c *config) *string { return &c.Region }, validateRegion},
	{"auth_url", func(c *config) *string { return &c.AuthURL }, validateAuthURL},
	{"ca_cert", func(c *config) *string { return &c.CACert }, validateCACert},
}

// configFromRequest merges the request into a copy of the existing config
// (or the defaults) and validates every field. It also returns the names of
// the fields that decide where the client secret is sent and that changed.
// Its error is the operator's mistake, naming the field and the rule.
func configFromRequest(existing *config, d *framework.FieldData) (*config, []string, error) {
	cfg := defaultConfig()
	if existing != nil {
		copied := *existing
		cfg = &copied
	}
	var changed []string
	for _, f := range destinationFields {
		raw, ok := d.GetOk(f.name)
		if !ok {
			continue
		}
		value := strings.TrimSpace(raw.(string))
		if f.name == "auth_url" {
			value = strings.TrimRight(value, "/")
		}
		if err := f.validate(value); err != nil {
			return nil, nil, fmt.Errorf("'%s' %w", f.name, err)
		}
		if target := f.target(cfg); value != *target {
			if existing != nil {
				changed = append(changed, f.name)
			}
			*target = value
		}
	}
	if raw, ok := d.GetOk("client_secret"); ok {
		if err := validateClientSecret(raw.(string)); err != nil {
			return nil, nil, fmt.Errorf("'client_secret' %w", err)
		}
		cfg.ClientSecret = biclient.NewSecret(raw.(string))
	}
	if raw, ok := d.GetOk("request_timeout"); ok {
		timeout := time.Duration(raw.(int)) * time.Second
		if timeout < time.Second || timeout > maxRequestTimeout {
			return nil, nil, fmt.Errorf("'request_timeout' must be between 1s and %s, got %s", maxRequestTimeout, timeout)
		}
		cfg.RequestTimeout = timeout
	}
	for _, f := range []struct {
		field    string
		target   *int
		min, max int
	}{{"max_retries", &cfg.MaxRetries, 0, maxMaxRetries}, {"max_concurrent_requests", &cfg.MaxConcurrent, 1, maxMaxConcurrent}} {
		if raw, ok := d.GetOk(f.field); ok {
			value := raw.(int)
			if value < f.min || value > f.max {
				return nil, nil, fmt.Errorf("'%s' must be between %d and %d, got %d", f.field, f.min, f.max, value)
			}
			*f.target = value
		}
	}
	return cfg, changed, cfg.complete()
}

// complete names every required field that is missing, so that a first
// write learns them all at once.
func (c *config) complete() error {
	var missing []string
	for _, required := range []struct {
		field string
		given bool
	}{
		{"tenant_id", c.TenantID != ""}, {"realm_id", c.RealmID != ""}, {"application_id", c.ApplicationID != ""},
		{"client_id", c.ClientID != ""}, {"client_secret", !c.ClientSecret.IsZero()},
	} {
		if !required.given {
			missing = append(missing, "'"+required.field+"'")
		}
	}
	switch len(missing) {
	case 0:
		return nil
	case 1:
		return fmt.Errorf("%s is required", missing[0])
	}
	return fmt.Errorf("%s and %s are required", strings.Join(missing[:len(missing)-1], ", "), missing[len(missing)-1])
}

func validateID(value string) error {
	switch {
	case value == "":
		return errors.New("must not be empty")
	case len(value) > maxIDLen:
		return fmt.Errorf("must be at most %d characters", maxIDLen)
	case !idPattern.MatchString(value):
		return errors.New("must hold only letters, digits, '.', '_' and '-', starting with a letter or digit")
	}
	return nil
}

func validateClientID(value string) error {
	if strings.ContainsRune(value, ':') {
		return errors.New("must not contain ':', which HTTP Basic authentication cannot carry in a user id")
	}
	return validateCredential(value, maxClientIDLen)
}

// errSecretEndsInNewline is the usual slip of a secret piped with echo,
// which adds a newline; the write's answer shows the command that does not.
var errSecretEndsInNewline = errors.New("ends in a newline, which is no part of a secret (echo adds one)")

// validateClientSecret checks a client secret as validateCredential does,
// first for errSecretEndsInNewline.
func validateClientSecret(value string) error {
	if strings.HasSuffix(value, "\n") {
		return errSecretEndsInNewline
	}
	return validateCredential(value, maxClientSecretLen)
}

// validateCredential checks a value sent in the Basic authentication
// header: not empty, at most limit characters, printable ASCII.
func validateCredential(value string, limit int) error {
	switch {
	case value == "":
		return errors.New("must not be empty")
	case len(value) > limit:
		return fmt.Errorf("must be at most %d characters", limit)
	case !printableASCII(value):
		return errors.New("must hold only printable ASCII characters without spaces")
	}
	return nil
}

func printableASCII(value string) bool {
	for _, r := range value {
		if r <= ' ' || r > '~' {
			return false
		}
	}
	return true
}

func validateRegion(value string) error {
	if _, err := biclient.AuthURLForRegion(value); err != nil {
		return fmt.Errorf("must be one of %s", strings.Join(biclient.Regions(), ", "))
	}
	return nil
}

// validateAuthURL accepts an absolute https URL, or http to a loopback
// address (a local test server), without credentials, query or fragment.
func validateAuthURL(value string) error {
	if value == "" {
		return nil
	}
	u, err := url.Parse(value)
	if err != nil || u.Host == "" || u.Opaque != "" {
		return errors.New("must be an absolute URL such as https://auth.example.com")
	}
	switch {
	case u.User != nil:
		return errors.New("must not contain credentials")
	case u.RawQuery != "" || u.Fragment != "" || strings.HasSuffix(value, "?") || strings.Contains(value, "#"):
		return errors.New("must not contain a query or fragment")
	case u.Scheme == "https":
		return nil
	case u.Scheme == "http" && isLoopback(u.Hostname()):
		return nil
	case u.Scheme == "http":
		return errors.New("must use https:// (http:// is accepted only for a loopback address such as 127.0.0.1)")
	}
	return errors.New("must use https://")
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func validateCACert(value string) error {
	if value == "" {
		return nil
	}
	if len(value) > maxCACertLen {
		return fmt.Errorf("must be at most %d bytes", maxCACertLen)
	}
	rest := []byte(value)
	count := 0
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			return fmt.Errorf("must hold only PEM CERTIFICATE blocks, found %q", block.Type)
		}
		if _, err := x509.ParseCertificate(block.Bytes); err != nil {
			return fmt.Errorf("holds a certificate that does not parse: %w", err)
		}
		count++
	}
	if count == 0 {
		return errors.New("must be a PEM bundle of at least one certificate")
	}
	return nil
}

// sameSecret compares two secrets in constant time.
func sameSecret(a, b biclient.Secret) bool {
	return subtle.ConstantTimeCompare([]byte(a.Reveal()), []byte(b.Reveal())) == 1
}

// callLimits bounds the calls to Beyond Identity a mount runs at once:
// issuing (token and introspect calls) and revoking each have their own
// slots, so that a flood of credential reads cannot starve revocations.
type callLimits struct {
	issue, revoke *biclient.Limiter
}

func (l callLimits) setCeiling(n int) {
	l.issue.SetCeiling(n)
	l.revoke.SetCeiling(n)
}
