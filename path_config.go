package beyondidentity

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/biclient"
)

// configPath is the storage key and the path of the mount's configuration.
const configPath = "config"

const (
	defaultRequestTimeout = 30 * time.Second
	maxRequestTimeout     = 5 * time.Minute
	defaultMaxRetries     = biclient.DefaultMaxRetries
	maxMaxRetries         = 10
	// defaultMaxConcurrent lets a mount run a few calls at once without
	// letting a mass revocation flood the tenant.
	defaultMaxConcurrent = 10
	maxMaxConcurrent     = 100
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

// newClient builds the client for this config; calls wait for a slot of
// limiter, the mount's bound on concurrent calls.
func (c *config) newClient(limiter *biclient.Limiter) (*biclient.Client, error) {
	return biclient.New(biclient.Config{
		AuthURL:       c.authURL(),
		TenantID:      c.TenantID,
		RealmID:       c.RealmID,
		ApplicationID: c.ApplicationID,
		ClientID:      c.ClientID,
		ClientSecret:  c.ClientSecret,
		CACertPEM:     c.CACert,
		Timeout:       c.RequestTimeout,
		UserAgent:     "vault-plugin-secrets-beyondidentity/" + Version,
		MaxRetries:    c.MaxRetries,
		Limiter:       limiter,
	})
}

func (b *backend) pathConfig() *framework.Path {
	return &framework.Path{
		Pattern: configPath,
		DisplayAttrs: &framework.DisplayAttributes{
			OperationPrefix: "beyond-identity",
		},
		Fields: map[string]*framework.FieldSchema{
			"tenant_id": {
				Type:        framework.TypeString,
				Description: "Beyond Identity tenant id. Required. Letters, digits, '.', '_' and '-'.",
			},
			"realm_id": {
				Type:        framework.TypeString,
				Description: "Realm of the application. Required. Letters, digits, '.', '_' and '-'.",
			},
			"application_id": {
				Type:        framework.TypeString,
				Description: `Application that holds the client credentials, e.g. the "Beyond Identity Management API" application. Required.`,
			},
			"client_id": {
				Type:        framework.TypeString,
				Description: "The application's client id. Required.",
			},
			"client_secret": {
				Type: framework.TypeString,
				Description: "The application's client secret. Required on create, and again whenever tenant_id, realm_id, " +
					"application_id, client_id, region, auth_url or ca_cert change. Write-only: never returned or logged.",
				DisplayAttrs: &framework.DisplayAttributes{Sensitive: true},
			},
			"region": {
				Type:          framework.TypeString,
				Default:       biclient.DefaultRegion,
				Description:   "Beyond Identity region, which picks the hosts: us, eu or us-fedramp. Default: us.",
				AllowedValues: []any{"us", "eu", "us-fedramp"},
			},
			"auth_url": {
				Type: framework.TypeString,
				Description: "Base URL of the auth host, overriding the region's, for private or test deployments. " +
					"https:// only, except http:// to a loopback address. Empty: from region.",
			},
			"ca_cert": {
				Type:        framework.TypeString,
				Description: "PEM bundle of CA certificates trusted for auth_url, beside the system roots. Empty: system roots only.",
			},
			"request_timeout": {
				Type:        framework.TypeDurationSecond,
				Default:     int(defaultRequestTimeout.Seconds()),
				Description: "Bound on each call to Beyond Identity, retries and their waits included, between 1s and 5m. Default: 30s.",
			},
			"max_retries": {
				Type:    framework.TypeInt,
				Default: defaultMaxRetries,
				Description: "How often a call is retried when nothing can have happened at Beyond Identity: connection " +
					"refused, 429, 502, 503, 504 (with backoff, honouring Retry-After). 0 disables retries; at most 10. Default: 3.",
			},
			"max_concurrent_requests": {
				Type:    framework.TypeInt,
				Default: defaultMaxConcurrent,
				Description: "How many calls to Beyond Identity this mount runs at once; further calls wait for a slot " +
					"within their own time limit. Between 1 and 100. Default: 10.",
			},
			"verify_connection": {
				Type:    framework.TypeBool,
				Default: true,
				Description: "On write, mint a 60-second token and revoke it at once, and refuse to save credentials " +
					"that do not work. Default: true. Not stored.",
			},
		},
		ExistenceCheck: b.configExists,
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.ReadOperation: &framework.PathOperation{
				Callback: b.pathConfigRead,
				Summary:  "Read the configuration; client_secret is never returned.",
				Responses: map[int][]framework.Response{
					http.StatusOK: {{Description: "OK", Fields: configResponseFields}},
				},
			},
			logical.CreateOperation: forwarded(b.pathConfigWrite, "Store the client credentials of a Beyond Identity application."),
			logical.UpdateOperation: forwarded(b.pathConfigWrite, "Change the configuration."),
			logical.DeleteOperation: forwarded(b.pathConfigDelete, "Delete the configuration."),
		},
		HelpSynopsis:    configHelpSynopsis,
		HelpDescription: configHelpDescription,
	}
}

