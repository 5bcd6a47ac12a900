package client_test

import (
	"context"
	"strings"
	"testing"

	"google.golang.org/grpc/metadata"

	"mlx-batch-server/clients/go/client"
)

func TestWithPromptCacheKeySetsTheMetadata(t *testing.T) {
	cases := map[string][]string{
		"conversation-7": {"conversation-7"},
		// Encoded as the REST adapter encodes a body's key.
		"é 100%": {"%C3%A9%20100%25"},
		"":       nil,
	}
	for key, want := range cases {
		ctx, err := client.WithPromptCacheKey(context.Background(), key)
		if err != nil {
			t.Fatalf("%q: %v", key, err)
		}
		md, _ := metadata.FromOutgoingContext(ctx)
		if got := md.Get("x-prompt-cache-key"); strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("%q: metadata %q, want %q", key, got, want)
		}
	}
	if _, err := client.WithPromptCacheKey(context.Background(), strings.Repeat("é", 129)); err == nil || !strings.Contains(err.Error(), "at most 256 bytes") {
		t.Errorf("a 258-byte key: error %v", err)
	}
}
