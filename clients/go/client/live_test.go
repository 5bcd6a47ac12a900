// Live tests of the Go client against the project's test server (a tiny random-weight model):
// requests multiplexed on one Generate stream, cancel, Tokenize, refused requests, structured
// output and tool calls.
package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
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
	completion, err := c.Complete(ctx, chat, fixedLength(3))
	if err != nil {
		t.Fatal(err)
	}
	if len(completion.TokenIds) != 3 || completion.FinishReason() != mlxservev1.FinishReason_FINISH_REASON_LENGTH {
		t.Errorf("want 3 tokens and LENGTH, got %v and %v", completion.TokenIds, completion.FinishReason())
	}
	if completion.Model != server.Model {
		t.Errorf("served by %q, want %q", completion.Model, server.Model)
	}
	if len(completion.ToolCalls) != 0 {
		t.Errorf("no tools offered, got calls %v", completion.ToolCalls)
	}
	st, err := c.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.GetEngineState() != mlxservev1.EngineState_ENGINE_STATE_READY {
		t.Errorf("engine state %v, want READY", st.GetEngineState())
	}
}

// Structured output and tool calls. The tiny model's weights are random: only the grammar makes its
// output valid, so the schemas bound every value (enums, booleans) to keep the outputs short.
var person = map[string]any{
	"type": "object",
	"properties": map[string]any{
		"name":  map[string]any{"type": "string", "enum": []string{"Ada", "Grace"}},
		"admin": map[string]any{"type": "boolean"},
	},
	"required": []string{"name", "admin"},
}

var weatherQuestion = client.Message("user", "What is the weather in Paris?")

func greedy(maxTokens int32) *mlxservev1.SamplingParams {
	return &mlxservev1.SamplingParams{Temperature: proto.Float64(0), MaxTokens: proto.Int32(maxTokens)}
}

func weatherTools(t *testing.T) []*mlxservev1.Tool {
	t.Helper()
	weather, err := client.Function("get_weather", "The current weather in a city",
		map[string]any{"type": "object", "properties": map[string]any{"city": map[string]any{"enum": []string{"Paris", "Tokyo"}}}, "required": []string{"city"}})
	if err != nil {
		t.Fatal(err)
	}
	// The schema as JSON text.
	clock, err := client.Function("get_time", "The current time in a timezone",
		`{"type": "object", "properties": {"zone": {"enum": ["UTC", "CET"]}}, "required": ["zone"]}`)
	if err != nil {
		t.Fatal(err)
	}
	return []*mlxservev1.Tool{weather, clock}
}

// checkWeatherCall checks a call of get_weather whose arguments parse and validate.
func checkWeatherCall(t *testing.T, call *mlxservev1.ToolCall) {
	t.Helper()
	if call.GetName() != "get_weather" || call.GetId() == "" {
		t.Fatalf("want a call of get_weather with an id, got %v", call)
	}
	var arguments map[string]any
	if err := client.ParseArguments(call, &arguments); err != nil {
		t.Fatal(err)
	}
	if city := arguments["city"]; len(arguments) != 1 || (city != "Paris" && city != "Tokyo") {
		t.Fatalf("arguments %s do not fit the schema", call.GetArguments())
	}
}

func TestJSONSchemaConstrainsTheOutput(t *testing.T) {
	c, ctx := connect(t)
	text, err := json.Marshal(person)
	if err != nil {
		t.Fatal(err)
	}
	for _, schema := range []any{person, string(text)} {
		format, err := client.JSONSchema(schema)
		if err != nil {
			t.Fatal(err)
		}
		sampling := greedy(200)
		sampling.StructuredOutput = format
		completion, err := c.Complete(ctx, client.Text("A user:"), sampling)
		if err != nil {
			t.Fatal(err)
		}
		if reason := completion.FinishReason(); reason != mlxservev1.FinishReason_FINISH_REASON_STOP {
			t.Fatalf("finish reason %v, want STOP (output %q)", reason, completion.Text)
		}
		var value struct {
			Name  *string `json:"name"`
			Admin *bool   `json:"admin"`
		}
		if err := json.Unmarshal([]byte(completion.Text), &value); err != nil {
			t.Fatalf("the output %q is not JSON: %v", completion.Text, err)
		}
		if value.Name == nil || value.Admin == nil || (*value.Name != "Ada" && *value.Name != "Grace") {
			t.Errorf("the output %q lacks the required keys or breaks the schema", completion.Text)
		}
	}
}

