// Live tests of the Go client against the project's test server (a tiny random-weight model):
// requests multiplexed on one Generate stream, cancel, Tokenize, and refused requests.
package client_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"mlx-batch-server/clients/go/client"
	mlxservev1 "mlx-batch-server/clients/go/mlxserve/v1"
)

var server *liveServer

func TestMain(m *testing.M) {
	runtime.LockOSThread() // see serverProcAttr
	var err error
	server, err = startLiveServer()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	if err := server.stop(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		code = 1
	}
	if code != 0 {
		server.printLog()
	}
	os.Exit(code)
}

func connect(t *testing.T) (*client.Client, context.Context) {
	t.Helper()
	c, err := client.Dial(server.Target)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return c, ctx
}

func openSession(t *testing.T, c *client.Client, ctx context.Context) *client.Session {
	t.Helper()
	session, err := c.NewSession(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(session.Close)
	return session
}

// fixedLength samples greedily and past end-of-sequence tokens, so a request makes exactly
// maxTokens tokens.
func fixedLength(maxTokens int32) *mlxservev1.SamplingParams {
	return &mlxservev1.SamplingParams{Temperature: proto.Float64(0), IgnoreEos: proto.Bool(true), MaxTokens: proto.Int32(maxTokens)}
}

func start(t *testing.T, s *client.Session, id string, prompt *mlxservev1.Prompt, sampling *mlxservev1.SamplingParams) *client.Request {
	t.Helper()
	r, err := s.Start(&mlxservev1.StartGeneration{RequestId: id, Prompt: prompt, Sampling: sampling})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// readAll reads a request's events to the end and checks their order: started, deltas, finished.
func readAll(t *testing.T, r *client.Request) []*mlxservev1.GenerateResponse {
	t.Helper()
	var events []*mlxservev1.GenerateResponse
	for event := range r.Events() {
		if event.GetRequestId() != r.ID {
			t.Errorf("request %q got an event of %q", r.ID, event.GetRequestId())
		}
		events = append(events, event)
	}
	if err := r.Err(); err != nil {
		t.Fatalf("request %q: %v", r.ID, err)
	}
	if len(events) < 2 || events[0].GetStarted() == nil || events[len(events)-1].GetFinished() == nil {
		t.Fatalf("request %q: want started ... finished, got %v", r.ID, events)
	}
	for _, event := range events[1 : len(events)-1] {
		if event.GetDelta() == nil {
			t.Fatalf("request %q: want only deltas between started and finished, got %v", r.ID, event)
		}
	}
	return events
}

func deltaTokens(events []*mlxservev1.GenerateResponse) int {
	n := 0
	for _, event := range events {
		n += len(event.GetDelta().GetTokenIds())
	}
	return n
}

var chat = client.Chat(client.Message("system", "Be brief."), client.Message("user", "Name a colour."))

func TestTwoRequestsMultiplexedOnOneStream(t *testing.T) {
	c, ctx := connect(t)
	textPrompt := client.Text("Hello there, tiny model")
	textTokens, err := c.Tokenize(ctx, textPrompt)
	if err != nil {
		t.Fatal(err)
	}
	chatTokens, err := c.Tokenize(ctx, chat)
	if err != nil {
		t.Fatal(err)
	}
	if len(textTokens) == len(chatTokens) {
		t.Fatal("the prompts must differ in length, so each started event shows whose prompt it counted")
	}

	session := openSession(t, c, ctx)
	text := start(t, session, "text", textPrompt, fixedLength(5))
	chatRequest := start(t, session, "chat", chat, fixedLength(3))
	// Read the second request first: the first one's events wait in its own queue meanwhile.
	chatEvents := readAll(t, chatRequest)
	textEvents := readAll(t, text)

	for _, tc := range []struct {
		id           string
		events       []*mlxservev1.GenerateResponse
		promptTokens int
		maxTokens    int
	}{{"text", textEvents, len(textTokens), 5}, {"chat", chatEvents, len(chatTokens), 3}} {
		started := tc.events[0].GetStarted()
		finished := tc.events[len(tc.events)-1].GetFinished()
		if int(started.GetPromptTokens()) != tc.promptTokens {
			t.Errorf("%s: started.prompt_tokens = %d, want %d", tc.id, started.GetPromptTokens(), tc.promptTokens)
		}
		if finished.GetFinishReason() != mlxservev1.FinishReason_FINISH_REASON_LENGTH {
			t.Errorf("%s: finish reason %v, want LENGTH", tc.id, finished.GetFinishReason())
		}
		if int(finished.GetUsage().GetCompletionTokens()) != tc.maxTokens || deltaTokens(tc.events) != tc.maxTokens {
			t.Errorf("%s: %d completion tokens and %d delta tokens, want %d", tc.id,
				finished.GetUsage().GetCompletionTokens(), deltaTokens(tc.events), tc.maxTokens)
		}
	}

	if err := session.CloseSend(); err != nil {
		t.Fatal(err)
	}
	<-session.Done()
	if err := session.Err(); err != nil {
		t.Errorf("the stream ended with %v, want OK", err)
	}
}

func TestCancelEndsOneRequestAndNotTheOther(t *testing.T) {
	c, ctx := connect(t)
	models, err := c.Models(ctx)
	if err != nil {
		t.Fatal(err)
	}
	session := openSession(t, c, ctx)
	// No max_tokens: without the cancel it would run to the end of the context window.
	endless := start(t, session, "endless", client.Text("Keep talking"), &mlxservev1.SamplingParams{IgnoreEos: proto.Bool(true)})
	short := start(t, session, "short", client.Text("Stop soon"), fixedLength(4))

	started := (<-endless.Events()).GetStarted()
	firstDelta := (<-endless.Events()).GetDelta()
	if started == nil || firstDelta == nil {
		t.Fatalf("want started then a delta, got %v and %v", started, firstDelta)
	}
	if err := endless.Cancel(); err != nil {
		t.Fatal(err)
	}
	var rest []*mlxservev1.GenerateResponse
	for event := range endless.Events() {
		rest = append(rest, event)
	}
	if err := endless.Err(); err != nil {
		t.Fatalf("a cancelled request is not an error, got %v", err)
	}
	finished := rest[len(rest)-1].GetFinished()
	if finished.GetFinishReason() != mlxservev1.FinishReason_FINISH_REASON_CANCELLED {
		t.Fatalf("finish reason %v, want CANCELLED", finished.GetFinishReason())
	}
	made := int(finished.GetUsage().GetCompletionTokens())
	if made != len(firstDelta.GetTokenIds())+deltaTokens(rest) {
		t.Errorf("usage says %d tokens, the deltas carried %d", made, len(firstDelta.GetTokenIds())+deltaTokens(rest))
	}
	if room := int(models[0].GetContextLength() - started.GetPromptTokens()); made >= room {
		t.Errorf("the cancelled request made %d tokens, as many as the context holds (%d)", made, room)
	}

	shortEvents := readAll(t, short)
	if reason := shortEvents[len(shortEvents)-1].GetFinished().GetFinishReason(); reason != mlxservev1.FinishReason_FINISH_REASON_LENGTH {
		t.Errorf("the other request finished with %v, want LENGTH", reason)
	}
	if n := deltaTokens(shortEvents); n != 4 {
		t.Errorf("the other request made %d tokens, want 4", n)
	}
}

func TestTokenizeTextAndChat(t *testing.T) {
	c, ctx := connect(t)
	const text = "Hello, world"
	ids, err := c.Tokenize(ctx, client.Text(text))
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) == 0 {
		t.Fatal("no token ids for text")
	}
	if decoded, err := c.Detokenize(ctx, ids, true); err != nil || decoded != text {
		t.Errorf("Detokenize(Tokenize(%q)) = %q, %v", text, decoded, err)
	}
	if again, err := c.Tokenize(ctx, client.Tokens(ids...)); err != nil || !slices.Equal(again, ids) {
		t.Errorf("token input must come back as is: %v, %v", again, err)
	}

	chatIDs, err := c.Tokenize(ctx, chat)
	if err != nil {
		t.Fatal(err)
	}
	rendered, err := c.Detokenize(ctx, chatIDs, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, message := range chat.GetChat().GetMessages() {
		if !strings.Contains(rendered, message.GetContent()) {
			t.Errorf("the rendered chat %q lacks %q", rendered, message.GetContent())
		}
	}
	contentOnly, err := c.Tokenize(ctx, client.Text("Name a colour."))
	if err != nil {
		t.Fatal(err)
	}
	if len(chatIDs) <= len(contentOnly) {
		t.Errorf("the chat has %d tokens, no more than its last message alone (%d)", len(chatIDs), len(contentOnly))
	}
}

func TestInvalidTemperatureNamesTheField(t *testing.T) {
	c, ctx := connect(t)
	bad := &mlxservev1.SamplingParams{Temperature: proto.Float64(-1), MaxTokens: proto.Int32(2)}

	_, err := c.Complete(ctx, client.Text("Hi"), bad)
	var refused *client.Error
	if !errors.As(err, &refused) || refused.Code != codes.InvalidArgument || refused.Field != "sampling.temperature" {
		t.Fatalf("Complete with temperature -1: got %v, want InvalidArgument on sampling.temperature", err)
	}
	if status.Code(err) != codes.InvalidArgument {
		t.Errorf("status.Code = %v, want InvalidArgument", status.Code(err))
	}

	session := openSession(t, c, ctx)
	badRequest := start(t, session, "bad", client.Text("Hi"), bad)
	good := start(t, session, "good", client.Text("Hi"), fixedLength(2))
	var events []*mlxservev1.GenerateResponse
	for event := range badRequest.Events() {
		events = append(events, event)
	}
	if len(events) != 1 || events[0].GetError() == nil {
		t.Fatalf("a refused request gets one error event, got %v", events)
	}
	err = badRequest.Err()
	if !errors.As(err, &refused) || refused.Code != codes.InvalidArgument || refused.Field != "sampling.temperature" || refused.RequestID != "bad" {
		t.Fatalf("got %v, want InvalidArgument on sampling.temperature for request bad", err)
	}
	// One refused request does not end the stream.
	goodEvents := readAll(t, good)
	if reason := goodEvents[len(goodEvents)-1].GetFinished().GetFinishReason(); reason != mlxservev1.FinishReason_FINISH_REASON_LENGTH {
		t.Errorf("the good request finished with %v, want LENGTH", reason)
	}
}

func TestCompleteAndStatus(t *testing.T) {
	c, ctx := connect(t)
	response, err := c.Complete(ctx, chat, fixedLength(3))
	if err != nil {
		t.Fatal(err)
	}
	if len(response.GetTokenIds()) != 3 || response.GetFinished().GetFinishReason() != mlxservev1.FinishReason_FINISH_REASON_LENGTH {
		t.Errorf("want 3 tokens and LENGTH, got %v", response)
	}
	if response.GetModel() != server.Model {
		t.Errorf("served by %q, want %q", response.GetModel(), server.Model)
	}
	st, err := c.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.GetEngineState() != mlxservev1.EngineState_ENGINE_STATE_READY {
		t.Errorf("engine state %v, want READY", st.GetEngineState())
	}
}
