// Package biclient is the HTTP client to Beyond Identity's OAuth endpoints:
// it mints access tokens with the client-credentials grant, revokes them
// (RFC 7009) and introspects them (RFC 7662). It knows nothing of Vault.
package biclient

import (
	"bytes"
	"context"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/go-cleanhttp"

	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/clock"
)

// DefaultTimeout bounds each call when Config.Timeout is zero.
const DefaultTimeout = 30 * time.Second

// MaxResponseBytes bounds how much of any answer is read. Token answers are a
// few kilobytes; anything near this is not a Beyond Identity answer.
const MaxResponseBytes = 1 << 20

// Config says where a Client sends its calls and with which credentials.
type Config struct {
	// AuthURL is the base URL of the auth host, e.g.
	// https://auth-us.beyondidentity.com (see AuthURLForRegion).
	AuthURL       string
	TenantID      string
	RealmID       string
	ApplicationID string
	ClientID      string
	ClientSecret  Secret
	// SecretFingerprint is the caller's name for ClientSecret, such as a
	// keyed hash of it; the client only carries it, for whoever records
	// which secret minted a token.
	SecretFingerprint string
	// CACertPEM holds extra roots trusted beside the system ones.
	CACertPEM string
	// Timeout bounds each call, connection and body read included.
	Timeout time.Duration
	// UserAgent identifies the caller in Beyond Identity's logs.
	UserAgent string
	// MaxRetries is how often a call is retried after a refused
	// connection or a 429, 502, 503 or 504; 0 disables retries, a negative
	// value means DefaultMaxRetries.
	MaxRetries int
	// RetryBaseDelay is the first backoff; zero means 250ms.
	RetryBaseDelay time.Duration
	// Clock tells the time of sending and answering, and times the waits
	// between attempts; nil means the system clock.
	Clock clock.Clock
	// Limiter, when set, bounds the token and introspect calls in flight at
	// once.
	Limiter *Limiter
	// Observe, when set, is told of every attempt of every call, for
	// metrics.
	Observe func(Attempt)
	// RevokeLimiter, when set, bounds the revoke calls in flight at once.
	// It is separate so that a burst of credential reads can never keep a
	// revocation waiting.
	RevokeLimiter *Limiter
}

// Attempt is one request of a call, as Config.Observe is told of it.
type Attempt struct {
	Call string // CallToken, CallRevoke or CallIntrospect
	// Number counts the call's requests from 1: above 1, a retry.
	Number int
	// Status is the answer's HTTP status; 0 when no answer came.
	Status   int
	Duration time.Duration
}

// Client calls one Beyond Identity application's OAuth endpoints. It is safe
// for concurrent use and reuses connections.
type Client struct {
	cfg        Config
	issuer     string
	httpClient *http.Client
	clock      clock.Clock
	// credentials are what the client sends that no message may quote
	// (see Scrub).
	credentials []Secret
}

