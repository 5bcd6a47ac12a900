package client

import (
	"encoding/json"
	"fmt"

	mlxservev1 "mlx-batch-server/clients/go/mlxserve/v1"
)

// The formats below are values of SamplingParams.StructuredOutput, which constrains the output to
// a format (a oneof, so it holds at most one):
//
//	sampling := &mlxservev1.SamplingParams{MaxTokens: proto.Int32(8), StructuredOutput: client.Choice("yes", "no")}
//
// A format the server cannot compile refuses the request with InvalidArgument naming the field
// (e.g. Field "sampling.json_schema").

// JSONSchema constrains the output to instances of a JSON schema, given as JSON text (a string,
// []byte or json.RawMessage, passed as is) or as a value json.Marshal turns into it (a
// map[string]any, a struct). The error is json.Marshal's.
func JSONSchema(schema any) (*mlxservev1.SamplingParams_JsonSchema, error) {
	text, err := jsonText(schema)
	if err != nil {
		return nil, fmt.Errorf("client: JSON schema: %w", err)
	}
	return &mlxservev1.SamplingParams_JsonSchema{JsonSchema: text}, nil
}

// Regex constrains the whole output to match a regular expression.
func Regex(pattern string) *mlxservev1.SamplingParams_Regex {
	return &mlxservev1.SamplingParams_Regex{Regex: pattern}
}

// Choice constrains the output to exactly one of the given strings.
func Choice(choices ...string) *mlxservev1.SamplingParams_Choice {
	return &mlxservev1.SamplingParams_Choice{Choice: &mlxservev1.Choices{Choices: choices}}
}

// Grammar constrains the output to an EBNF grammar (XGrammar's dialect, as GBNF: `root ::= ...`).
func Grammar(ebnf string) *mlxservev1.SamplingParams_Grammar {
	return &mlxservev1.SamplingParams_Grammar{Grammar: ebnf}
}

// JSONObject constrains the output to any JSON object (OpenAI's response_format json_object).
func JSONObject() *mlxservev1.SamplingParams_JsonObject {
	return &mlxservev1.SamplingParams_JsonObject{JsonObject: &mlxservev1.AnyJsonObject{}}
}

// jsonText is JSON text given as a string, []byte or json.RawMessage, or v marshalled; nil is "".
func jsonText(v any) (string, error) {
	switch v := v.(type) {
	case nil:
		return "", nil
	case string:
		return v, nil
	case []byte:
		return string(v), nil
	case json.RawMessage:
		return string(v), nil
	}
	text, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	return string(text), nil
}
