package fakebi

import (
	"net/http"
	"net/url"
	"time"
)

// adminFormFields are the only form values the admin API shows: none of
// them is a secret or a token.
var adminFormFields = []string{"grant_type", "scope", "expiration_time"}

// adminToken describes a minted token without revealing it.
type adminToken struct {
	ID            string      `json:"id"`
	TenantID      string      `json:"tenant_id"`
	RealmID       string      `json:"realm_id"`
	ApplicationID string      `json:"application_id"`
	TokenFormat   TokenFormat `json:"token_format"`
	Scopes        []string    `json:"scopes"`
	TokenSuffix   string      `json:"token_suffix"`
	IssuedAt      time.Time   `json:"issued_at"`
	ExpiresAt     time.Time   `json:"expires_at"`
	RevokedAt     *time.Time  `json:"revoked_at"`
}

// adminCall describes a recorded call without its secrets.
type adminCall struct {
	Op     Op         `json:"op"`
	Method string     `json:"method"`
	Path   string     `json:"path"`
	Status int        `json:"status"`
	At     time.Time  `json:"at"`
	Form   url.Values `json:"form,omitempty"`
}

// AdminHandler serves a read-only view of the fake for demos and tests run
// in another process: GET /_fake/tokens and GET /_fake/calls. Mount it at
// /_fake/ beside the Server. It never shows a secret or a whole token, and
// its own requests are neither recorded nor rate limited.
func (s *Server) AdminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /_fake/tokens", s.serveAdminTokens)
	mux.HandleFunc("GET /_fake/calls", s.serveAdminCalls)
	return mux
}

// serveAdminTokens lists every minted token.
func (s *Server) serveAdminTokens(w http.ResponseWriter, _ *http.Request) {
	tokens := s.Tokens()
	out := make([]adminToken, 0, len(tokens))
	for _, t := range tokens {
		out = append(out, adminToken{
			ID:            t.ID,
			TenantID:      t.TenantID,
			RealmID:       t.RealmID,
			ApplicationID: t.ApplicationID,
			TokenFormat:   t.Format,
			Scopes:        sortedUnique(t.Scopes),
			TokenSuffix:   suffix(t.Value),
			IssuedAt:      t.IssuedAt,
			ExpiresAt:     t.ExpiresAt,
			RevokedAt:     optionalTime(t.RevokedAt),
		})
	}
	writeJSON(w, http.StatusOK, out)
}

// serveAdminCalls lists every recorded call.
func (s *Server) serveAdminCalls(w http.ResponseWriter, _ *http.Request) {
	calls := s.Calls()
	out := make([]adminCall, 0, len(calls))
	for _, c := range calls {
		out = append(out, adminCall{
			Op: c.Op, Method: c.Method, Path: c.Path, Status: c.Status, At: c.At,
			Form: safeForm(c.Form),
		})
	}
	writeJSON(w, http.StatusOK, out)
}

// safeForm keeps only the form values that are safe to show.
func safeForm(form url.Values) url.Values {
	var out url.Values
	for _, name := range adminFormFields {
		if v, ok := form[name]; ok {
			if out == nil {
				out = url.Values{}
			}
			out[name] = v
		}
	}
	return out
}

// optionalTime maps the zero time to nil, so JSON shows null.
func optionalTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}
