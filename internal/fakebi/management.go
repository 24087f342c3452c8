package fakebi

import (
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// scopeTokensRead lets a Bearer token list tokens.
const scopeTokensRead = "tokens:read"

// maxPageSize is the largest page the list call returns, and its default.
const maxPageSize = 100

// tokenList is the answer of the Management API list call.
type tokenList struct {
	Tokens        []tokenListItem `json:"tokens"`
	TotalSize     int             `json:"total_size"`
	NextPageToken string          `json:"next_page_token,omitempty"`
	lastSeq       int64           // cursor of the last token on the page
}

// tokenListItem describes one token without revealing it.
type tokenListItem struct {
	ID          string      `json:"id"`
	DisplayName string      `json:"display_name"`
	Scopes      []string    `json:"scopes"`
	TokenSuffix string      `json:"token_suffix"`
	TokenFormat TokenFormat `json:"token_format"`
	Expires     string      `json:"expires"`
	IssuedAt    string      `json:"issued_at"`
	TokenType   string      `json:"token_type"`
}

// listQuery is a validated list request.
type listQuery struct {
	pageSize int
	after    int64 // mint sequence number the page starts after
}

// handleListTokens serves GET {api}/v1/tenants/{t}/realms/{r}/applications/{a}/tokens.
func (s *Server) handleListTokens(w http.ResponseWriter, r *http.Request, in *incoming) {
	if !allowMethods(w, r, http.MethodGet) || !s.authorizeManagement(w, in, scopeTokensRead) {
		return
	}
	rt := in.route
	if _, ok := s.application(rt.tenant, rt.realm, rt.app); !ok {
		writeAPIError(w, http.StatusNotFound, "not_found", "application not found")
		return
	}
	q, err := parseListQuery(r.URL.Query(), rt.app)
	if err != nil {
		writeAPIError(w, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	writeJSON(w, http.StatusOK, s.listTokens(appKey{rt.tenant, rt.realm, rt.app}, q))
}

// parseListQuery validates the principal and paging parameters.
func parseListQuery(query url.Values, appID string) (listQuery, error) {
	if query.Get("principal_type") != "application" {
		return listQuery{}, errors.New("principal_type must be application")
	}
	if query.Get("principal_id") != appID {
		return listQuery{}, errors.New("principal_id must be the application of the path")
	}
	q := listQuery{pageSize: maxPageSize}
	if raw := query.Get("page_size"); raw != "" {
		size, err := strconv.Atoi(raw)
		if err != nil || size < 1 || size > maxPageSize {
			return listQuery{}, errors.New("page_size must be a whole number from 1 to 100")
		}
		q.pageSize = size
	}
	if raw := query.Get("page_token"); raw != "" {
		after, err := decodePageToken(raw)
		if err != nil {
			return listQuery{}, errors.New("page_token is not one this server issued")
		}
		q.after = after
	}
	return q, nil
}

// The page token is a cursor, the mint sequence number of the last token
// shown, so that tokens revoked between pages do not shift the next page.
func encodePageToken(seq int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(seq, 10)))
}

// decodePageToken reverses encodePageToken.
func decodePageToken(token string) (int64, error) {
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		return 0, err
	}
	seq, err := strconv.ParseInt(string(raw), 10, 64)
	if err == nil && seq < 1 {
		err = errors.New("page token out of range")
	}
	return seq, err
}

// listTokens returns one page of the unrevoked, unexpired tokens of owner.
func (s *Server) listTokens(owner appKey, q listQuery) tokenList {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	list := tokenList{Tokens: []tokenListItem{}}
	for _, tok := range s.tokens {
		if tok.owner() != owner || !tok.activeAt(now) {
			continue
		}
		list.TotalSize++
		if tok.seq <= q.after {
			continue
		}
		if len(list.Tokens) == q.pageSize {
			list.NextPageToken = encodePageToken(list.lastSeq)
			continue
		}
		list.Tokens = append(list.Tokens, listItem(tok))
		list.lastSeq = tok.seq
	}
	return list
}

// listItem describes tok for the list call.
func listItem(tok *mintedToken) tokenListItem {
	return tokenListItem{
		ID:          tok.ID,
		DisplayName: tok.ClientID,
		Scopes:      sortedUnique(tok.Scopes),
		TokenSuffix: suffix(tok.Value),
		TokenFormat: tok.Format,
		Expires:     tok.ExpiresAt.UTC().Format(time.RFC3339),
		IssuedAt:    tok.IssuedAt.UTC().Format(time.RFC3339),
		TokenType:   "access",
	}
}

// handleDeleteToken serves
// DELETE {api}/v1/tenants/{t}/realms/{r}/applications/{a}/tokens/{token_id}.
func (s *Server) handleDeleteToken(w http.ResponseWriter, r *http.Request, in *incoming) {
	if !allowMethods(w, r, http.MethodDelete) || !s.authorizeManagement(w, in, scopeTokensDelete) {
		return
	}
	rt := in.route
	if _, ok := s.application(rt.tenant, rt.realm, rt.app); !ok {
		writeAPIError(w, http.StatusNotFound, "not_found", "application not found")
		return
	}
	if !s.revokeByID(rt.tokenID, appKey{rt.tenant, rt.realm, rt.app}) {
		writeAPIError(w, http.StatusNotFound, "not_found", "token not found")
		return
	}
	writeEmpty(w)
}

// revokeByID revokes the token with the given jti when it is a live token
// of owner. A token already revoked or expired no longer exists for the
// Management API, like one never minted.
func (s *Server) revokeByID(id string, owner appKey) bool {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	tok, ok := s.byID[id]
	if !ok || tok.owner() != owner || !tok.activeAt(now) {
		return false
	}
	tok.RevokedAt = now
	return true
}