func TestChoiceAndRegexConstrainTheOutput(t *testing.T) {
	c, ctx := connect(t)
	choices := []string{"yes", "no", "maybe"}
	sampling := greedy(20)
	sampling.StructuredOutput = client.Choice(choices...)
	chosen, err := c.Collect(ctx, client.Text("Is it raining?"), sampling)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(choices, chosen.Text) || chosen.FinishReason() != mlxservev1.FinishReason_FINISH_REASON_STOP {
		t.Errorf("got %q (%v), want one of %v", chosen.Text, chosen.FinishReason(), choices)
	}

	session := openSession(t, c, ctx)
	year := greedy(20)
	year.StructuredOutput = client.Regex("(19|20)[0-9]{2}")
	result, err := start(t, session, "", client.Text("A year:"), year).Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(result.Text) != 4 || !(strings.HasPrefix(result.Text, "19") || strings.HasPrefix(result.Text, "20")) {
		t.Errorf("%q does not match the regex", result.Text)
	}
}

func TestRequiredToolChoiceReturnsACall(t *testing.T) {
	c, ctx := connect(t)
	prompt := client.ChatWithTools(weatherTools(t)[:1], client.ToolChoiceRequired(), weatherQuestion)

	session := openSession(t, c, ctx)
	events := readAll(t, start(t, session, "call", prompt, greedy(200)))
	var streamed []*mlxservev1.ToolCall
	for _, event := range events {
		streamed = append(streamed, event.GetDelta().GetToolCalls()...)
	}
	if reason := events[len(events)-1].GetFinished().GetFinishReason(); reason != mlxservev1.FinishReason_FINISH_REASON_TOOL_CALLS {
		t.Fatalf("finish reason %v, want TOOL_CALLS", reason)
	}
	if len(streamed) != 1 {
		t.Fatalf("want one call on the deltas, got %v", streamed)
	}
	checkWeatherCall(t, streamed[0])

	// Complete runs the unary Complete RPC, whose response carries the calls (the interceptor
	// sees unary calls only: a stream would leave methods empty); Collect gathers the stream.
	var methods []string
	record := func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		methods = append(methods, method)
		return invoker(ctx, method, req, reply, cc, opts...)
	}
	recording, err := client.Dial(server.Target, grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithUnaryInterceptor(record))
	if err != nil {
		t.Fatal(err)
	}
	defer recording.Close()
	completed, err := recording.Complete(ctx, prompt, greedy(200))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(methods, []string{mlxservev1.GenerationService_Complete_FullMethodName}) {
		t.Errorf("Complete made the unary calls %v, want just Complete", methods)
	}
	collected, err := c.Collect(ctx, prompt, greedy(200))
	if err != nil {
		t.Fatal(err)
	}
	for name, completion := range map[string]*client.Completion{"Complete": completed, "Collect": collected} {
		if completion.FinishReason() != mlxservev1.FinishReason_FINISH_REASON_TOOL_CALLS || completion.Text != "" || len(completion.ToolCalls) != 1 {
			t.Fatalf("%s: want one call, no text and TOOL_CALLS, got %q, %v, %v", name, completion.Text, completion.ToolCalls, completion.FinishReason())
		}
		checkWeatherCall(t, completion.ToolCalls[0])
		if completion.ToolCalls[0].GetArguments() != streamed[0].GetArguments() {
			t.Errorf("%s: greedy, want the same call, got %s and %s", name, completion.ToolCalls[0].GetArguments(), streamed[0].GetArguments())
		}
	}
}

func TestToolCallRoundTrip(t *testing.T) {
	c, ctx := connect(t)
	tools := weatherTools(t)
	first, err := c.Complete(ctx, client.ChatWithTools(tools, client.ToolChoiceFunction("get_weather"), weatherQuestion), greedy(200))
	if err != nil {
		t.Fatal(err)
	}
	if first.FinishReason() != mlxservev1.FinishReason_FINISH_REASON_TOOL_CALLS || len(first.ToolCalls) != 1 {
		t.Fatalf("want one call and TOOL_CALLS, got %v, %v", first.ToolCalls, first.FinishReason())
	}
	call := first.ToolCalls[0]
	checkWeatherCall(t, call)

	const result = `{"temperature_celsius":21,"sky":"clear"}`
	second := client.ChatWithTools(tools, nil, weatherQuestion, first.Message(), client.ToolMessage(call, result))
	if m := second.GetChat().GetMessages()[2]; m.GetRole() != "tool" || m.GetToolCallId() != call.GetId() || m.GetName() != "get_weather" {
		t.Fatalf("the tool message %v does not answer the call", m)
	}
	session := openSession(t, c, ctx)
	answer, err := start(t, session, "answer", second, greedy(16)).Result()
	if err != nil {
		t.Fatal(err)
	}
	if answer.Finished.GetUsage().GetPromptTokens() <= first.Finished.GetUsage().GetPromptTokens() {
		t.Errorf("the second prompt (%d tokens) is not longer than the first (%d): the call and its result are missing",
			answer.Finished.GetUsage().GetPromptTokens(), first.Finished.GetUsage().GetPromptTokens())
	}
	ids, err := c.Tokenize(ctx, second)
	if err != nil {
		t.Fatal(err)
	}
	if rendered, err := c.Detokenize(ctx, ids, false); err != nil || !strings.Contains(rendered, result) {
		t.Errorf("the rendered prompt lacks the tool result (%v): %q", err, rendered)
	}
}