var configResponseFields = map[string]*framework.FieldSchema{
	"tenant_id":               {Type: framework.TypeString, Description: "Beyond Identity tenant id."},
	"realm_id":                {Type: framework.TypeString, Description: "Realm of the application."},
	"application_id":          {Type: framework.TypeString, Description: "Application that holds the client credentials."},
	"client_id":               {Type: framework.TypeString, Description: "The application's client id."},
	"region":                  {Type: framework.TypeString, Description: "Beyond Identity region."},
	"auth_url":                {Type: framework.TypeString, Description: "Auth host override; empty when the region's host is used."},
	"ca_cert":                 {Type: framework.TypeString, Description: "Extra trusted CA certificates."},
	"request_timeout":         {Type: framework.TypeDurationSecond, Description: "Bound on each call, in seconds."},
	"max_retries":             {Type: framework.TypeInt, Description: "Retries of a call that changed nothing upstream."},
	"max_concurrent_requests": {Type: framework.TypeInt, Description: "Calls to Beyond Identity run at once."},
	"token_url":               {Type: framework.TypeString, Description: "The token endpoint the configuration resolves to."},
}

func (b *backend) configExists(ctx context.Context, req *logical.Request, _ *framework.FieldData) (bool, error) {
	cfg, err := readConfig(ctx, req.Storage)
	return cfg != nil, err
}

func (b *backend) pathConfigRead(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	cfg, err := readConfig(ctx, req.Storage)
	if err != nil || cfg == nil {
		return nil, err
	}
	return &logical.Response{Data: map[string]any{
		"tenant_id":               cfg.TenantID,
		"realm_id":                cfg.RealmID,
		"application_id":          cfg.ApplicationID,
		"client_id":               cfg.ClientID,
		"region":                  cfg.Region,
		"auth_url":                cfg.AuthURL,
		"ca_cert":                 cfg.CACert,
		"request_timeout":         int64(cfg.RequestTimeout.Seconds()),
		"max_retries":             cfg.MaxRetries,
		"max_concurrent_requests": cfg.MaxConcurrent,
		"token_url":               biclient.TokenURL(cfg.issuer()),
	}}, nil
}

func (b *backend) pathConfigWrite(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	existing, err := readConfig(ctx, req.Storage)
	if err != nil {
		return nil, err
	}
	cfg, changed, errResp := configFromRequest(existing, d)
	if errResp != nil {
		return errResp, nil
	}
	if _, given := d.GetOk("client_secret"); !given && existing != nil && len(changed) > 0 {
		return logical.ErrorResponse("'client_secret' is required when changing %s, so that the stored secret is never sent to a new destination",
			strings.Join(changed, ", ")), nil
	}
	// The check shares the mount's bound as it stands; a new
	// max_concurrent_requests applies once the config is saved.
	client, err := cfg.newClient(b.limiter)
	if err != nil {
		return logical.ErrorResponse("invalid configuration: %s", err), nil
	}
	defer client.CloseIdleConnections()
	if d.Get("verify_connection").(bool) {
		if resp, err := b.verifyConnection(ctx, client); resp != nil || err != nil {
			return resp, err
		}
	}
	if err := writeConfig(ctx, req.Storage, cfg); err != nil {
		return nil, err
	}
	b.reset()
	b.Logger().Info("configuration saved", "tenant_id", cfg.TenantID, "realm_id", cfg.RealmID,
		"application_id", cfg.ApplicationID, "client_id", cfg.ClientID, "token_url", biclient.TokenURL(cfg.issuer()))

	if existing != nil && (existing.issuer() != cfg.issuer() || existing.ClientID != cfg.ClientID) {
		resp := &logical.Response{}
		resp.AddWarning(fmt.Sprintf("the mount now uses another Beyond Identity application or client: credentials issued under "+
			"the previous one cannot be revoked with the new credentials, and their revocation fails until they expire; "+
			"to end them now, write the previous configuration back and run: vault lease revoke -prefix %screds", mountPath(req)))
		return resp, nil
	}
	return nil, nil
}

