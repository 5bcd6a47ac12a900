package client

import (
	"context"
	"fmt"
	"strings"

	"google.golang.org/grpc/metadata"
)

// MaxPromptCacheKeyBytes is the longest prompt cache key, in bytes of UTF-8.
const MaxPromptCacheKeyBytes = 256

// WithPromptCacheKey returns ctx carrying key as the x-prompt-cache-key metadata of the calls
// made with it (a session's: of its whole stream). The key names the prefix a request shares with
// others (a conversation, a user), as OpenAI's prompt_cache_key; a balancer in front of several
// servers routes on it, so such requests meet the server whose prefix cache holds it. An empty key
// is none. Metadata is printable ASCII and HTTP trims spaces at either end, so other bytes, spaces
// and '%' are percent-encoded, as the server's REST adapter sends a body's prompt_cache_key: the
// same key routes the same way from either.
func WithPromptCacheKey(ctx context.Context, key string) (context.Context, error) {
	if key == "" {
		return ctx, nil
	}
	if len(key) > MaxPromptCacheKeyBytes {
		return ctx, fmt.Errorf("prompt cache key: at most %d bytes (UTF-8), got %d", MaxPromptCacheKeyBytes, len(key))
	}
	var b strings.Builder
	for i := 0; i < len(key); i++ {
		c := key[i]
		if c >= 0x21 && c <= 0x7e && c != '%' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return metadata.AppendToOutgoingContext(ctx, "x-prompt-cache-key", b.String()), nil
}