// New builds a Client. It fails only on a malformed configuration.
func New(cfg Config) (*Client, error) {
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	if cfg.TenantID == "" || cfg.RealmID == "" || cfg.ApplicationID == "" || cfg.ClientID == "" || cfg.ClientSecret.IsZero() {
		return nil, errors.New("tenant, realm, application, client id and client secret are all required")
	}
	base, err := url.Parse(cfg.AuthURL)
	if err != nil || (base.Scheme != "https" && base.Scheme != "http") || base.Host == "" {
		return nil, fmt.Errorf("auth URL %q is not an absolute http(s) URL", cfg.AuthURL)
	}
	transport := cleanhttp.DefaultPooledTransport()
	transport.MaxIdleConnsPerHost = max(transport.MaxIdleConnsPerHost, callsAtOnce(cfg))
	transport.MaxIdleConns = max(transport.MaxIdleConns, transport.MaxIdleConnsPerHost)
	if cfg.CACertPEM != "" {
		roots, err := rootsWith(cfg.CACertPEM)
		if err != nil {
			return nil, err
		}
		transport.TLSClientConfig = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	}
	return &Client{
		cfg:    cfg,
		issuer: IssuerURL(cfg.AuthURL, cfg.TenantID, cfg.RealmID, cfg.ApplicationID),
		httpClient: &http.Client{
			Transport: transport,
			Timeout:   cfg.Timeout,
			// A redirected POST turns into a GET elsewhere whose 200 would
			// look like success: never follow one.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		clock:       cfg.Clock,
		credentials: credentialsOf(cfg.ClientID, cfg.ClientSecret),
	}, nil
}

// credentialsOf are the client's credentials in each form it sends them:
// the secret, the id:secret pair Basic encodes, and the Authorization
// header's value, whose base64 a gateway may echo whole. The client id
// alone is no secret: a message that names it keeps it.
func credentialsOf(clientID string, secret Secret) []Secret {
	basic := NewSecret(clientID + ":" + secret.Reveal())
	basic.public = clientID + ":"
	return []Secret{secret, basic, NewSecret("Basic " + base64.StdEncoding.EncodeToString([]byte(basic.Reveal())))}
}

// Scrub removes the client's credentials and the tokens given from text
// quoted from Beyond Identity, in every form Scrub knows.
func (c *Client) Scrub(text string, tokens ...Secret) string {
	return Scrub(text, slices.Concat(tokens, c.credentials)...)
}

// callsAtOnce is the most calls the Config's limiters let run at once. The
// pool keeps that many connections idle between calls: with fewer (Go keeps
// two, go-cleanhttp one per CPU and one), every call beyond them closes its
// connection when done and the next opens one anew, a TCP and TLS handshake
// per credential under load.
func callsAtOnce(cfg Config) int {
	n := 0
	for _, l := range []*Limiter{cfg.Limiter, cfg.RevokeLimiter} {
		if l != nil {
			n += l.Ceiling()
		}
	}
	return n
}

// rootsWith returns the system roots plus the certificates of pemBundle.
func rootsWith(pemBundle string) (*x509.CertPool, error) {
	roots, err := x509.SystemCertPool()
	if err != nil || roots == nil {
		roots = x509.NewCertPool()
	}
	if !roots.AppendCertsFromPEM([]byte(pemBundle)) {
		return nil, errors.New("CA certificate bundle holds no PEM certificate")
	}
	return roots, nil
}

// IssuerURL is the URL every OAuth endpoint of an application hangs below.
func IssuerURL(authURL, tenantID, realmID, applicationID string) string {
	return realmURL(authURL, tenantID, realmID) + "/applications/" + url.PathEscape(applicationID)
}

// realmURL is the URL of a realm on the auth host, below which hang its
// applications and its introspection endpoint.
func realmURL(authURL, tenantID, realmID string) string {
	return strings.TrimRight(authURL, "/") + "/v1/tenants/" + url.PathEscape(tenantID) + "/realms/" + url.PathEscape(realmID)
}

// TokenURL is the client-credentials endpoint of an issuer.
func TokenURL(issuer string) string { return issuer + "/token" }

// Issuer is the issuer URL of the configured application.
func (c *Client) Issuer() string { return c.issuer }

// ClientID is the client id the Client authenticates with.
func (c *Client) ClientID() string { return c.cfg.ClientID }

// SecretFingerprint is the caller's name for the client's secret, as
// configured.
func (c *Client) SecretFingerprint() string { return c.cfg.SecretFingerprint }

// HasSecret reports, in constant time, whether the Client authenticates
// with secret.
func (c *Client) HasSecret(secret Secret) bool {
	return subtle.ConstantTimeCompare([]byte(c.cfg.ClientSecret.Reveal()), []byte(secret.Reveal())) == 1
}

// CloseIdleConnections releases pooled connections of a Client that is
// being replaced.
func (c *Client) CloseIdleConnections() { c.httpClient.CloseIdleConnections() }

func (c *Client) introspectURL() string {
	return realmURL(c.cfg.AuthURL, c.cfg.TenantID, c.cfg.RealmID) + "/introspect"
}

// answer is an HTTP response read in full (within MaxResponseBytes).
type answer struct {
	status int
	header http.Header
	body   []byte
	// attempts is how many requests the call made to get it.
	attempts int
	// url is where the request went, for the message of a 404.
	url string
}

// postForm sends a form with the application's Basic credentials once and
// reads the answer. A nil error means an answer arrived, of any status.
func (c *Client) postForm(ctx context.Context, call, endpoint string, form url.Values) (*answer, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, &TransportError{Call: call, Err: err}
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if c.cfg.UserAgent != "" {
		req.Header.Set("User-Agent", c.cfg.UserAgent)
	}
	// Beyond Identity recommends Basic authentication and documents it with
	// the raw id and secret (curl -u), so they are not form-encoded first.
	req.SetBasicAuth(c.cfg.ClientID, c.cfg.ClientSecret.Reveal())

	resp, err := c.httpClient.Do(req)
	if err != nil {
		return nil, &TransportError{Call: call, Err: err, Budget: c.cfg.Timeout}
	}
	defer resp.Body.Close()
	body, err := readBody(resp, MaxResponseBytes)
	if err != nil {
		return nil, &TransportError{Call: call, Err: fmt.Errorf("reading the answer: %w", err), Budget: c.cfg.Timeout}
	}
	if len(body) > MaxResponseBytes {
		return nil, &ResponseError{Call: call, StatusCode: resp.StatusCode, Reason: fmt.Sprintf("body larger than %d bytes", MaxResponseBytes)}
	}
	return &answer{status: resp.StatusCode, header: resp.Header, body: body, url: endpoint}, nil
}

// maxPresize bounds the buffer readBody sets aside before a byte has come:
// an answer that announces a large body and stalls holds no more.
const maxPresize = 64 << 10

// readBody reads an answer's body, up to limit+1 bytes so that a longer
// one shows. It reads into one buffer of the announced length when there
// is one (up to maxPresize): io.ReadAll starts at 512 bytes and would grow
// four times for a token answer.
func readBody(resp *http.Response, limit int64) ([]byte, error) {
	size := int64(512)
	if resp.ContentLength >= 0 {
		size = min(resp.ContentLength, limit, maxPresize) + 1 // the 1: room to see EOF, or one byte too many
	}
	body, r := make([]byte, 0, size), io.LimitReader(resp.Body, limit+1)
	for {
		if len(body) == cap(body) {
			body = append(body, 0)[:len(body)]
		}
		n, err := r.Read(body[len(body):cap(body)])
		body = body[:len(body)+n]
		switch {
		case err == io.EOF:
			return body, nil
		case err != nil:
			return body, err
		}
	}
}

// errorFor turns a non-200 answer into an error: an APIError for error
// statuses, a ResponseError for anything else (such as a redirect).
func (c *Client) errorFor(call string, a *answer, secrets ...Secret) error {
	if a.status >= 400 {
		// The Basic credentials too, should an error page echo the header.
		apiErr := ParseErrorBody(call, a.status, a.header, a.body, c.clock.Now(), slices.Concat(secrets, c.credentials)...)
		apiErr.Attempts = a.attempts
		if a.status == http.StatusNotFound {
			apiErr.URL = shownURL(a.url)
		}
		return apiErr
	}
	reason := "unexpected status"
	if location := a.header.Get("Location"); location != "" && a.status >= 300 {
		reason = "unexpected redirect; check auth_url"
	}
	return &ResponseError{Call: call, StatusCode: a.status, Reason: reason}
}

// isJSONObject reports whether body is a JSON object, ignoring whitespace.
func isJSONObject(body []byte) bool {
	trimmed := bytes.TrimSpace(body)
	return len(trimmed) > 0 && trimmed[0] == '{'
}