// configFromRequest merges the request into a copy of the existing config
// (or the defaults) and validates every field. It also returns the names of
// the fields that decide where the client secret is sent and that changed.
func configFromRequest(existing *config, d *framework.FieldData) (*config, []string, *logical.Response) {
	cfg := defaultConfig()
	if existing != nil {
		copied := *existing
		cfg = &copied
	}
	var changed []string
	setString := func(field string, target *string, validate func(string) string) *logical.Response {
		raw, ok := d.GetOk(field)
		if !ok {
			return nil
		}
		value := strings.TrimSpace(raw.(string))
		if field == "auth_url" {
			value = strings.TrimRight(value, "/")
		}
		if problem := validate(value); problem != "" {
			return logical.ErrorResponse("'%s' %s", field, problem)
		}
		if existing != nil && value != *target {
			changed = append(changed, field)
		}
		*target = value
		return nil
	}
	for _, f := range []struct {
		field    string
		target   *string
		validate func(string) string
	}{
		{"tenant_id", &cfg.TenantID, validateID},
		{"realm_id", &cfg.RealmID, validateID},
		{"application_id", &cfg.ApplicationID, validateID},
		{"client_id", &cfg.ClientID, validateClientID},
		{"region", &cfg.Region, validateRegion},
		{"auth_url", &cfg.AuthURL, validateAuthURL},
		{"ca_cert", &cfg.CACert, validateCACert},
	} {
		if errResp := setString(f.field, f.target, f.validate); errResp != nil {
			return nil, nil, errResp
		}
	}
	if raw, ok := d.GetOk("client_secret"); ok {
		secret := raw.(string)
		if problem := validateClientSecret(secret); problem != "" {
			return nil, nil, logical.ErrorResponse("'client_secret' %s", problem)
		}
		cfg.ClientSecret = biclient.NewSecret(secret)
	}
	if raw, ok := d.GetOk("request_timeout"); ok {
		timeout := time.Duration(raw.(int)) * time.Second
		if timeout < time.Second || timeout > maxRequestTimeout {
			return nil, nil, logical.ErrorResponse("'request_timeout' must be between 1s and %s, got %s", maxRequestTimeout, timeout)
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
				return nil, nil, logical.ErrorResponse("'%s' must be between %d and %d, got %d", f.field, f.min, f.max, value)
			}
			*f.target = value
		}
	}
	for _, required := range []struct{ field, value string }{
		{"tenant_id", cfg.TenantID}, {"realm_id", cfg.RealmID}, {"application_id", cfg.ApplicationID}, {"client_id", cfg.ClientID},
	} {
		if required.value == "" {
			return nil, nil, logical.ErrorResponse("'%s' is required", required.field)
		}
	}
	if cfg.ClientSecret.IsZero() {
		return nil, nil, logical.ErrorResponse("'client_secret' is required")
	}
	return cfg, changed, nil
}

func validateID(value string) string {
	switch {
	case value == "":
		return "must not be empty"
	case len(value) > maxIDLen:
		return fmt.Sprintf("must be at most %d characters", maxIDLen)
	case !idPattern.MatchString(value):
		return "must hold only letters, digits, '.', '_' and '-', starting with a letter or digit"
	}
	return ""
}

func validateClientID(value string) string {
	switch {
	case value == "":
		return "must not be empty"
	case len(value) > maxClientIDLen:
		return fmt.Sprintf("must be at most %d characters", maxClientIDLen)
	case strings.ContainsRune(value, ':'):
		return "must not contain ':', which HTTP Basic authentication cannot carry in a user id"
	case !printableASCII(value):
		return "must hold only printable ASCII characters without spaces"
	}
	return ""
}

func validateClientSecret(value string) string {
	switch {
	case value == "":
		return "must not be empty"
	case len(value) > maxClientSecretLen:
		return fmt.Sprintf("must be at most %d characters", maxClientSecretLen)
	case !printableASCII(value):
		return "must hold only printable ASCII characters without spaces"
	}
	return ""
}

func printableASCII(value string) bool {
	for _, r := range value {
		if r <= ' ' || r > '~' {
			return false
		}
	}
	return true
}

func validateRegion(value string) string {
	if _, err := biclient.AuthURLForRegion(value); err != nil {
		return fmt.Sprintf("must be one of %s", strings.Join(biclient.Regions(), ", "))
	}
	return ""
}

