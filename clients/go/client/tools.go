package client

import (
	"encoding/json"
	"fmt"

	mlxservev1 "mlx-batch-server/clients/go/mlxserve/v1"
)

// Function is a tool the model may call. parameters is the JSON schema of its arguments object:
// JSON text (a string, []byte or json.RawMessage, passed as is), a value json.Marshal turns into
// it (a map[string]any, a struct), or nil for any object. The error is json.Marshal's.
func Function(name, description string, parameters any) (*mlxservev1.Tool, error) {
	text, err := jsonText(parameters)
	if err != nil {
		return nil, fmt.Errorf("client: parameters of tool %q: %w", name, err)
	}
	return &mlxservev1.Tool{Name: name, Description: description, Parameters: text}, nil
}

// ChatWithTools is a chat prompt that offers the model tools; choice may be nil (AUTO). The
// model's calls come on the deltas (GenerationDelta.ToolCalls, gathered in Completion.ToolCalls)
// and end the request with FINISH_REASON_TOOL_CALLS. For several calls in one answer, set
// prompt.GetChat().ParallelToolCalls = proto.Bool(true).
func ChatWithTools(tools []*mlxservev1.Tool, choice *mlxservev1.ToolChoice, messages ...*mlxservev1.ChatMessage) *mlxservev1.Prompt {
	return &mlxservev1.Prompt{Input: &mlxservev1.Prompt_Chat{Chat: &mlxservev1.ChatMessages{
		Messages:   messages,
		Tools:      tools,
		ToolChoice: choice,
	}}}
}

// ToolChoiceAuto lets the model decide between answering and calling tools (the default).
func ToolChoiceAuto() *mlxservev1.ToolChoice {
	return toolChoiceMode(mlxservev1.ToolChoiceMode_TOOL_CHOICE_MODE_AUTO)
}

// ToolChoiceNone has the model answer in text; the tools are not shown to it.
func ToolChoiceNone() *mlxservev1.ToolChoice {
	return toolChoiceMode(mlxservev1.ToolChoiceMode_TOOL_CHOICE_MODE_NONE)
}

// ToolChoiceRequired has the model call one or more of the tools.
func ToolChoiceRequired() *mlxservev1.ToolChoice {
	return toolChoiceMode(mlxservev1.ToolChoiceMode_TOOL_CHOICE_MODE_REQUIRED)
}

// ToolChoiceFunction has the model call the named tool.
func ToolChoiceFunction(name string) *mlxservev1.ToolChoice {
	return &mlxservev1.ToolChoice{Choice: &mlxservev1.ToolChoice_Function{Function: name}}
}

func toolChoiceMode(mode mlxservev1.ToolChoiceMode) *mlxservev1.ToolChoice {
	return &mlxservev1.ToolChoice{Choice: &mlxservev1.ToolChoice_Mode{Mode: mode}}
}

// ToolMessage is the "tool" message that answers a call with its result (e.g. JSON text).
func ToolMessage(call *mlxservev1.ToolCall, result string) *mlxservev1.ChatMessage {
	return &mlxservev1.ChatMessage{Role: "tool", Content: result, ToolCallId: call.GetId(), Name: call.GetName()}
}

// ParseArguments unmarshals a call's arguments (a JSON object) into v, as json.Unmarshal does.
func ParseArguments(call *mlxservev1.ToolCall, v any) error {
	if err := json.Unmarshal([]byte(call.GetArguments()), v); err != nil {
		return fmt.Errorf("client: arguments of call %q: %w", call.GetId(), err)
	}
	return nil
}
