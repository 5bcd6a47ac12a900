// The gRPC API from Go with the repository's client (clients/go/client).
// Run from clients/go: go run ./examples/chat
package main

import (
	"context"
	"fmt"
	"log"
	"os"

	"google.golang.org/protobuf/proto"

	"mlx-batch-server/clients/go/client"
	mlxservev1 "mlx-batch-server/clients/go/mlxserve/v1"
)

func main() {
	target := os.Getenv("MLX_GRPC_TARGET")
	if target == "" {
		target = "localhost:50051"
	}
	ctx := context.Background()
	c, err := client.Dial(target)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	// Two requests multiplexed on one Generate stream; one of them cancelled.
	session, err := c.NewSession(ctx)
	if err != nil {
		log.Fatal(err)
	}
	defer session.Close()
	greedy := &mlxservev1.SamplingParams{MaxTokens: proto.Int32(32), Temperature: proto.Float64(0)}
	answer, err := session.Start(&mlxservev1.StartGeneration{RequestId: "answer",
		Prompt: client.Chat(client.Message("user", "What is the capital of France?")), Sampling: greedy})
	if err != nil {
		log.Fatal(err)
	}
	// A long story that only the cancel ends (a short one could finish before the cancel arrives).
	story, err := session.Start(&mlxservev1.StartGeneration{RequestId: "story", Prompt: client.Text("Once upon a time"),
		Sampling: &mlxservev1.SamplingParams{MaxTokens: proto.Int32(1000), IgnoreEos: proto.Bool(true)}})
	if err != nil {
		log.Fatal(err)
	}
	story.Cancel()
	for event := range answer.Events() {
		fmt.Print(event.GetDelta().GetText())
	}
	fmt.Println()
	for event := range story.Events() {
		if f := event.GetFinished(); f != nil {
			fmt.Println(f.GetFinishReason()) // FINISH_REASON_CANCELLED
		}
	}
	if err := answer.Err(); err != nil {
		log.Fatal(err)
	}

	ids, err := c.Tokenize(ctx, client.Text("Hello world"))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(ids)
}