// validateAuthURL accepts an absolute https URL, or http to a loopback
// address (a local test server), without credentials, query or fragment.
func validateAuthURL(value string) string {
	if value == "" {
		return ""
	}
	u, err := url.Parse(value)
	if err != nil || u.Host == "" || u.Opaque != "" {
		return "must be an absolute URL such as https://auth.example.com"
	}
	switch {
	case u.User != nil:
		return "must not contain credentials"
	case u.RawQuery != "" || u.Fragment != "" || strings.HasSuffix(value, "?") || strings.Contains(value, "#"):
		return "must not contain a query or fragment"
	case u.Scheme == "https":
		return ""
	case u.Scheme == "http" && isLoopback(u.Hostname()):
		return ""
	case u.Scheme == "http":
		return "must use https:// (http:// is accepted only for a loopback address such as 127.0.0.1)"
	}
	return "must use https://"
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func validateCACert(value string) string {
	if value == "" {
		return ""
	}
	if len(value) > maxCACertLen {
		return fmt.Sprintf("must be at most %d bytes", maxCACertLen)
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
			return fmt.Sprintf("must hold only PEM CERTIFICATE blocks, found %q", block.Type)
		}
		if _, err := x509.ParseCertificate(block.Bytes); err != nil {
			return fmt.Sprintf("holds a certificate that does not parse: %v", err)
		}
		count++
	}
	if count == 0 {
		return "must be a PEM bundle of at least one certificate"
	}
	return ""
}

// verifyConnection mints a short token with the new credentials and revokes
// it, so credentials that do not work are never saved.
func (b *backend) verifyConnection(ctx context.Context, client *biclient.Client) (*logical.Response, error) {
	token, err := client.MintToken(ctx, biclient.MintRequest{Lifetime: verifyTokenLifetime})
	var unusable *biclient.UnusableTokenError
	if errors.As(err, &unusable) {
		revokeErr := client.Revoke(context.WithoutCancel(ctx), unusable.Token.AccessToken)
		return upstreamFailure("verify_connection: minting a test token",
			fmt.Errorf("%w; %s", err, revokedOutcome(revokeErr, verifyTokenLifetime)))
	}
	if err != nil {
		return upstreamFailure("verify_connection: minting a test token", err)
	}
	// Revoke even if the request was cancelled meanwhile.
	if err := client.Revoke(context.WithoutCancel(ctx), token.AccessToken); err != nil {
		return upstreamFailure(fmt.Sprintf("verify_connection: a test token was minted but revoking it failed, so these "+
			"credentials cannot revoke what they issue (the test token expires on its own in %s)", verifyTokenLifetime), err)
	}
	b.Logger().Debug("verified connection", "token_url", biclient.TokenURL(client.Issuer()), "token_id", token.ID)
	return nil, nil
}

// revokedOutcome says what became of a token the plugin had to discard.
func revokedOutcome(revokeErr error, lifetime time.Duration) string {
	if revokeErr != nil {
		return fmt.Sprintf("revoking the token it carried failed too (%v), so it stays valid until it expires on its own within %s", revokeErr, lifetime)
	}
	return "the token it carried was revoked"
}

func (b *backend) pathConfigDelete(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	existing, err := readConfig(ctx, req.Storage)
	if err != nil {
		return nil, err
	}
	if err := req.Storage.Delete(ctx, configPath); err != nil {
		return nil, err
	}
	b.reset()
	if existing == nil {
		return nil, nil
	}
	b.Logger().Info("configuration deleted")
	resp := &logical.Response{}
	resp.AddWarning("outstanding credentials cannot be revoked at Beyond Identity until config is written again; " +
		"their revocations fail and are retried by Vault until then")
	return resp, nil
}

func readConfig(ctx context.Context, s logical.Storage) (*config, error) {
	entry, err := s.Get(ctx, configPath)
	if err != nil {
		return nil, fmt.Errorf("reading config: %w", err)
	}
	if entry == nil {
		return nil, nil
	}
	stored := storageConfig{config: defaultConfig()}
	if err := entry.DecodeJSON(&stored); err != nil {
		return nil, fmt.Errorf("decoding config: %w", err)
	}
	stored.config.ClientSecret = biclient.NewSecret(stored.ClientSecret)
	return stored.config, nil
}

func writeConfig(ctx context.Context, s logical.Storage, cfg *config) error {
	entry, err := logical.StorageEntryJSON(configPath, storageConfig{config: cfg, ClientSecret: cfg.ClientSecret.Reveal()})
	if err != nil {
		return fmt.Errorf("encoding config: %w", err)
	}
	if err := s.Put(ctx, entry); err != nil {
		return fmt.Errorf("writing config: %w", err)
	}
	return nil
}

const configHelpSynopsis = "Configure the Beyond Identity application whose client credentials mint tokens."

const configHelpDescription = `
Stores the client credentials of a Beyond Identity application (tenant_id,
realm_id, application_id, client_id, client_secret) and where to reach it
(region, or auth_url with an optional ca_cert). The configuration is stored
seal-wrapped.

client_secret is write-only: reading the configuration returns every other
field and the resolved token_url. Changing any field that decides where the
secret is sent (tenant_id, realm_id, application_id, client_id, region,
auth_url, ca_cert) requires client_secret in the same request.

With verify_connection=true (the default), a write mints a 60-second token
and revokes it at once, and refuses credentials that do not work.
`
