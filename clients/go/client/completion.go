package client

import (
	"context"
	"errors"
	"io"

	"google.golang.org/grpc/codes"

	mlxservev1 "mlx-batch-server/clients/go/mlxserve/v1"
)

// Completion is a whole generation: the text, token ids, log probabilities and tool calls the
// model produced, and how it finished. Client.Complete returns one; Request.Result and
// Client.Collect gather one from a request's events.
type Completion struct {
	// Model is the model that served the request.
	Model string
	// Text is the generated text (without a matched stop string or the markup of tool calls).
	Text     string
	TokenIds []int32
	// Logprobs has one entry per token id when SamplingParams.Logprobs was set.
	Logprobs []*mlxservev1.TokenLogprob
	// ToolCalls are the tools the model called, in order; the finish reason is then
	// FINISH_REASON_TOOL_CALLS. ParseArguments decodes their arguments.
	ToolCalls []*mlxservev1.ToolCall
	// Started is the request's started event (prompt and cached token counts); nil from Complete.
	Started *mlxservev1.GenerationStarted
	// Finished has the finish reason, the stop string or token, and the usage.
	Finished *mlxservev1.GenerationFinished
}

// FinishReason is why the generation ended.
func (c *Completion) FinishReason() mlxservev1.FinishReason {
	return c.Finished.GetFinishReason()
}

// Message is the assistant turn this completion adds to a chat (its text and tool calls), to
// send back with the tool results (see ToolMessage).
func (c *Completion) Message() *mlxservev1.ChatMessage {
	return &mlxservev1.ChatMessage{Role: "assistant", Content: c.Text, ToolCalls: c.ToolCalls}
}

// add gathers one event; it reports whether the event was the last.
func (c *Completion) add(started *mlxservev1.GenerationStarted, delta *mlxservev1.GenerationDelta, finished *mlxservev1.GenerationFinished) bool {
	switch {
	case started != nil:
		c.Started = started
		c.Model = started.GetModel()
	case delta != nil:
		c.Text += delta.GetText()
		c.TokenIds = append(c.TokenIds, delta.GetTokenIds()...)
		c.Logprobs = append(c.Logprobs, delta.GetLogprobs()...)
		c.ToolCalls = append(c.ToolCalls, delta.GetToolCalls()...)
	case finished != nil:
		c.Finished = finished
		return true
	}
	return false
}

// Result reads the request's remaining events and gathers them. The error is Err's: the request
// was refused, failed, or the stream broke before it finished.
func (r *Request) Result() (*Completion, error) {
	c := &Completion{}
	for event := range r.Events() {
		c.add(event.GetStarted(), event.GetDelta(), event.GetFinished())
	}
	if err := r.Err(); err != nil {
		return nil, err
	}
	if c.Finished == nil {
		return nil, &Error{Code: codes.Internal, Message: "the request's events ended before it finished", RequestID: r.ID}
	}
	return c, nil
}

// Collect runs one request on the default model over GenerateStream and gathers its events into
// the Completion Complete would return (with Started set). sampling may be nil (all defaults).
func (c *Client) Collect(ctx context.Context, prompt *mlxservev1.Prompt, sampling *mlxservev1.SamplingParams) (*Completion, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // ends the call if it has not ended
	stream, err := c.RPC.GenerateStream(ctx, &mlxservev1.GenerateStreamRequest{Prompt: prompt, Sampling: sampling})
	if err != nil {
		return nil, fromCallError(err)
	}
	completion := &Completion{}
	for {
		event, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil, &Error{Code: codes.Internal, Message: "the stream ended before the request finished"}
		}
		if err != nil {
			return nil, fromCallError(err)
		}
		if completion.add(event.GetStarted(), event.GetDelta(), event.GetFinished()) {
			if completion.FinishReason() == mlxservev1.FinishReason_FINISH_REASON_ERROR {
				return nil, fromGenerationError("", completion.Finished.GetError())
			}
			return completion, nil
		}
	}
}
