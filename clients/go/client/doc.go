// Package client is a small helper over the generated mlxserve.v1 gRPC client: a Session that
// multiplexes many requests over one Generate stream, each with its own event channel and Cancel,
// prompt builders (with tools the model may call), structured output formats for
// SamplingParams.StructuredOutput, a Completion with the model's tool calls (from Client.Complete,
// or gathered from a request's events by Request.Result and Client.Collect), and thin
// Tokenize/Detokenize calls. Errors carry the offending field.
//
//	c, err := client.Dial("localhost:50051")
//	...
//	session, err := c.NewSession(ctx)
//	defer session.Close()
//	req, err := session.Start(&mlxservev1.StartGeneration{
//		RequestId: "a",
//		Prompt:    client.Text("Once upon a time"),
//		Sampling:  &mlxservev1.SamplingParams{MaxTokens: proto.Int32(16)},
//	})
//	for event := range req.Events() {
//		fmt.Print(event.GetDelta().GetText())
//	}
//	if err := req.Err(); err != nil { ... }
package client
