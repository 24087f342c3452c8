package beyondidentity

// Test scaffolding: storage that fails or records where a test says.

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"

	"github.com/hashicorp/vault/sdk/logical"
)

// Test scaffolding: storage that fails or records where a test says.

// failingStorage fails writes, deletes or lists of chosen keys, to inject
// storage errors.
type failingStorage struct {
	logical.Storage
	failPut, failDelete, failList atomic.Pointer[string] // key prefix to fail
}

func (s *failingStorage) List(ctx context.Context, prefix string) ([]string, error) {
	if failed := s.failList.Load(); failed != nil && strings.HasPrefix(prefix, *failed) {
		return nil, errInjected
	}
	return s.Storage.List(ctx, prefix)
}

var errInjected = errors.New("injected storage failure")

func (s *failingStorage) Put(ctx context.Context, entry *logical.StorageEntry) error {
	if prefix := s.failPut.Load(); prefix != nil && strings.HasPrefix(entry.Key, *prefix) {
		return errInjected
	}
	return s.Storage.Put(ctx, entry)
}

func (s *failingStorage) Delete(ctx context.Context, key string) error {
	if prefix := s.failDelete.Load(); prefix != nil && strings.HasPrefix(key, *prefix) {
		return errInjected
	}
	return s.Storage.Delete(ctx, key)
}

// withFailingStorage puts a failingStorage in front of the backend's.
func (e *testEnv) withFailingStorage() *failingStorage {
	failing := &failingStorage{Storage: e.storage}
	e.storage = failing
	return failing
}

// recordingStorage counts the writes under a prefix.
type recordingStorage struct {
	logical.Storage
	prefix string
	puts   atomic.Int32
}

func (s *recordingStorage) Put(ctx context.Context, entry *logical.StorageEntry) error {
	if strings.HasPrefix(entry.Key, s.prefix) {
		s.puts.Add(1)
	}
	return s.Storage.Put(ctx, entry)
}
