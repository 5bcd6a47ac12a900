// Package client is a small helper over the generated mlxserve.v1 gRPC client: a Session that
// multiplexes many requests over one Generate stream, each with its own event channel and Cancel,
// prompt builders, and thin Tokenize/Detokenize/Complete calls whose errors carry the offending
// field.
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
