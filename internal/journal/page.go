package journal

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
)

// page is what storage holds of a page: the entries of one batch that are
// not handed over yet. Earlier versions stored the same shape.
type page[E any] struct {
	Created time.Time    `json:"created"`
	Entries map[string]E `json:"entries"`
}

// getJSON decodes the page at key into v, and reports whether there was
// one.
func getJSON(ctx context.Context, s logical.Storage, key string, v any) (bool, error) {
	entry, err := s.Get(ctx, key)
	if err != nil {
		return false, fmt.Errorf("reading %s: %w", what, err)
	}
	if entry == nil {
		return false, nil
	}
	if err := entry.DecodeJSON(v); err != nil {
		return false, fmt.Errorf("decoding %s: %w", what, err)
	}
	return true, nil
}

// putJSON stores v as JSON at key. json.Marshal, unlike
// logical.StorageEntryJSON's growing buffer, allocates the encoding once: a
// page is written per batch.
func putJSON(ctx context.Context, s logical.Storage, key string, v any) error {
	value, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encoding %s: %w", what, err)
	}
	if err := s.Put(ctx, &logical.StorageEntry{Key: key, Value: value}); err != nil {
		return fmt.Errorf("writing %s: %w", what, err)
	}
	return nil
}
