// Package jsonstore reads and writes JSON entries of a Vault plugin's
// storage, with errors that name the entry: the plugin's records and the
// journal's pages are stored the same way.
package jsonstore

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/hashicorp/vault/sdk/logical"
)

// Get decodes the JSON entry at key into v, and reports whether there was
// one. what names the entry in errors.
func Get(ctx context.Context, s logical.Storage, key, what string, v any) (bool, error) {
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

// Put stores v as JSON at key. what names the entry in errors.
// json.Marshal, unlike logical.StorageEntryJSON's growing buffer, allocates
// the encoding once: a journal's page is written per batch.
func Put(ctx context.Context, s logical.Storage, key, what string, v any) error {
	value, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encoding %s: %w", what, err)
	}
	if err := s.Put(ctx, &logical.StorageEntry{Key: key, Value: value}); err != nil {
		return fmt.Errorf("writing %s: %w", what, err)
	}
	return nil
}
