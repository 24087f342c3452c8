package jsonstore

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/hashicorp/vault/sdk/logical"
)

func TestPutThenGetGivesTheValueBack(t *testing.T) {
	ctx, s := context.Background(), new(logical.InmemStorage)
	type record struct {
		Name string `json:"name"`
	}
	if found, err := Get(ctx, s, "k", "the record", new(record)); found || err != nil {
		t.Fatalf("an absent entry: found %v, %v", found, err)
	}
	if err := Put(ctx, s, "k", "the record", record{Name: "a"}); err != nil {
		t.Fatal(err)
	}
	var got record
	if found, err := Get(ctx, s, "k", "the record", &got); !found || err != nil || got.Name != "a" {
		t.Fatalf("got %+v, found %v, %v", got, found, err)
	}
}

func TestErrorsNameTheEntry(t *testing.T) {
	ctx, s := context.Background(), new(logical.InmemStorage)
	if err := s.Put(ctx, &logical.StorageEntry{Key: "k", Value: []byte("{")}); err != nil {
		t.Fatal(err)
	}
	_, err := Get(ctx, s, "k", "the record", new(map[string]any))
	if err == nil || !strings.HasPrefix(err.Error(), "decoding the record: ") {
		t.Fatalf("err %v, want one that names the record", err)
	}
	if err := Put(ctx, s, "k", "the record", func() {}); err == nil || !strings.HasPrefix(err.Error(), "encoding the record: ") {
		t.Fatalf("err %v, want one that names the record", err)
	}
	failing := &failingStorage{}
	if err := Put(ctx, failing, "k", "the record", 1); !errors.Is(err, errBroken) || !strings.HasPrefix(err.Error(), "writing the record: ") {
		t.Fatalf("err %v, want the storage's error, naming the record", err)
	}
}

var errBroken = errors.New("broken")

type failingStorage struct{ logical.InmemStorage }

func (f *failingStorage) Put(context.Context, *logical.StorageEntry) error { return errBroken }
