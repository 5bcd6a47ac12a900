package client

import (
	"context"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	mlxservev1 "mlx-batch-server/clients/go/mlxserve/v1"
)

// Client is a connection to one server: the generated client (RPC) plus thin helpers whose
// errors are *Error (with the offending field for InvalidArgument).
type Client struct {
	// RPC is the generated client, for calls and options the helpers do not cover.
	RPC  mlxservev1.GenerationServiceClient
	conn *grpc.ClientConn
}

// Dial connects to target (e.g. "localhost:50051"). Without options the connection is
// plaintext; pass grpc.WithTransportCredentials for TLS.
func Dial(target string, opts ...grpc.DialOption) (*Client, error) {
	if len(opts) == 0 {
		opts = []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	}
	conn, err := grpc.NewClient(target, opts...)
	if err != nil {
		return nil, err
	}
	return &Client{RPC: mlxservev1.NewGenerationServiceClient(conn), conn: conn}, nil
}

// New wraps a connection the caller owns (Close does not close it).
func New(conn grpc.ClientConnInterface) *Client {
	return &Client{RPC: mlxservev1.NewGenerationServiceClient(conn)}
}

// Close closes the connection Dial opened.
func (c *Client) Close() error {
	if c.conn == nil {
		return nil
	}
	return c.conn.Close()
}

// Complete runs one request on the default model with the Complete RPC and returns the whole
// completion, with the model's tool calls (Started is nil: the RPC sends no events). sampling may
// be nil (all defaults).
func (c *Client) Complete(ctx context.Context, prompt *mlxservev1.Prompt, sampling *mlxservev1.SamplingParams) (*Completion, error) {
	return c.CompleteRequest(ctx, &mlxservev1.CompleteRequest{Prompt: prompt, Sampling: sampling})
}

// CompleteRequest is Complete for a request given whole: on another model, or with a LoRA adapter
// (its name in Model or Adapter).
func (c *Client) CompleteRequest(ctx context.Context, request *mlxservev1.CompleteRequest) (*Completion, error) {
	response, err := c.RPC.Complete(ctx, request)
	if err != nil {
		return nil, fromCallError(err)
	}
	return &Completion{
		Model:     response.GetModel(),
		Text:      response.GetText(),
		TokenIds:  response.GetTokenIds(),
		Logprobs:  response.GetLogprobs(),
		ToolCalls: response.GetToolCalls(),
		Finished:  response.GetFinished(),
	}, nil
}

// Tokenize returns the token ids the prompt becomes on the default model, exactly as a request
// would feed them to the model (chat template and special tokens included).
func (c *Client) Tokenize(ctx context.Context, prompt *mlxservev1.Prompt) ([]int32, error) {
	response, err := c.RPC.Tokenize(ctx, &mlxservev1.TokenizeRequest{Prompt: prompt})
	if err != nil {
		return nil, fromCallError(err)
	}
	return response.GetTokenIds(), nil
}

// Detokenize returns the text token ids decode to on the default model.
func (c *Client) Detokenize(ctx context.Context, tokenIDs []int32, skipSpecialTokens bool) (string, error) {
	response, err := c.RPC.Detokenize(ctx, &mlxservev1.DetokenizeRequest{TokenIds: tokenIDs, SkipSpecialTokens: skipSpecialTokens})
	if err != nil {
		return "", fromCallError(err)
	}
	return response.GetText(), nil
}

// LoadAdapter reads a LoRA adapter (mlx-lm's or PEFT's directory, on the server's disk) and serves
// it as name; it returns the adapter as Models lists it (with Parent and Adapter set). Errors:
// InvalidArgument for a bad name or adapter files, AlreadyExists for a name already served.
func (c *Client) LoadAdapter(ctx context.Context, name, path string) (*mlxservev1.ModelInfo, error) {
	response, err := c.RPC.LoadAdapter(ctx, &mlxservev1.LoadAdapterRequest{Name: name, Path: path})
	if err != nil {
		return nil, fromCallError(err)
	}
	return response.GetModel(), nil
}

// UnloadAdapter stops serving a LoRA adapter; it returns once the requests using it have
// finished. Errors: NotFound for a name not served.
func (c *Client) UnloadAdapter(ctx context.Context, name string) error {
	_, err := c.RPC.UnloadAdapter(ctx, &mlxservev1.UnloadAdapterRequest{Name: name})
	return fromCallError(err)
}

// Models lists the models the server serves: the default model first, then the LoRA adapters
// (whose Parent is the base model's id).
func (c *Client) Models(ctx context.Context) ([]*mlxservev1.ModelInfo, error) {
	response, err := c.RPC.ListModels(ctx, &mlxservev1.ListModelsRequest{})
	if err != nil {
		return nil, fromCallError(err)
	}
	return response.GetModels(), nil
}

// Status returns the engine's state and load.
func (c *Client) Status(ctx context.Context) (*mlxservev1.GetServerStatusResponse, error) {
	response, err := c.RPC.GetServerStatus(ctx, &mlxservev1.GetServerStatusRequest{})
	return response, fromCallError(err)
}