func TestInvalidJSONSchemaNamesTheField(t *testing.T) {
	c, ctx := connect(t)
	session := openSession(t, c, ctx)
	for _, schema := range []any{map[string]any{"type": "nonsense"}, "{not json"} {
		format, err := client.JSONSchema(schema)
		if err != nil {
			t.Fatal(err)
		}
		sampling := &mlxservev1.SamplingParams{MaxTokens: proto.Int32(2), StructuredOutput: format}
		_, err = c.Complete(ctx, client.Text("Hi"), sampling)
		var refused *client.Error
		if !errors.As(err, &refused) || refused.Code != codes.InvalidArgument || refused.Field != "sampling.json_schema" {
			t.Errorf("Complete with schema %v: got %v, want InvalidArgument on sampling.json_schema", schema, err)
		}
		_, err = start(t, session, "", client.Text("Hi"), sampling).Result()
		if !errors.As(err, &refused) || refused.Code != codes.InvalidArgument || refused.Field != "sampling.json_schema" {
			t.Errorf("a session request with schema %v: got %v, want InvalidArgument on sampling.json_schema", schema, err)
		}
	}
	if _, err := client.JSONSchema(map[string]any{"bad": func() {}}); err == nil {
		t.Error("a schema json.Marshal cannot encode must be an error")
	}
}

func TestLoraAdapterLoadSelectUnload(t *testing.T) {
	c, ctx := connect(t)
	root, err := filepath.Abs(filepath.Join("..", "..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(root, "test", "fixtures", "lora", "peft-rslora")
	info, err := c.LoadAdapter(ctx, "go-lora", path)
	if err != nil {
		t.Fatal(err)
	}
	if info.GetId() != "go-lora" || info.GetParent() != server.Model || info.GetAdapter().GetRank() != 8 {
		t.Errorf("loaded %v, want go-lora of %q with rank 8", info, server.Model)
	}
	models, err := c.Models(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(models) != 2 || models[1].GetId() != "go-lora" || models[1].GetParent() != server.Model {
		t.Errorf("models %v, want the base model then go-lora", models)
	}
	prompt := &mlxservev1.Prompt{Input: &mlxservev1.Prompt_Text{Text: "abc"}}
	byModel, err := c.CompleteRequest(ctx, &mlxservev1.CompleteRequest{Model: proto.String("go-lora"), Prompt: prompt, Sampling: fixedLength(6)})
	if err != nil {
		t.Fatal(err)
	}
	byField, err := c.CompleteRequest(ctx, &mlxservev1.CompleteRequest{Adapter: proto.String("go-lora"), Prompt: prompt, Sampling: fixedLength(6)})
	if err != nil {
		t.Fatal(err)
	}
	if byModel.Model != "go-lora" || byField.Model != "go-lora" || !slices.Equal(byModel.TokenIds, byField.TokenIds) {
		t.Errorf("by model %q %v, by adapter %q %v: want go-lora and the same tokens", byModel.Model, byModel.TokenIds, byField.Model, byField.TokenIds)
	}
	_, err = c.LoadAdapter(ctx, "go-lora", path)
	if status.Code(err) != codes.AlreadyExists {
		t.Errorf("loading go-lora twice: %v, want AlreadyExists", err)
	}
	if err := c.UnloadAdapter(ctx, "go-lora"); err != nil {
		t.Fatal(err)
	}
	_, err = c.CompleteRequest(ctx, &mlxservev1.CompleteRequest{Model: proto.String("go-lora"), Prompt: prompt})
	if status.Code(err) != codes.NotFound {
		t.Errorf("after unloading: %v, want NotFound", err)
	}
	if err := c.UnloadAdapter(ctx, "go-lora"); status.Code(err) != codes.NotFound {
		t.Errorf("unloading twice: %v, want NotFound", err)
	}
}
